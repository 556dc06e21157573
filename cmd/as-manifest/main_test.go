package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// bin is the directory holding as-manifest and as-digest: $AS_BIN if set,
// else a temporary directory they are built into by TestMain.
var bin string

func TestMain(m *testing.M) {
	os.Exit(func() int {
		bin = os.Getenv("AS_BIN")
		if bin == "" {
			dir, err := os.MkdirTemp("", "as-manifest-test")
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				return 1
			}
			defer os.RemoveAll(dir)
			cmd := exec.Command("go", "build", "-o", dir+string(filepath.Separator), "../as-manifest", "../as-digest")
			cmd.Stderr = os.Stderr
			if err := cmd.Run(); err != nil {
				fmt.Fprintln(os.Stderr, "building the tools:", err)
				return 1
			}
			bin = dir
		}
		return m.Run()
	}())
}

// sh runs a shell pipeline in dir with the tools first on PATH and returns
// stdout, stderr and the exit status.
func sh(t *testing.T, dir, script string, env ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command("/bin/sh", "-c", script)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	cmd.Env = append(cmd.Env, env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return out.String(), errb.String(), code
}

// tree writes files (path → content) under a new temporary directory.
func tree(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for p, c := range files {
		full := filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

var sampleTree = map[string]string{
	"dist/bin/app":        "binary",
	"dist/lib/libx.so":    "library",
	"dist/share/doc/READ": "read me",
}

func mustRun(t *testing.T, dir, script string, env ...string) string {
	t.Helper()
	out, errs, code := sh(t, dir, script, env...)
	if code != 0 {
		t.Fatalf("%s: exit %d\n%s", script, code, errs)
	}
	return out
}

func TestPipelineNoFlags(t *testing.T) {
	dir := tree(t, sampleTree)
	j := mustRun(t, dir, "find dist -type f | as-digest | as-manifest | as-manifest jcs")
	for _, want := range []string{`"path":"bin/app"`, `"path":"lib/libx.so"`, `"path":"share/doc/READ"`, `"manifest_version":1`, `"created_at":null`} {
		if !strings.Contains(j, want) {
			t.Errorf("JCS lacks %s:\n%s", want, j)
		}
	}
	mustRun(t, dir, "find dist -type f | as-digest | as-manifest > m.cbor && as-manifest jcs m.cbor | as-manifest cbor | cmp - m.cbor")
	show := mustRun(t, dir, "as-manifest show m.cbor")
	digest := mustRun(t, dir, "as-manifest digest < m.cbor")
	if !strings.Contains(show, "files      3") || !strings.Contains(show, "size       20 bytes") || !strings.Contains(show, strings.TrimSpace(digest)) {
		t.Errorf("show:\n%s\ndigest %s", show, digest)
	}
	if d2 := mustRun(t, dir, "as-manifest jcs m.cbor | as-manifest digest"); d2 != digest {
		t.Errorf("digest of JSON form %s, of CBOR %s", d2, digest)
	}
	if !strings.HasPrefix(digest, "blake3:") || len(digest) != len("blake3:")+64+1 {
		t.Errorf("digest output %q", digest)
	}
}

// TestReproducible builds the same tree from different working
// directories, path spellings, file orders and times: one digest.
func TestReproducible(t *testing.T) {
	dir := tree(t, sampleTree)
	flags := "--package app@1.4.2 --label team=core --retention standard --fact git_commit=abc"
	scripts := []struct{ dir, script string }{
		{dir, "find dist -type f | as-digest | as-manifest " + flags + " | as-manifest digest"},
		{dir, "find dist -type f | sort -r | as-digest | as-manifest --root dist " + flags + " | as-manifest digest"},
		{filepath.Join(dir, "dist"), "find . -type f | as-digest | as-manifest " + flags + " | as-manifest digest"},
		{filepath.Join(dir, "dist", "bin"), "find .. -type f | as-digest | as-manifest --root .. " + flags + " | as-manifest digest"},
		{"/", "find " + dir + "/dist -type f | as-digest --jobs 1 | as-manifest " + flags + " | as-manifest digest"},
		{"/", "find " + dir + "/dist -type f | as-digest | as-manifest --root " + dir + "/dist " + flags + " | as-manifest digest"},
	}
	var want string
	for i, s := range scripts {
		got := mustRun(t, s.dir, s.script, "TZ=Pacific/Kiritimati", "SOURCE_DATE_EPOCH=")
		if i == 0 {
			want = got
		} else if got != want {
			t.Errorf("%s (in %s): %s, want %s", s.script, s.dir, got, want)
		}
	}
	// A declared time changes the digest, and both spellings agree.
	a := mustRun(t, dir, "find dist -type f | as-digest | as-manifest "+flags+" | as-manifest digest", "SOURCE_DATE_EPOCH=1767225600")
	b := mustRun(t, dir, "find dist -type f | as-digest | as-manifest --created-at 2026-01-01T01:00:00+01:00 "+flags+" | as-manifest digest")
	if a == want || a != b {
		t.Errorf("SOURCE_DATE_EPOCH digest %s, --created-at %s, none %s", a, b, want)
	}
}

func TestVerify(t *testing.T) {
	dir := tree(t, sampleTree)
	mustRun(t, dir, "find dist -type f | as-digest | as-manifest --root dist > m.cbor")
	out := mustRun(t, dir, "as-manifest verify --root dist m.cbor")
	if !strings.Contains(out, "ok  3 files") {
		t.Errorf("verify: %s", out)
	}
	mustRun(t, dir, "echo changed > dist/bin/app && rm dist/lib/libx.so && echo new > dist/new")
	out, errs, code := sh(t, dir, "as-manifest jcs m.cbor | as-manifest verify --root dist")
	if code != 4 {
		t.Fatalf("exit %d, want 4 (integrity); %s", code, errs)
	}
	for _, want := range []string{"changed  bin/app", "missing  lib/libx.so", "extra    new"} {
		if !strings.Contains(out, want) {
			t.Errorf("verify output lacks %q:\n%s", want, out)
		}
	}
}

func TestBadInput(t *testing.T) {
	dir := tree(t, sampleTree)
	mustRun(t, dir, "find dist -type f | as-digest > recs && as-manifest < recs > m.cbor && as-manifest jcs m.cbor > m.json")
	for _, tc := range []struct {
		name, script, stderr string
		code                 int
	}{
		{"not CBOR", "echo hello | as-manifest", "record 1", 1},
		{"JSON records", "as-digest --json dist/bin/app | as-manifest", "looks like JSON", 1},
		{"truncated records", "head -c 50 recs | as-manifest", "record 1", 1},
		{"duplicate paths", "find dist dist -type f | as-digest | as-manifest", "duplicate path", 1},
		{"dotdot path", "cd dist/bin && find .. ../../dist -type f | as-digest | as-manifest", "record", 1},
		{"outside root", "find dist -type f | as-digest | as-manifest --root dist/bin", "not under the root", 1},
		{"wrong record shape", "as-manifest < m.cbor", "record 1", 1},
		{"no records", "as-manifest < /dev/null", "no file records", 1},
		{"truncated manifest", "head -c 100 m.cbor | as-manifest jcs", "byte", 1},
		{"trailing bytes", "cat m.cbor m.cbor | as-manifest digest", "trailing", 1},
		{"records as manifest", "as-manifest show recs", "trailing", 1},
		{"json to jcs", "as-manifest jcs m.json", "did you mean", 1},
		{"non-canonical JSON", "sed 's/,/, /' m.json | as-manifest cbor", "not RFC 8785", 1},
		{"cbor to cbor", "as-manifest cbor m.cbor", "not JSON", 1},
		{"bad package", "as-manifest --package App@1 < recs", "package name", 2},
		{"name without version", "as-manifest --package app < recs", "name@version", 2},
		{"bad created-at", "as-manifest --created-at yesterday < recs", "RFC 3339", 2},
		{"bad epoch", "SOURCE_DATE_EPOCH=soon as-manifest < recs", "SOURCE_DATE_EPOCH", 2},
		{"bad label", "as-manifest --label novalue < recs", "KEY=VALUE", 2},
		{"verify without root", "as-manifest verify m.cbor", "--root", 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, errs, code := sh(t, dir, tc.script)
			if code != tc.code {
				t.Errorf("exit %d, want %d; stderr %s", code, tc.code, errs)
			}
			if out != "" {
				t.Errorf("stdout not empty: %q", out)
			}
			if !strings.HasPrefix(errs, "as-manifest: ") || !strings.Contains(errs, tc.stderr) {
				t.Errorf("stderr %q, want as-manifest: … %s", errs, tc.stderr)
			}
			if strings.Contains(errs, "goroutine") || strings.Contains(errs, "panic") {
				t.Errorf("stack trace: %s", errs)
			}
		})
	}
}

func TestHelpAndVersion(t *testing.T) {
	out := mustRun(t, "/", "as-manifest --help")
	if !strings.Contains(out, "Examples:") || !strings.Contains(out, "--root") {
		t.Errorf("--help: %s", out)
	}
	if out := mustRun(t, "/", "as-manifest --version"); !strings.HasPrefix(out, "as-manifest ") {
		t.Errorf("--version: %s", out)
	}
}

// TestTerminal runs the tool with standard output on a pseudo-terminal
// (util-linux script): binary output is refused unless forced, and jcs
// ends its line.
func TestTerminal(t *testing.T) {
	if _, err := exec.LookPath("script"); err != nil {
		t.Skip("script(1) not installed")
	}
	dir := tree(t, sampleTree)
	mustRun(t, dir, "find dist -type f | as-digest > recs && as-manifest < recs > m.cbor")
	onTTY := func(cmd string) string {
		// script puts the command's stdout on a pty and copies it to ours.
		return mustRun(t, dir, "script -qec '"+cmd+"' /dev/null < /dev/null; true")
	}
	if out := onTTY("as-manifest < recs; echo rc=$?"); !strings.Contains(out, "refusing to write binary") || !strings.Contains(out, "rc=1") {
		t.Errorf("build to a terminal: %q", out)
	}
	if out := onTTY("as-manifest jcs m.cbor | as-manifest cbor; echo rc=$?"); !strings.Contains(out, "refusing") {
		t.Errorf("cbor to a terminal: %q", out)
	}
	if out := onTTY("as-manifest --force < recs | wc -c"); strings.TrimSpace(out) == "0" {
		t.Errorf("--force: %q", out)
	}
	if out := onTTY("as-manifest jcs m.cbor"); !strings.HasSuffix(out, "}\r\n") {
		t.Errorf("jcs on a terminal should end its line: %q", out)
	}
}
