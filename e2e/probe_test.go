package e2e

// More regression tests for issue 14, through the built tools.

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

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

// TestQueryPasswordMasked (issue 14 item 2): a password given as the URL's
// ?password= parameter appears in none of the three outputs where the probe
// saw it: a tool's connection error, as-health's start-up log line, and the
// JSON of GET /health (and as-health --check).
func TestQueryPasswordMasked(t *testing.T) {
	const secret = "S3CRETpw"
	dir := t.TempDir()
	root := filepath.Join(dir, "objects")
	if err := os.MkdirAll(filepath.Join(root, "tmp"), 0o755); err != nil {
		t.Fatal(err)
	}
	u := "postgres://u@" + tooltest.FreeAddr(t) + "/db?sslmode=disable&password=" + secret
	noSecret := func(what string, b []byte) {
		t.Helper()
		if bytes.Contains(b, []byte(secret)) {
			t.Errorf("%s shows the password:\n%s", what, b)
		}
		if !bytes.Contains(b, []byte("password=xxxxx")) {
			t.Errorf("%s does not show the masked parameter (the URL was not printed at all?):\n%s", what, b)
		}
	}
	r := tooltest.Run(t, dir, nil, nil, "as-events", "--db", u, "head")
	if r.Code != 6 {
		t.Errorf("as-events head on a refused PostgreSQL: exit %d, want 6: %s", r.Code, r.Stderr)
	}
	noSecret("as-events' connection error", r.Stderr)
	r = tooltest.Run(t, dir, nil, nil, "as-health", "--check", "--timeout", "2s", "--db", u, "--storage-root", root)
	noSecret("as-health --check's JSON", r.Stdout)

	addr := tooltest.FreeAddr(t)
	cmd := exec.Command(tooltest.Path(t, "as-health"), "--addr", addr, "--timeout", "2s", "--db", u, "--storage-root", root)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	logs := make(chan []byte, 1)
	go func() { b, _ := io.ReadAll(stderr); logs <- b }()
	var body []byte
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		resp, err := http.Get("http://" + addr + "/health")
		if err != nil {
			continue
		}
		body, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
		break
	}
	if body == nil {
		t.Fatal("as-health never served /health")
	}
	noSecret("GET /health", body)
	cmd.Process.Signal(os.Interrupt)
	var log []byte
	select {
	case log = <-logs:
	case <-time.After(10 * time.Second):
		t.Fatal("as-health did not stop on SIGINT")
	}
	var configured []byte
	sc := bufio.NewScanner(bytes.NewReader(log))
	for sc.Scan() {
		if strings.Contains(sc.Text(), "msg=configured") {
			configured = append([]byte(nil), sc.Bytes()...)
		}
	}
	if configured == nil {
		t.Fatalf("no start-up line in as-health's log:\n%s", log)
	}
	noSecret("as-health's start-up log line", configured)
	if bytes.Contains(log, []byte(secret)) {
		t.Errorf("as-health's log shows the password:\n%s", log)
	}
}

// TestVerifyRootSymlink (issue 14 item 7): as-manifest verify --root LINK,
// LINK a symlink to the directory, walks the directory and reports a file
// the manifest does not list (exit 4), as it does for the directory itself.
func TestVerifyRootSymlink(t *testing.T) {
	dir := t.TempDir()
	d := filepath.Join(dir, "d")
	if err := os.Mkdir(d, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(d, "a"), []byte("a"), 0o644); err != nil {
		t.Fatal(err)
	}
	recs := tooltest.Run(t, d, nil, nil, "as-digest", "a")
	m := tooltest.Run(t, d, recs.Stdout, nil, "as-manifest", "--root", d)
	if recs.Code != 0 || m.Code != 0 {
		t.Fatalf("as-digest/as-manifest: %s %s", recs.Stderr, m.Stderr)
	}
	link := filepath.Join(dir, "link")
	if err := os.Symlink(d, link); err != nil {
		t.Fatal(err)
	}
	if r := tooltest.Run(t, dir, m.Stdout, nil, "as-manifest", "verify", "--root", link); r.Code != 0 {
		t.Fatalf("verify of the intact tree through the link: exit %d: %s %s", r.Code, r.Stdout, r.Stderr)
	}
	if err := os.WriteFile(filepath.Join(d, "extra"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, root := range []string{d, link, link + "/"} {
		r := tooltest.Run(t, dir, m.Stdout, nil, "as-manifest", "verify", "--root", root)
		if r.Code != 4 || !bytes.Contains(r.Stdout, []byte("extra")) {
			t.Errorf("verify --root %s with an extra file: exit %d, stdout %q; want 4 naming extra", root, r.Code, r.Stdout)
		}
	}
}

// TestReplayCheckReadOnlyCopy (issue 14 item 9): as-replay --check works on
// a read-only copy of a store (database file 0444 in a 0555 directory, run
// by a user who cannot write either) and leaves nothing behind.
func TestReplayCheckReadOnlyCopy(t *testing.T) {
	dir := t.TempDir()
	env := storeEnv(dir)
	if err := os.WriteFile(filepath.Join(dir, "f"), []byte("f"), 0o644); err != nil {
		t.Fatal(err)
	}
	recs := tooltest.Run(t, dir, nil, nil, "as-digest", "f")
	if r := tooltest.Run(t, dir, recs.Stdout, env, "as-put", "--package", "p@1", "--finalize"); r.Code != 0 {
		t.Fatalf("as-put: %s", r.Stderr)
	}
	os.Remove(filepath.Join(dir, "f"))
	before, _ := os.ReadDir(dir)
	if err := os.Chmod(filepath.Join(dir, "s.db"), 0o444); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{dir, filepath.Dir(dir)} {
		os.Chmod(p, 0o755) // so that the unprivileged user below can reach it
	}
	if err := os.Chmod(dir, 0o555); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chmod(dir, 0o755) })
	name, args := tooltest.Path(t, "as-replay"), []string{"--check"}
	if os.Geteuid() == 0 {
		// root writes anything: drop to nobody, or the copy is not read-only.
		setpriv, err := exec.LookPath("setpriv")
		if err != nil {
			t.Skip("running as root without setpriv: cannot make a read-only copy")
		}
		args = append([]string{"--reuid=65534", "--regid=65534", "--clear-groups", name}, args...)
		name = setpriv
	}
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil || !bytes.Contains(out, []byte("ok")) {
		t.Errorf("as-replay --check on a read-only copy: %v\n%s", err, out)
	}
	after, _ := os.ReadDir(dir)
	if len(after) != len(before) {
		var names []string
		for _, e := range after {
			names = append(names, e.Name())
		}
		t.Errorf("the check left files behind: %q (had %d entries)", names, len(before))
	}
}

// TestRefinalizeOtherDeclarations (issue 14 item 5): re-running as-put
// --finalize with another fact, created-at, label or retention class exits
// 5 naming what differs; the same declarations again exit 0.
func TestRefinalizeOtherDeclarations(t *testing.T) {
	dir := t.TempDir()
	env := storeEnv(dir)
	if err := os.WriteFile(filepath.Join(dir, "f"), []byte("f"), 0o644); err != nil {
		t.Fatal(err)
	}
	recs := tooltest.Run(t, dir, nil, nil, "as-digest", "f")
	base := []string{"--package", "p@1", "--finalize", "--fact", "ci=1", "--created-at", "2026-01-01T00:00:00Z", "--label", "team=a"}
	if r := tooltest.Run(t, dir, recs.Stdout, env, "as-put", base...); r.Code != 0 {
		t.Fatalf("as-put: exit %d: %s", r.Code, r.Stderr)
	}
	if r := tooltest.Run(t, dir, recs.Stdout, env, "as-put", base...); r.Code != 0 {
		t.Errorf("the same as-put again: exit %d, want 0: %s", r.Code, r.Stderr)
	}
	for _, tc := range []struct{ flag, value, names string }{
		{"--fact", "run=2", "run"},
		{"--created-at", "2026-01-02T00:00:00Z", "created"},
		{"--label", "tier=b", "tier"},
		{"--retention", "release", "retention"},
	} {
		args := append(append([]string(nil), base...), tc.flag, tc.value)
		r := tooltest.Run(t, dir, recs.Stdout, env, "as-put", args...)
		if r.Code != 5 || !bytes.Contains(r.Stderr, []byte(tc.names)) {
			t.Errorf("as-put --finalize again with %s %s: exit %d, stderr %s; want 5 naming %s", tc.flag, tc.value, r.Code, r.Stderr, tc.names)
		}
	}
}
