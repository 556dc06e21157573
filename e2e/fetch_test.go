package e2e

import (
	"bytes"
	"crypto/rand"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/artifactstore/artifact-store/pkg/db"
)

// TestFetchPackageInto (issue 21): as-get --package REF --into DIR writes
// every file byte-identical at its path (diff -r against the source),
// mode 0644; a second run refuses (exit 5) and changes nothing; --overwrite
// replaces; a symbolic link planted in DIR cannot carry a write outside
// it; a corrupt object fails with exit 4 and leaves no partial file.
func TestFetchPackageInto(t *testing.T) {
	for _, d := range []db.Dialect{db.SQLite, db.Postgres} {
		t.Run(string(d), func(t *testing.T) {
			e := newEnv(t, d)
			dir := t.TempDir()
			src := filepath.Join(dir, "src")
			big := make([]byte, 3<<20)
			rand.Read(big)
			for p, b := range map[string][]byte{"a/b/x": []byte("x\n"), "c/big": big, "top": nil, "a/y": []byte("y")} {
				os.MkdirAll(filepath.Join(src, filepath.Dir(p)), 0o755)
				os.WriteFile(filepath.Join(src, p), b, 0o600)
			}
			e.ok(`find ` + src + ` -type f | as-digest | as-put --package fetch@1 --root ` + src + ` --finalize > /dev/null`)
			out := filepath.Join(dir, "out")
			e.ok(`as-get --package fetch@1 --into ` + out)
			e.ok(`diff -r ` + src + ` ` + out)
			filepath.WalkDir(out, func(p string, de fs.DirEntry, err error) error {
				if fi, _ := de.Info(); err == nil && fi.Mode().IsRegular() && fi.Mode().Perm() != 0o644 {
					t.Errorf("%s: mode %v, want 0644", p, fi.Mode().Perm())
				}
				return nil
			})
			os.WriteFile(filepath.Join(out, "top"), []byte("local edit"), 0o644)
			msg, code := e.sh(`as-get --package fetch@1 --into ` + out)
			if code != 5 || !strings.Contains(msg, "already has") {
				t.Fatalf("second fetch: exit %d (want 5): %s", code, msg)
			}
			if b, _ := os.ReadFile(filepath.Join(out, "top")); string(b) != "local edit" {
				t.Fatalf("a refused fetch changed a file: %q", b)
			}
			e.ok(`as-get --package fetch@1 --into ` + out + ` --overwrite`)
			e.ok(`diff -r ` + src + ` ` + out)

			// A symbolic link in DIR pointing outside: nothing lands outside.
			evil, outside := filepath.Join(dir, "evil"), filepath.Join(dir, "outside")
			os.MkdirAll(evil, 0o755)
			os.MkdirAll(outside, 0o755)
			os.Symlink(outside, filepath.Join(evil, "a"))
			if msg, code := e.sh(`as-get --package fetch@1 --into ` + evil); code == 0 {
				t.Fatalf("fetch through a planted symlink succeeded: %s", msg)
			}
			if entries, _ := os.ReadDir(outside); len(entries) != 0 {
				t.Fatalf("a fetch wrote outside DIR: %v", entries)
			}

			// Corrupt the big object: exit 4, no partial or temporary file.
			var obj string
			filepath.WalkDir(e.root, func(p string, de fs.DirEntry, err error) error {
				if fi, _ := de.Info(); err == nil && fi.Mode().IsRegular() && fi.Size() == int64(len(big)) {
					obj = p
				}
				return nil
			})
			if obj == "" {
				t.Fatal("big object not found under the storage root")
			}
			b, _ := os.ReadFile(obj)
			b[len(b)/2] ^= 1
			os.Chmod(obj, 0o644)
			if err := os.WriteFile(obj, b, 0o644); err != nil {
				t.Fatal(err)
			}
			bad := filepath.Join(dir, "bad")
			if msg, code := e.sh(`as-get --package fetch@1 --into ` + bad); code != 4 {
				t.Fatalf("fetch of a corrupt object: exit %d (want 4): %s", code, msg)
			}
			if got, err := os.ReadFile(filepath.Join(bad, "c", "big")); err == nil {
				t.Fatalf("a corrupt file was published (%d bytes, equal=%v)", len(got), bytes.Equal(got, big))
			}
			filepath.WalkDir(bad, func(p string, de fs.DirEntry, err error) error {
				if err == nil && strings.HasPrefix(de.Name(), ".as-get-") {
					t.Errorf("temporary file left behind: %s", p)
				}
				return nil
			})
		})
	}
}
