package e2e

// Regression tests for the defects of issue 14, each through the built
// tools as the defect was seen. Each test fails on the code the issue
// describes.

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/artifactstore/artifact-store/internal/tooltest"
	"github.com/artifactstore/artifact-store/pkg/db"
	"github.com/artifactstore/artifact-store/pkg/db/dbtest"
)

// storeEnv is the environment of a throwaway store in dir.
func storeEnv(dir string) []string {
	return []string{
		"ARTIFACTSTORE_DATABASE_URL=sqlite:" + filepath.Join(dir, "s.db"),
		"ARTIFACTSTORE_STORAGE_LOCAL_ROOT=" + filepath.Join(dir, "objects"),
		"ARTIFACTSTORE_ACTOR=e2e",
	}
}

// TestMigrateRefusesNewerSchema (issue 14 item 8): as-events migrate on a
// schema migrated by a newer release exits 6, like every other tool,
// instead of printing the version and exiting 0.
func TestMigrateRefusesNewerSchema(t *testing.T) {
	for _, d := range []db.Dialect{db.SQLite, db.Postgres} {
		t.Run(string(d), func(t *testing.T) {
			u := dbtest.URL(t, d)
			env := []string{"ARTIFACTSTORE_DATABASE_URL=" + u}
			if r := tooltest.Run(t, "", nil, env, "as-events", "migrate"); r.Code != 0 {
				t.Fatalf("first migrate: exit %d: %s", r.Code, r.Stderr)
			}
			ctx := context.Background()
			conn, err := db.Open(ctx, u)
			if err != nil {
				t.Fatal(err)
			}
			_, err = conn.SQL.ExecContext(ctx, `INSERT INTO goose_db_version (version_id, is_applied) VALUES (99999, true)`)
			conn.Close()
			if err != nil {
				t.Fatal(err)
			}
			for _, args := range [][]string{{"migrate"}, {"migrate", "--fresh", "--yes"}, {"head"}} {
				r := tooltest.Run(t, "", nil, env, "as-events", args...)
				if r.Code != 6 || !strings.Contains(string(r.Stderr), "newer than this program") {
					t.Errorf("as-events %v on a newer schema: exit %d, stderr %q; want exit 6 naming the newer schema", args, r.Code, r.Stderr)
				}
			}
		})
	}
}

// TestSQLiteURLHostRefused (issue 14 item 10): sqlite://localhost/tmp/x.db
// is refused (a host part), instead of creating ./localhost/tmp/x.db.
func TestSQLiteURLHostRefused(t *testing.T) {
	dir := t.TempDir()
	abs := filepath.Join(dir, "abs.db")
	for _, u := range []string{"sqlite://localhost" + abs, "sqlite://x.db"} {
		r := tooltest.Run(t, dir, nil, []string{"ARTIFACTSTORE_DATABASE_URL=" + u}, "as-events", "head", "--json")
		if r.Code == 0 || !strings.Contains(string(r.Stderr), "host") {
			t.Errorf("%s: exit %d, stderr %q; want a refusal naming the host part", u, r.Code, r.Stderr)
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("a refused URL created %v in the working directory", entries)
	}
	// The absolute form still works.
	if r := tooltest.Run(t, dir, nil, []string{"ARTIFACTSTORE_DATABASE_URL=sqlite://" + abs}, "as-events", "migrate"); r.Code != 0 {
		t.Errorf("sqlite://%s: exit %d: %s", abs, r.Code, r.Stderr)
	}
}

// TestShowEscapesValues (issue 14 item 12): as-manifest show prints label
// and fact values with control characters quoted, so a value cannot spoof
// a line or drive the terminal.
func TestShowEscapesValues(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "f"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	recs := tooltest.Run(t, dir, nil, nil, "as-digest", "f")
	if recs.Code != 0 {
		t.Fatalf("as-digest: %s", recs.Stderr)
	}
	spoof := "ok\nlabel      owner=root\x1b[2K"
	m := tooltest.Run(t, dir, recs.Stdout, nil, "as-manifest", "--root", dir, "--label", "team="+spoof, "--fact", "ci="+spoof)
	if m.Code != 0 {
		t.Fatalf("as-manifest: %s", m.Stderr)
	}
	r := tooltest.Run(t, dir, m.Stdout, nil, "as-manifest", "show")
	if r.Code != 0 {
		t.Fatalf("show: %s", r.Stderr)
	}
	out := string(r.Stdout)
	if strings.Contains(out, "\x1b") || strings.Count(out, "\nlabel ") != 1 || strings.Contains(out, "owner=root") && !strings.Contains(out, `\nlabel`) {
		t.Errorf("show printed a value raw:\n%q", out)
	}
	for _, want := range []string{`label      team="ok\nlabel      owner=root\x1b[2K"`, `fact       ci="ok\n`} {
		if !strings.Contains(out, want) {
			t.Errorf("show output lacks %q:\n%s", want, out)
		}
	}
}

// TestDigestQuotesPaths (issue 14 item 12): as-digest quotes the path in a
// per-file error, so a CRLF list does not read as a missing "a".
func TestDigestQuotesPaths(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "a"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := tooltest.Run(t, dir, []byte("a\r\n"), nil, "as-digest")
	if r.Code != 1 || !strings.Contains(string(r.Stderr), `"a\r"`) {
		t.Errorf("as-digest on a CRLF list: exit %d, stderr %q; want the path quoted as \"a\\r\"", r.Code, r.Stderr)
	}
}

// TestTailSinceOutOfRange (issue 14 item 12): a --since beyond the largest
// sequence number is a usage error (exit 2), not "invalid event".
func TestTailSinceOutOfRange(t *testing.T) {
	env := storeEnv(t.TempDir())
	if r := tooltest.Run(t, "", nil, env, "as-events", "migrate"); r.Code != 0 {
		t.Fatalf("migrate: %s", r.Stderr)
	}
	for _, n := range []string{"18446744073709551615", "9223372036854775808"} {
		r := tooltest.Run(t, "", nil, env, "as-events", "tail", "--since", n, "--json")
		if r.Code != 2 || strings.Contains(string(r.Stderr), "invalid event") {
			t.Errorf("tail --since %s: exit %d, stderr %q; want a usage error", n, r.Code, r.Stderr)
		}
	}
	if r := tooltest.Run(t, "", nil, env, "as-events", "tail", "--since", "9223372036854775807", "--json"); r.Code != 0 {
		t.Errorf("tail --since 2^63-1: exit %d: %s", r.Code, r.Stderr)
	}
}

// TestTailFollowDeletedDatabase (issue 14 item 12): tail --follow on an
// SQLite store whose file is removed ends with an error (exit 6) instead
// of waiting forever on a file nobody can write.
func TestTailFollowDeletedDatabase(t *testing.T) {
	dir := t.TempDir()
	env := storeEnv(dir)
	if r := tooltest.Run(t, "", nil, env, "as-events", "migrate"); r.Code != 0 {
		t.Fatalf("migrate: %s", r.Stderr)
	}
	cmd := exec.Command(tooltest.Path(t, "as-events"), "tail", "--follow", "--json")
	cmd.Env = append(os.Environ(), env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	time.Sleep(300 * time.Millisecond)
	for _, f := range []string{"s.db", "s.db-wal", "s.db-shm"} {
		os.Remove(filepath.Join(dir, f))
	}
	select {
	case err := <-done:
		ee, ok := err.(*exec.ExitError)
		if !ok || ee.ExitCode() != 6 || !strings.Contains(stderr.String(), "s.db") {
			t.Errorf("tail --follow after rm s.db: %v, stderr %q; want exit 6 naming the file", err, stderr.String())
		}
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		<-done
		t.Fatal("tail --follow still running 10 s after its database file was removed")
	}
}

// TestReplaceHint (issue 14 item 12): a path that already holds other
// bytes names the flag that changes it, --replace.
func TestReplaceHint(t *testing.T) {
	e := newEnv(t, db.SQLite)
	src := t.TempDir()
	f := filepath.Join(src, "a")
	os.WriteFile(f, []byte("one"), 0o644)
	e.ok(fmt.Sprintf("as-digest %q | as-put --package app@1 --root %q", f, src))
	os.WriteFile(f, []byte("two"), 0o644)
	out, code := e.sh(fmt.Sprintf("as-digest %q | as-put --package app@1 --root %q", f, src))
	if code != 5 || !strings.Contains(out, "use --replace") {
		t.Errorf("second put of other bytes: exit %d, %q; want exit 5 and a hint naming --replace", code, out)
	}
	e.ok(fmt.Sprintf("as-digest %q | as-put --package app@1 --root %q --replace", f, src))
}

// TestAppendTimeFractionDigits (issue 14 item 12): as-events append --time
// refuses a tenth fraction digit instead of truncating it.
func TestAppendTimeFractionDigits(t *testing.T) {
	env := storeEnv(t.TempDir())
	r := tooltest.Run(t, "", []byte{0xa0}, env, "as-events", "append", "--type", "ci.step", "--time", "2026-01-02T03:04:05.1234567891Z", "--json")
	if r.Code != 2 || !strings.Contains(string(r.Stderr), "fraction") {
		t.Errorf("--time with 10 fraction digits: exit %d, stderr %q; want a usage error", r.Code, r.Stderr)
	}
	r = tooltest.Run(t, "", []byte{0xa0}, env, "as-events", "append", "--type", "ci.step", "--time", "2026-01-02T03:04:05.123456789Z", "--json")
	if r.Code != 0 || !strings.Contains(string(r.Stdout), "2026-01-02T03:04:05.123456789Z") {
		t.Errorf("--time with 9 fraction digits: exit %d, %s %s", r.Code, r.Stdout, r.Stderr)
	}
}

// TestGetOutputSpecialFiles (issue 14 item 1): as-get -o writes through a
// FIFO, a character device and a symlink's target, and into a hard-linked
// file in place, instead of renaming a regular file over them.
func TestGetOutputSpecialFiles(t *testing.T) {
	e := newEnv(t, db.SQLite)
	src := t.TempDir()
	os.WriteFile(filepath.Join(src, "a"), []byte("artifact bytes\n"), 0o644)
	e.ok(fmt.Sprintf("as-digest %q | as-put --package app@1 --root %q", filepath.Join(src, "a"), src))
	get := func(out string) {
		t.Helper()
		e.ok(fmt.Sprintf("as-get --package app@1 a -o %q", out))
	}
	dir := t.TempDir()

	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	got := make(chan string)
	go func() {
		b, _ := os.ReadFile(fifo)
		got <- string(b)
	}()
	get(fifo)
	select {
	case s := <-got:
		if s != "artifact bytes\n" {
			t.Errorf("FIFO reader got %q", s)
		}
	case <-time.After(5 * time.Second):
		t.Error("the FIFO's reader got nothing: as-get did not write through it")
	}
	if fi, _ := os.Lstat(fifo); fi.Mode()&os.ModeNamedPipe == 0 {
		t.Errorf("as-get -o FIFO replaced it with %v", fi.Mode())
	}

	target, link := filepath.Join(dir, "target"), filepath.Join(dir, "link")
	os.WriteFile(target, nil, 0o600)
	os.Symlink(target, link)
	get(link)
	if fi, _ := os.Lstat(link); fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf("as-get -o LINK replaced the link with %v", fi.Mode())
	}
	if b, _ := os.ReadFile(target); string(b) != "artifact bytes\n" {
		t.Errorf("symlink target holds %q", b)
	}
	if fi, _ := os.Stat(target); fi.Mode().Perm() != 0o600 {
		t.Errorf("target mode %v, want 0600 kept", fi.Mode())
	}

	h1, h2 := filepath.Join(dir, "h1"), filepath.Join(dir, "h2")
	os.WriteFile(h1, nil, 0o644)
	os.Link(h1, h2)
	get(h1)
	f1, _ := os.Stat(h1)
	f2, _ := os.Stat(h2)
	if b, _ := os.ReadFile(h2); !os.SameFile(f1, f2) || string(b) != "artifact bytes\n" {
		t.Errorf("hard link broken (same file %v) or not written (%q)", os.SameFile(f1, f2), b)
	}

	if os.Geteuid() == 0 {
		null := filepath.Join(dir, "null")
		if err := syscall.Mknod(null, syscall.S_IFCHR|0o666, 1<<8|3); err == nil {
			get(null)
			if fi, _ := os.Lstat(null); fi.Mode()&os.ModeCharDevice == 0 {
				t.Errorf("as-get -o DEVICE replaced it with %v", fi.Mode())
			}
		}
	}
	if out, code := e.sh(fmt.Sprintf("as-get --package app@1 a -o %q", dir)); code == 0 || !strings.Contains(out, "directory") {
		t.Errorf("as-get -o DIR: exit %d, %s", code, out)
	}
}
