// Package e2e runs the built tools in real shell pipelines against the
// embedded SQLite default and a real PostgreSQL server.
package e2e

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/artifactstore/artifact-store/internal/tooltest"
	"github.com/artifactstore/artifact-store/pkg/db"
	"github.com/artifactstore/artifact-store/pkg/db/dbtest"
	"github.com/artifactstore/artifact-store/pkg/manifest"
)

func repoRoot() string {
	root, err := tooltest.ModuleRoot()
	if err != nil {
		panic(err)
	}
	return root
}

// env is a store of one dialect: its environment and a shell to run
// pipelines with the tools on PATH.
type env struct {
	t     *testing.T
	vars  []string
	dbURL string // the store's database
	root  string // the local object root
}

func newEnv(t *testing.T, d db.Dialect) *env {
	for _, tool := range []string{"as-digest", "as-put", "as-get", "as-events", "as-replay", "as-manifest"} {
		tooltest.Path(t, tool)
	}
	bin := filepath.Dir(tooltest.Path(t, "as-put"))
	data := t.TempDir()
	vars := []string{
		"PATH=" + bin + ":" + os.Getenv("PATH"),
		"XDG_DATA_HOME=" + data,
		"ARTIFACTSTORE_STORAGE_LOCAL_ROOT=" + filepath.Join(data, "objects"),
		"ARTIFACTSTORE_ACTOR=e2e",
	}
	e := &env{t: t, vars: vars, dbURL: "sqlite:" + filepath.Join(data, "artifact-store", "store.db"), root: filepath.Join(data, "objects")}
	if d == db.Postgres {
		e.dbURL = dbtest.PostgresURL(t)
		e.vars = append(e.vars, "ARTIFACTSTORE_DATABASE_URL="+e.dbURL)
		if out, code := e.sh("as-events migrate"); code != 0 {
			t.Fatalf("migrate: %s", out)
		}
	}
	return e
}

// sh runs a bash pipeline (with pipefail) and returns stdout+stderr and the
// exit code.
func (e *env) sh(script string) (string, int) {
	e.t.Helper()
	cmd := exec.Command("bash", "-o", "pipefail", "-c", script)
	cmd.Dir = repoRoot()
	cmd.Env = append(os.Environ(), e.vars...)
	out, err := cmd.CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		e.t.Fatal(err)
	}
	if strings.Contains(string(out), "goroutine ") || strings.Contains(string(out), "panic:") {
		e.t.Fatalf("%s: stack trace:\n%s", script, out)
	}
	return string(out), code
}

func (e *env) ok(script string) string {
	e.t.Helper()
	out, code := e.sh(script)
	if code != 0 {
		e.t.Fatalf("%s: exit %d\n%s", script, code, out)
	}
	return out
}

func TestPipeline(t *testing.T) {
	for _, d := range []db.Dialect{db.SQLite, db.Postgres} {
		t.Run(string(d), func(t *testing.T) {
			e := newEnv(t, d)
			out := t.TempDir()
			mf := filepath.Join(out, "app.manifest")
			e.ok("find testdata/fixture -type f | as-digest | as-put --package app@1.2.3 --label team=ci --finalize > " + mf)
			b, err := os.ReadFile(mf)
			if err != nil {
				t.Fatal(err)
			}
			m, err := manifest.Decode(b)
			if err != nil {
				t.Fatalf("as-put --finalize output is not a manifest: %v", err)
			}
			if m.Package.Ref() != "app@1.2.3" || len(m.Files) != 4 || m.Package.Labels["team"] != "ci" {
				t.Fatalf("manifest %+v", m)
			}
			// The stored manifest is byte-identical; its digest matches.
			if got := e.ok("as-get --manifest app@1.2.3 | cmp - " + mf + " && as-get --manifest app@1.2.3 | as-manifest digest"); !strings.Contains(got, manifest.DigestOf(b).String()) {
				t.Fatalf("manifest digest: %s", got)
			}
			// Every file fetched back is byte-identical, and the peers agree.
			for _, f := range m.Files {
				dst := filepath.Join(out, strings.ReplaceAll(f.Path, "/", "_"))
				e.ok(fmt.Sprintf("as-get --package app@1.2.3 %q -o %q && cmp %q testdata/fixture/%s", f.Path, dst, dst, f.Path))
			}
			e.ok("as-get --manifest app@1.2.3 | as-manifest verify --root testdata/fixture")
			// The log tells the whole story, and the views equal a replay.
			log := e.ok("as-events tail --since 0 --json")
			for _, want := range []string{"v1.package.created", "v1.file.ingested", "v1.package.finalized", `"actor":"e2e"`} {
				if !strings.Contains(log, want) {
					t.Fatalf("events lack %s:\n%s", want, log)
				}
			}
			// created, four files, produced (the build, outside the
			// manifest), finalized.
			if n := strings.Count(log, "\n"); n != 7 {
				t.Fatalf("%d events, want 7", n)
			}
			e.ok("as-events verify && as-replay --check")
			// Re-running the finished command is harmless and prints the same manifest.
			e.ok("find testdata/fixture -type f | as-digest | as-put --package app@1.2.3 --label team=ci --finalize | cmp - " + mf)
			if n := strings.Count(e.ok("as-events tail --since 0 --json"), "\n"); n != 7 {
				t.Fatalf("re-run appended events: %d", n)
			}
			// A bare object round-trips.
			addr := e.ok("echo hello | as-put - --json")
			if !strings.Contains(addr, `"content_address":"blake3:`) {
				t.Fatalf("bare put: %s", addr)
			}
			// OCI tools name objects by SHA-256; as-get finds them by it, and
			// -o publishes a normally readable file.
			e.ok(`as-get "sha256:$(sha256sum testdata/fixture/bin/app | cut -c1-64)" -o ` + out + `/by-sha && cmp ` + out + `/by-sha testdata/fixture/bin/app && [ "$(stat -c %a ` + out + `/by-sha)" = 644 ]`)
		})
	}
}

// TestBadInput: each refusal is a clear message, exit 1 (2 for usage), and
// leaves the views and the log as they were.
func TestBadInput(t *testing.T) {
	e := newEnv(t, db.SQLite)
	e.ok("find testdata/fixture -type f | as-digest | as-put --package app@1.0 --finalize >/dev/null")
	state := func() string {
		return e.ok("as-replay --check 2>/dev/null; as-events head --json")
	}
	before := state()
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "a"), []byte("a"), 0o644)
	os.MkdirAll(filepath.Join(dir, "sub"), 0o755)
	os.WriteFile(filepath.Join(dir, "sub", "a"), []byte("b"), 0o644)
	cases := []struct {
		name, script, want string
		code               int
	}{
		{"finalised package", "find testdata/fixture -type f | as-digest | sed -n 1p | as-put --package app@1.0 --root testdata", "finalized", 5},
		{"unknown retention class", "find testdata/fixture -type f | as-digest | as-put --package new@1 --retention forever", "unknown retention class", 2},
		{"no package", "as-get --package nope@1 bin/app", "not found: no package nope@1; no package is named nope", 3},
		{"truncated records", "find testdata/fixture -type f | as-digest | head -c 100 | as-put --package new@2", "truncated", 1},
		{"random bytes", "head -c 64 /dev/urandom | as-put --package new@3", "record 1", 1},
		{"json input", "find testdata/fixture -type f | as-digest --json | as-put --package new@4", "looks like JSON", 1},
		{"escaping path", fmt.Sprintf("as-digest %s/a | as-put --package new@5 --root %s/sub", dir, dir), "not under the root", 2},
		{"duplicate path", fmt.Sprintf("(as-digest %s/a; as-digest %s/a) | as-put --package new@6", dir, dir), "both name", 2},
		{"missing file", fmt.Sprintf("as-digest %s/a > %s/rec && rm %s/a && as-put --package new@7 < %s/rec", dir, dir, dir, dir), "no such file", 1},
		{"bad package ref", "as-put --package 'no version' < /dev/null", "--package", 2},
		{"bad address", "as-get blake3:XYZ", "invalid content address", 2},
		{"unknown flag", "as-replay --bogus", "flag provided but not defined", 2},
	}
	for _, c := range cases {
		out, code := e.sh(c.script)
		if code != c.code || !strings.Contains(out, c.want) {
			t.Errorf("%s: exit %d (want %d), output %q (want %q)", c.name, code, c.code, out, c.want)
		}
		if !strings.Contains(out, "as-") {
			t.Errorf("%s: message lacks the tool prefix: %q", c.name, out)
		}
	}
	// The missing-file case may have created new@7 (open, empty) — a
	// consistent state; everything else changed nothing.
	after := state()
	if before == after {
		return
	}
	if !strings.Contains(e.ok("as-events tail --since 0 --json | tail -n 1"), `"new"`) {
		t.Fatalf("state changed by bad input:\nbefore %s\nafter  %s", before, after)
	}
	e.ok("as-replay --check")
}

// TestChangedFileNamedAmongMany: with many files stored at once, the error
// names the file that changed, not a neighbour cancelled because of it.
func TestChangedFileNamedAmongMany(t *testing.T) {
	e := newEnv(t, db.SQLite)
	dir := t.TempDir()
	for i := range 200 {
		os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%03d", i)), bytes.Repeat([]byte{byte(i)}, 50_000), 0o644)
	}
	recs := filepath.Join(t.TempDir(), "recs")
	e.ok("find " + dir + " -type f | sort | as-digest > " + recs)
	os.WriteFile(filepath.Join(dir, "f150"), []byte("changed"), 0o644)
	for range 3 {
		out, code := e.sh("as-put --jobs 16 --package many@1 < " + recs)
		if code != 4 || !strings.Contains(out, "f150") || !strings.Contains(out, "changed since it was digested") || strings.Contains(out, "context canceled") {
			t.Fatalf("exit %d: %s", code, out)
		}
	}
}

func TestFileChangedSinceDigest(t *testing.T) {
	e := newEnv(t, db.SQLite)
	dir := t.TempDir()
	f := filepath.Join(dir, "f")
	os.WriteFile(f, []byte("original"), 0o644)
	rec := e.ok("as-digest " + f + " | base64 -w0")
	os.WriteFile(f, []byte("modified"), 0o644)
	out, code := e.sh("echo " + rec + " | base64 -d | as-put --package chg@1")
	if code != 4 || !strings.Contains(out, "changed since it was digested") {
		t.Fatalf("exit %d: %s", code, out)
	}
	// Nothing of the modified bytes is stored or recorded as a file.
	if got := e.ok("as-events tail --since 0 --json"); strings.Contains(got, "v1.file.ingested") {
		t.Fatalf("a file event was recorded: %s", got)
	}
	if got := e.ok("find \"$ARTIFACTSTORE_STORAGE_LOCAL_ROOT\" -type f -path '*blake3*' | wc -l"); strings.TrimSpace(got) != "0" {
		t.Fatalf("objects stored: %s", got)
	}
}
