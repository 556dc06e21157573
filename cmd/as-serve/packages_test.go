package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/artifactstore/artifact-store/internal/tooltest"
	"github.com/artifactstore/artifact-store/pkg/oci"
)

// clientBin finds oras or crane in ~/.cache/artifact-store/bin or $PATH,
// or skips (fails with ARTIFACTSTORE_TEST_STRICT=1).
func clientBin(t *testing.T, name string) string {
	t.Helper()
	return tooltest.CachedPeer(t, name)
}

// TestPullFinalisedPackage: a package made with as-put --finalize is
// pullable with oras by version and by tag, byte-identical, and its
// manifest digest (crane digest) is that of pkg/oci's mapping.
func TestPullFinalisedPackage(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	oras, crane := clientBin(t, "oras"), clientBin(t, "crane")
	eachStore(t, func(t *testing.T, env storeEnv) {
		src := t.TempDir()
		files := map[string][]byte{"bin/app": bytes.Repeat([]byte("app\x00"), 10000), "README": []byte("hello\n")}
		var list []string
		for p, b := range files {
			full := filepath.Join(src, p)
			os.MkdirAll(filepath.Dir(full), 0o755)
			if err := os.WriteFile(full, b, 0o644); err != nil {
				t.Fatal(err)
			}
			list = append(list, full)
		}
		dg := tooltest.Run(t, "", []byte(strings.Join(list, "\n")+"\n"), env, "as-digest")
		if dg.Code != 0 {
			t.Fatalf("as-digest: %s", dg.Stderr)
		}
		put := tooltest.Run(t, "", dg.Stdout, env, "as-put", "--package", "app@1.2.3", "--root", src, "--finalize")
		if put.Code != 0 {
			t.Fatalf("as-put: %s", put.Stderr)
		}
		a, err := oci.FromPackage(put.Stdout)
		if err != nil {
			t.Fatal(err)
		}
		addr := startServeOn(t, env)
		for _, refName := range []string{"app:1.2.3", "app@" + a.Descriptor.Digest.String()} {
			out := t.TempDir()
			cmd := exec.Command(oras, "pull", "--plain-http", "-o", out, addr+"/"+refName)
			if b, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("oras pull %s: %v\n%s", refName, err, b)
			}
			for p, want := range files {
				got, err := os.ReadFile(filepath.Join(out, p))
				if err != nil || !bytes.Equal(got, want) {
					t.Errorf("oras pull %s: %s differs (%v)", refName, p, err)
				}
			}
		}
		b, err := exec.Command(crane, "digest", "--insecure", addr+"/app:1.2.3").Output()
		if err != nil {
			t.Fatalf("crane digest: %v", err)
		}
		if got := strings.TrimSpace(string(b)); got != a.Descriptor.Digest.String() {
			t.Errorf("crane digest %s, want the mapping's %s", got, a.Descriptor.Digest)
		}
		cfg := exec.Command(crane, "blob", "--insecure", addr+"/app@"+a.Manifest.Config.Digest.String())
		if got, err := cfg.Output(); err != nil || !bytes.Equal(got, put.Stdout) {
			t.Errorf("config blob differs from the CBOR manifest (%v)", err)
		}
		if out, _ := exec.Command(crane, "digest", "--insecure", addr+"/app:9.9.9").CombinedOutput(); !bytes.Contains(out, []byte("MANIFEST_UNKNOWN")) {
			t.Errorf("unknown version: %s", out)
		}
	})
}

// TestORASPushIsPackage: `oras push` of titled files by tag is also the
// finalised package name@tag, which as-ls lists and as-get reads
// byte-identical; a push of other files to the same version is DENIED and
// changes nothing.
func TestORASPushIsPackage(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	oras := clientBin(t, "oras")
	eachStore(t, func(t *testing.T, env storeEnv) {
		addr := startServeOn(t, env)
		src := t.TempDir()
		files := map[string][]byte{"app.bin": bytes.Repeat([]byte{1, 2, 3}, 5000), "notes.txt": []byte("notes\n")}
		for p, b := range files {
			if err := os.WriteFile(filepath.Join(src, p), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		push := func(args ...string) ([]byte, error) {
			cmd := exec.Command(oras, append([]string{"push", "--plain-http", "--disable-path-validation", addr + "/app:1.0"}, args...)...)
			cmd.Dir = src
			return cmd.CombinedOutput()
		}
		if out, err := push("app.bin", "notes.txt"); err != nil {
			t.Fatalf("oras push: %v\n%s", err, out)
		}
		ls := tooltest.Run(t, "", nil, env, "as-ls", "--json", "app")
		if ls.Code != 0 || !bytes.Contains(ls.Stdout, []byte(`"version":"1.0","state":"finalized"`)) {
			t.Fatalf("as-ls app@1.0: exit %d\n%s%s", ls.Code, ls.Stdout, ls.Stderr)
		}
		for p, want := range files {
			g := tooltest.Run(t, "", nil, env, "as-get", "--package", "app@1.0", p)
			if g.Code != 0 || !bytes.Equal(g.Stdout, want) {
				t.Errorf("as-get app@1.0 %s: exit %d, %d bytes, want %d\n%s", p, g.Code, len(g.Stdout), len(want), g.Stderr)
			}
		}
		if err := os.WriteFile(filepath.Join(src, "notes.txt"), []byte("other notes\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := push("app.bin", "notes.txt")
		if err == nil || !bytes.Contains(bytes.ToLower(out), []byte("denied")) {
			t.Fatalf("second push of other files to app:1.0: %v\n%s", err, out)
		}
		g := tooltest.Run(t, "", nil, env, "as-get", "--package", "app@1.0", "notes.txt")
		if !bytes.Equal(g.Stdout, files["notes.txt"]) {
			t.Errorf("app@1.0 changed after the refused push: %q", g.Stdout)
		}
	})
}
