package e2e

// More regression tests for issue 14, through the built tools.

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/artifactstore/artifact-store/internal/tooltest"
)

// TestReputRepairsDamagedObject (issue 14 item 3): a stored object with a
// flipped byte, or truncated, is replaced by the good bytes of the next
// as-put of the same file, and as-get then returns them.
func TestReputRepairsDamagedObject(t *testing.T) {
	for _, tc := range []struct {
		name   string
		damage func(good []byte) []byte
	}{
		{"flipped", func(g []byte) []byte { c := bytes.Clone(g); c[100] ^= 0xff; return c }},
		{"truncated", func(g []byte) []byte { return g[:10] }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			env := storeEnv(dir)
			src := filepath.Join(dir, "src")
			if err := os.Mkdir(src, 0o755); err != nil {
				t.Fatal(err)
			}
			good := bytes.Repeat([]byte("artifact bytes "), 400)
			if err := os.WriteFile(filepath.Join(src, "f"), good, 0o644); err != nil {
				t.Fatal(err)
			}
			recs := tooltest.Run(t, src, nil, nil, "as-digest", "f")
			if recs.Code != 0 {
				t.Fatalf("as-digest: %s", recs.Stderr)
			}
			if r := tooltest.Run(t, src, recs.Stdout, env, "as-put", "--package", "a@1", "--finalize"); r.Code != 0 {
				t.Fatalf("first as-put: exit %d: %s", r.Code, r.Stderr)
			}
			var obj string
			filepath.WalkDir(filepath.Join(dir, "objects", "blake3"), func(p string, d os.DirEntry, err error) error {
				if err == nil && d.Type().IsRegular() {
					obj = p
				}
				return nil
			})
			if obj == "" {
				t.Fatal("no stored object found")
			}
			if err := os.Chmod(obj, 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(obj, tc.damage(good), 0o444); err != nil {
				t.Fatal(err)
			}
			if r := tooltest.Run(t, src, nil, env, "as-get", "--package", "a@1", "f"); r.Code != 4 {
				t.Fatalf("as-get of the damaged object: exit %d, want 4 (the damage is real): %s", r.Code, r.Stderr)
			}
			if r := tooltest.Run(t, src, recs.Stdout, env, "as-put", "--package", "b@1", "--finalize"); r.Code != 0 {
				t.Fatalf("second as-put: exit %d: %s", r.Code, r.Stderr)
			}
			r := tooltest.Run(t, src, nil, env, "as-get", "--package", "b@1", "f")
			if r.Code != 0 || !bytes.Equal(r.Stdout, good) {
				t.Errorf("as-get after the re-put: exit %d, %d bytes (good: %v), stderr %s; want the good bytes", r.Code, len(r.Stdout), bytes.Equal(r.Stdout, good), r.Stderr)
			}
		})
	}
}

// TestFileAndDirectoryRefused (issue 14 item 6): as-put of "x/y" into a
// package that holds the file "x" (and the reverse) exits 5 naming both
// paths, and stores nothing.
func TestFileAndDirectoryRefused(t *testing.T) {
	for _, tc := range []struct{ first, then string }{{"x", "x/y"}, {"x/y", "x"}} {
		t.Run(tc.first+" then "+tc.then, func(t *testing.T) {
			dir := t.TempDir()
			env := storeEnv(dir)
			for i, p := range []string{tc.first, tc.then} {
				src := filepath.Join(dir, "src"+string(rune('1'+i)))
				if err := os.MkdirAll(filepath.Dir(filepath.Join(src, p)), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(src, p), []byte("file "+p), 0o644); err != nil {
					t.Fatal(err)
				}
				recs := tooltest.Run(t, src, nil, nil, "as-digest", p)
				if recs.Code != 0 {
					t.Fatalf("as-digest: %s", recs.Stderr)
				}
				r := tooltest.Run(t, src, recs.Stdout, env, "as-put", "--package", "p@1", "--root", src)
				if i == 0 {
					if r.Code != 0 {
						t.Fatalf("first as-put: exit %d: %s", r.Code, r.Stderr)
					}
					continue
				}
				if r.Code != 5 || !bytes.Contains(r.Stderr, []byte(`"x"`)) || !bytes.Contains(r.Stderr, []byte(`"x/y"`)) {
					t.Errorf("as-put of %q after %q: exit %d, stderr %s; want 5 naming both paths", tc.then, tc.first, r.Code, r.Stderr)
				}
			}
			n := 0
			filepath.WalkDir(filepath.Join(dir, "objects", "blake3"), func(p string, d os.DirEntry, err error) error {
				if err == nil && d.Type().IsRegular() {
					n++
				}
				return nil
			})
			if n != 1 {
				t.Errorf("%d objects stored, want 1 (the refused file stores nothing)", n)
			}
		})
	}
}
