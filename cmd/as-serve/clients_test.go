package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestClientRoundTrips (issue 18): the OCI clients' everyday commands
// against as-serve, on both set-ups: oras push, attach (a referrer with an
// artifact type), discover (finds it), copy (to another repository, same
// manifest digest) and pull (byte-identical); crane copy and pull (an OCI
// layout, whose manifest bytes equal the registry's).
func TestClientRoundTrips(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	oras, crane := clientBin(t, "oras"), clientBin(t, "crane")
	eachStore(t, func(t *testing.T, env storeEnv) {
		addr := startServeOn(t, env)
		run := func(dir string, name string, args ...string) string {
			t.Helper()
			cmd := exec.Command(name, args...)
			cmd.Dir = dir
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("%s %s: %v\n%s", filepath.Base(name), strings.Join(args, " "), err, out)
			}
			return string(out)
		}
		src := t.TempDir()
		body := bytes.Repeat([]byte("payload "), 4096)
		os.WriteFile(filepath.Join(src, "a.bin"), body, 0o644)
		os.WriteFile(filepath.Join(src, "sig.txt"), []byte("signed\n"), 0o644)
		run(src, oras, "push", "--plain-http", addr+"/team/app:1.0", "a.bin")
		digest := strings.TrimSpace(run(src, oras, "resolve", "--plain-http", addr+"/team/app:1.0"))
		if !strings.HasPrefix(digest, "sha256:") {
			t.Fatalf("oras resolve: %q", digest)
		}
		run(src, oras, "attach", "--plain-http", "--artifact-type", "application/vnd.example.sig", addr+"/team/app@"+digest, "sig.txt")
		if out := run(src, oras, "discover", "--plain-http", "--format", "json", addr+"/team/app@"+digest); !strings.Contains(out, "application/vnd.example.sig") {
			t.Fatalf("oras discover does not list the attached artifact:\n%s", out)
		}
		run(src, oras, "copy", "--from-plain-http", "--to-plain-http", addr+"/team/app:1.0", addr+"/mirror/app:1.0")
		if got := strings.TrimSpace(run(src, oras, "resolve", "--plain-http", addr+"/mirror/app:1.0")); got != digest {
			t.Fatalf("oras copy: mirror has %s, source %s", got, digest)
		}
		out := t.TempDir()
		run(out, oras, "pull", "--plain-http", addr+"/mirror/app:1.0")
		if got, err := os.ReadFile(filepath.Join(out, "a.bin")); err != nil || !bytes.Equal(got, body) {
			t.Fatalf("oras pull after copy: %v", err)
		}

		run(src, crane, "copy", "--insecure", addr+"/team/app:1.0", addr+"/craned/app:1.0")
		if got := strings.TrimSpace(run(src, crane, "digest", "--insecure", addr+"/craned/app:1.0")); got != digest {
			t.Fatalf("crane copy: %s, want %s", got, digest)
		}
		lay := filepath.Join(t.TempDir(), "layout")
		run(src, crane, "pull", "--insecure", "--format", "oci", addr+"/craned/app:1.0", lay)
		manifest := run(src, crane, "manifest", "--insecure", addr+"/craned/app:1.0")
		blob, err := os.ReadFile(filepath.Join(lay, "blobs", "sha256", strings.TrimPrefix(digest, "sha256:")))
		if err != nil || string(blob) != manifest {
			t.Fatalf("crane pull: the layout's manifest differs from the registry's (%v)", err)
		}
	})
}
