package e2e

// The reliability suite (issue 9): crash safety under SIGKILL, bad input to
// every tool, tampering with the log, and concurrent writers. Each test
// counts what it tried in the file named by AS_RELIABILITY_REPORT (one
// "name value" line per figure), which scripts/reliability.sh sums into a
// table. AS_RELIABILITY_FULL=1 (make reliability) runs the full-size
// version; make test runs a short one.

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/artifactstore/artifact-store/internal/tooltest"
	"github.com/artifactstore/artifact-store/pkg/db"
	"github.com/artifactstore/artifact-store/pkg/identity"
)

func full() bool { return os.Getenv("AS_RELIABILITY_FULL") == "1" }

var reportMu sync.Mutex

// report adds value to figure name in the reliability report, if one is kept.
func report(t *testing.T, name string, value int) {
	p := os.Getenv("AS_RELIABILITY_REPORT")
	if p == "" {
		return
	}
	reportMu.Lock()
	defer reportMu.Unlock()
	f, err := os.OpenFile(p, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fmt.Fprintf(f, "%s %d\n", name, value)
}

// crashTree writes files small and large and returns the directory.
func crashTree(t *testing.T, small int) string {
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(9, 9))
	for i := range small {
		b := make([]byte, 200+rng.IntN(20_000))
		for k := range b {
			b[k] = byte(rng.Uint32())
		}
		os.MkdirAll(filepath.Join(dir, fmt.Sprint("d", i%10)), 0o755)
		os.WriteFile(filepath.Join(dir, fmt.Sprint("d", i%10), fmt.Sprint("f", i)), b, 0o644)
	}
	for i := range 3 {
		b := bytes.Repeat([]byte{byte(i), 1, 2, 3}, (1+i)<<18) // 1, 2, 3 MiB
		os.WriteFile(filepath.Join(dir, fmt.Sprint("big", i)), b, 0o644)
	}
	return dir
}

// checkInvariants proves what a crash must never break: every object at a
// final key hashes to its name, every view row points at a stored object,
// the hash chain verifies and the views equal a replay of the log.
func (e *env) checkInvariants(ctx context.Context) {
	e.t.Helper()
	objects := map[string]bool{}
	err := filepath.WalkDir(e.root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.HasPrefix(p, filepath.Join(e.root, "tmp")+string(filepath.Separator)) {
			return err
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		sum, err := identity.SumReader(f)
		if err != nil {
			return err
		}
		if name := filepath.Base(p); sum.BLAKE3.Hex() != name {
			e.t.Fatalf("object %s holds bytes hashing to %s: a partial or wrong object at a final key", p, sum.BLAKE3)
		}
		objects[sum.BLAKE3.String()] = true
		return nil
	})
	if err != nil && !os.IsNotExist(err) {
		e.t.Fatal(err)
	}
	e.checkViews(ctx, objects)
}

// checkViews is the part of checkInvariants that holds whatever backend
// the objects are on: every view row names one of objects (the stored
// content addresses), the chain verifies and the views equal a replay.
func (e *env) checkViews(ctx context.Context, objects map[string]bool) {
	e.t.Helper()
	d, err := db.Open(ctx, e.dbURL)
	if err != nil {
		e.t.Fatal(err)
	}
	defer d.Close()
	// A location under a sweep's deleting tombstone (ADR 0011) may have
	// lost its bytes already: a killed sweep leaves it for the next one,
	// and nothing references it (the first query proves that for packages).
	for _, q := range []string{`SELECT content_address FROM artifact_files`,
		`SELECT l.content_address FROM storage_locations l WHERE NOT EXISTS (SELECT 1 FROM gc_objects g
			WHERE g.content_address = l.content_address AND g.backend_id = l.backend_id AND g.state IN ('deleting', 'deleted'))`,
		`SELECT content_address FROM oci_blobs`, `SELECT content_address FROM oci_manifests`} {
		rows, err := d.SQL.QueryContext(ctx, q)
		if err != nil {
			e.t.Fatal(err)
		}
		for rows.Next() {
			var ca string
			rows.Scan(&ca)
			if !objects[ca] {
				rows.Close()
				e.t.Fatalf("%s: a view row points at %s, which is not stored", q, ca)
			}
		}
		rows.Close()
	}
	e.ok("as-events verify >/dev/null && as-replay --check >/dev/null")
}

// killAt starts the tool with stdin from a file, kills it with SIGKILL
// after delay, and reports whether it was still running (a real kill).
func (e *env) killAt(delay time.Duration, stdinFile string, tool string, args ...string) bool {
	e.t.Helper()
	cmd := exec.Command(tooltest.Path(e.t, tool), args...)
	cmd.Dir = repoRoot()
	cmd.Env = append(os.Environ(), e.vars...)
	if stdinFile != "" {
		in, err := os.Open(stdinFile)
		if err != nil {
			e.t.Fatal(err)
		}
		defer in.Close()
		cmd.Stdin = in
	}
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	select {
	case <-done:
		return false
	case <-time.After(delay):
	}
	cmd.Process.Signal(syscall.SIGKILL)
	<-done
	return true
}

func TestReliabilityCrash(t *testing.T) {
	rounds := 5
	if full() {
		rounds = 70
	}
	for _, d := range []db.Dialect{db.SQLite, db.Postgres} {
		t.Run(string(d), func(t *testing.T) {
			ctx := context.Background()
			e := newEnv(t, d)
			tree := crashTree(t, 150)
			recs := filepath.Join(t.TempDir(), "recs")
			e.ok("find " + tree + " -type f | sort | as-digest > " + recs)
			put := func(pkg string) string {
				return "as-put --package " + pkg + " --root " + tree + " --finalize < " + recs
			}
			// How long the work takes, so that kills land inside it.
			start := time.Now()
			e.ok(put("timing@1") + " >/dev/null")
			ingest := time.Since(start)
			start = time.Now()
			e.ok("as-replay >/dev/null 2>&1")
			replay := time.Since(start)

			rng := rand.New(rand.NewPCG(uint64(len(d)), 7))
			killed := 0
			for i := range rounds {
				pkg := fmt.Sprintf("crash@%d", i)
				// Every fourth round kills a replay; the others an ingest
				// (creating, storing or finalising) of a new package.
				if i%4 == 3 {
					if e.killAt(time.Duration(rng.Int64N(int64(replay))), "", "as-replay") {
						killed++
					}
				} else if e.killAt(time.Duration(rng.Int64N(int64(ingest))), recs, "as-put", "--package", pkg, "--root", tree, "--finalize") {
					killed++
				}
				e.checkInvariants(ctx)
				if i%4 == 3 {
					continue
				}
				// Re-running the same command completes the package.
				out := e.ok(put(pkg) + " | as-manifest show")
				if f := strings.Fields(out); !slices.Contains(f, "153") || !strings.Contains(out, "files") {
					t.Fatalf("after a kill, re-running did not complete %s:\n%s", pkg, out)
				}
			}
			e.checkInvariants(ctx)
			report(t, "kills_"+string(d), killed)
			t.Logf("%s: %d of %d kills landed while the tool ran (ingest %v, replay %v)", d, killed, rounds, ingest, replay)
		})
	}
}

func TestReliabilityBadInput(t *testing.T) {
	e := newEnv(t, db.SQLite)
	e.ok("find testdata/fixture -type f | as-digest | as-put --package ok@1 --finalize >/dev/null")
	state := func() string {
		return e.ok("as-events head --json; find \"$ARTIFACTSTORE_STORAGE_LOCAL_ROOT\" -type f | sort")
	}
	before := state()
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, b, 0o644)
		return p
	}
	inputs := map[string]string{
		"random":        write("random", bytes.Repeat([]byte{0xde, 0xad, 0xbe, 0xef, 0x17}, 40)),
		"truncated":     write("truncated", []byte{0xa4, 0x64, 0x70, 0x61, 0x74}),
		"wrong shape":   write("shape", []byte{0x83, 0x01, 0x02, 0x03}),
		"non-canonical": write("noncanon", []byte{0xa1, 0x61, 0x61, 0x18, 0x01}),
		"huge length":   write("huge", []byte{0x7b, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}),
		"deep nesting":  write("deep", bytes.Repeat([]byte{0x81}, 5000)),
		"empty":         write("empty", nil),
	}
	// File records with bad paths, canonical CBOR otherwise.
	for name, path := range map[string]string{"invalid UTF-8 path": "a\xffb", "dot-dot path": "../etc/passwd", "absolute path": "/etc/passwd", "NUL in path": "a\x00b"} {
		b, err := canonicalRecord(path)
		if err != nil {
			t.Fatal(err)
		}
		inputs[name] = write(strings.ReplaceAll(name, " ", "_"), b)
	}
	tools := map[string]string{
		"as-put":           "as-put --package bad@1 --root testdata < %s",
		"as-manifest":      "as-manifest --root testdata < %s",
		"as-manifest jcs":  "as-manifest jcs < %s",
		"as-events append": "as-events append --type ci.bad < %s",
		"as-get":           `as-get "$(head -c 200 %s | tr -d '\0')"`,
		"as-digest":        "as-digest -0 < %s",
	}
	tried := map[string]int{}
	for tool, tmpl := range tools {
		for name, file := range inputs {
			if tool == "as-digest" && name == "empty" {
				continue // no paths is not an error: find of an empty directory
			}
			if tool == "as-events append" && (name == "wrong shape" || strings.HasSuffix(name, "path")) {
				continue // any canonical item is a valid producer payload
			}
			out, code := e.sh(fmt.Sprintf(tmpl, file))
			tried[tool]++
			if tool == "as-digest" && code == 0 && !strings.Contains(out, "as-digest:") {
				// Bytes that name no file: as-digest must still say so.
				t.Errorf("as-digest on %s: exit 0 and silent: %q", name, out)
				continue
			}
			if code == 0 && tool != "as-digest" {
				t.Errorf("%s on %s: exit 0, output %q", tool, name, out)
			}
			if !strings.Contains(out, "as-") {
				t.Errorf("%s on %s: no message naming the tool: %q", tool, name, out)
			}
			if now := state(); now != before {
				t.Fatalf("%s on %s changed the store or the log:\nbefore %s\nafter  %s", tool, name, before, now)
			}
		}
	}
	if after := state(); after != before {
		t.Fatalf("bad input changed the store or the log:\nbefore %s\nafter  %s", before, after)
	}
	for tool, n := range tried {
		report(t, "bad_inputs_"+strings.ReplaceAll(tool, " ", "_"), n)
	}
}

// canonicalRecord is a file record whose only fault is its path.
func canonicalRecord(path string) ([]byte, error) {
	// Hand-encoded so that an invalid path can be carried at all: a map of
	// four entries in canonical key order (path, size, sha256, content_address).
	var b bytes.Buffer
	text := func(s string) {
		n := len(s)
		switch {
		case n < 24:
			b.WriteByte(0x60 | byte(n))
		default:
			b.WriteByte(0x78)
			b.WriteByte(byte(n))
		}
		b.WriteString(s)
	}
	b.WriteByte(0xa4)
	text("path")
	text(path)
	text("size")
	b.WriteByte(0x01)
	text("sha256")
	text("sha256:" + strings.Repeat("ab", 32))
	text("content_address")
	text("blake3:" + strings.Repeat("cd", 32))
	return b.Bytes(), nil
}

func TestReliabilityTamper(t *testing.T) {
	e := newEnv(t, db.SQLite)
	e.ok("find testdata/fixture -type f | as-digest | as-put --package t@1 --finalize >/dev/null")
	ctx := context.Background()
	cases := []struct {
		name, sql string
		seq       int
	}{
		{"modified payload", `UPDATE events SET payload = X'a0' WHERE seq = 3`, 3},
		{"deleted event", `DELETE FROM events WHERE seq = 4`, 4},
		{"reordered pair", `UPDATE events SET seq = 1000 WHERE seq = 2; UPDATE events SET seq = 2 WHERE seq = 5; UPDATE events SET seq = 5 WHERE seq = 1000`, 2},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dbFile := strings.TrimPrefix(e.dbURL, "sqlite:")
			copyFile := filepath.Join(t.TempDir(), "store.db")
			e.ok(fmt.Sprintf("cp %q %q", dbFile, copyFile))
			d, err := db.Open(ctx, "sqlite:"+copyFile)
			if err != nil {
				t.Fatal(err)
			}
			for stmt := range strings.SplitSeq(c.sql, "; ") {
				if _, err := d.SQL.ExecContext(ctx, stmt); err != nil {
					t.Fatal(err)
				}
			}
			d.Close()
			out, code := e.sh(fmt.Sprintf("as-events verify --db sqlite:%s", copyFile))
			if code != 4 || !strings.Contains(out, "seq "+strconv.Itoa(c.seq)) {
				t.Fatalf("verify: exit %d, %q: want the first bad sequence %d named", code, out, c.seq)
			}
			out, code = e.sh(fmt.Sprintf("as-replay --check --db sqlite:%s", copyFile))
			if strings.Contains(out, "panic") || code == 0 {
				t.Fatalf("replay --check on a broken chain: exit %d, %q", code, out)
			}
		})
	}
	report(t, "tamper_cases", len(cases))
}

func TestReliabilityConcurrency(t *testing.T) {
	writers := 4
	if full() {
		writers = 8
	}
	for _, d := range []db.Dialect{db.SQLite, db.Postgres} {
		t.Run(string(d), func(t *testing.T) {
			ctx := context.Background()
			e := newEnv(t, d)
			tree := crashTree(t, 120)
			recs := filepath.Join(t.TempDir(), "recs")
			e.ok("find " + tree + " -type f | sort | as-digest > " + recs)
			e.ok("as-events migrate") // a tailer reads an existing store; it never creates one
			tailOut := filepath.Join(t.TempDir(), "tail")
			tctx, stop := context.WithCancel(ctx)
			tail := exec.CommandContext(tctx, tooltest.Path(t, "as-events"), "tail", "--since", "0", "--follow", "--json")
			tail.Env = append(os.Environ(), e.vars...)
			tf, _ := os.Create(tailOut)
			tail.Stdout = tf
			if err := tail.Start(); err != nil {
				t.Fatal(err)
			}
			defer func() { stop(); tail.Wait() }() // never leave a tailer behind
			var wg sync.WaitGroup
			codes := make([]int, writers+2)
			outs := make([]string, writers+2)
			for i := range writers + 2 {
				pkg := fmt.Sprintf("w%d@1", i)
				if i >= writers {
					pkg = "shared@1" // two writers into the same package
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					outs[i], codes[i] = e.sh(fmt.Sprintf("as-put --package %s --root %s --finalize < %s > /dev/null", pkg, tree, recs))
				}()
			}
			wg.Wait()
			for i, c := range codes[:writers] {
				if c != 0 {
					t.Fatalf("writer %d exited %d: %s", i, c, outs[i])
				}
			}
			// Into the same package: one finalises, the other either
			// finds it finished (and prints the same manifest) or fails
			// cleanly.
			if codes[writers] != 0 && codes[writers+1] != 0 {
				t.Fatalf("neither writer of the shared package succeeded: %v\n%s\n%s", codes, outs[writers], outs[writers+1])
			}
			head := e.ok("as-events head --json")
			var want int
			fmt.Sscanf(head[strings.Index(head, `"seq":`)+6:], "%d", &want)
			deadline := time.Now().Add(10 * time.Second)
			var seqs []int
			for time.Now().Before(deadline) {
				b, _ := os.ReadFile(tailOut)
				seqs = seqs[:0]
				for line := range strings.Lines(string(b)) {
					var s int
					if i := strings.Index(line, `"seq":`); i >= 0 {
						fmt.Sscanf(line[i+6:], "%d", &s)
						seqs = append(seqs, s)
					}
				}
				if len(seqs) >= want {
					break
				}
				time.Sleep(50 * time.Millisecond)
			}
			stop()
			tail.Wait()
			if len(seqs) != want {
				t.Fatalf("tailer saw %d events, the log has %d", len(seqs), want)
			}
			for i, s := range seqs {
				if s != i+1 {
					t.Fatalf("tailer: event %d has seq %d (lost, duplicated or out of order)", i+1, s)
				}
			}
			e.checkInvariants(ctx)
			report(t, "concurrent_writers_"+string(d), writers+2)
			report(t, "concurrent_events_"+string(d), want)
		})
	}
}

func TestReliabilityCorruptObject(t *testing.T) {
	e := newEnv(t, db.SQLite)
	e.ok("find testdata/fixture -type f | as-digest | as-put --package c@1 --finalize >/dev/null")
	var victim string
	filepath.WalkDir(e.root, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && victim == "" && !strings.HasPrefix(p, filepath.Join(e.root, "tmp")+"/") {
			if st, _ := d.Info(); st.Size() > 10 {
				victim = p
			}
		}
		return nil
	})
	os.Chmod(victim, 0o644)
	b, _ := os.ReadFile(victim)
	b[len(b)/2] ^= 0x01
	os.WriteFile(victim, b, 0o444)
	dst := filepath.Join(t.TempDir(), "x")
	out, code := e.sh("as-get blake3:" + filepath.Base(victim) + " -o " + dst)
	if code != 4 || !strings.Contains(out, "corrupt") {
		t.Fatalf("a flipped bit: exit %d, %q; want exit 4 naming the corruption", code, out)
	}
	if _, err := os.Stat(dst); !os.IsNotExist(err) {
		t.Fatalf("as-get published -o output of a corrupt object: %v", err)
	}
	report(t, "faults_corrupt_object", 1)
}

// TestReliabilityFullAndReadOnlyRoot puts the object root on a small tmpfs:
// a full disk and then a read-only root each fail as-put with a clear error,
// leave the package open and consistent with nothing partial visible, and
// once the room (or write access) is back the same command completes.
func TestReliabilityFullAndReadOnlyRoot(t *testing.T) {
	e := newEnv(t, db.SQLite)
	mnt := e.root
	os.MkdirAll(mnt, 0o755)
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", mnt).CombinedOutput(); err != nil {
		if os.Getenv("ARTIFACTSTORE_TEST_STRICT") == "1" {
			t.Fatalf("cannot mount a tmpfs for the full-disk test: %v %s", err, out)
		}
		t.Skipf("cannot mount a tmpfs (needs root): %v %s", err, out)
	}
	defer exec.Command("umount", "-l", mnt).Run()
	ctx := context.Background()
	tree := t.TempDir()
	os.WriteFile(filepath.Join(tree, "small"), []byte("small file"), 0o644)
	os.WriteFile(filepath.Join(tree, "big"), bytes.Repeat([]byte("0123456789abcdef"), 3<<16), 0o644) // 3 MiB
	recs := filepath.Join(t.TempDir(), "recs")
	e.ok("find " + tree + " -type f | sort | as-digest > " + recs)
	put := "as-put --package full@1 --root " + tree + " --finalize < " + recs

	out, code := e.sh(put)
	if code != 1 || !strings.Contains(out, "no space left on device") {
		t.Fatalf("full disk: exit %d, %q; want exit 1 saying the disk is full", code, out)
	}
	e.checkInvariants(ctx)
	if left, _ := os.ReadDir(filepath.Join(mnt, "tmp")); len(left) != 0 {
		t.Fatalf("full disk left %d temporary files behind", len(left))
	}
	if got := e.ok("as-events tail --since 0 --json"); strings.Contains(got, "v1.package.finalized") {
		t.Fatal("a package was finalised on a full disk")
	}
	report(t, "faults_full_disk", 1)

	// Room again, but read-only.
	if out, err := exec.Command("mount", "-o", "remount,size=20m,ro", mnt).CombinedOutput(); err != nil {
		t.Fatalf("remount: %v %s", err, out)
	}
	out, code = e.sh(put)
	if code != 1 || !strings.Contains(out, "read-only file system") {
		t.Fatalf("read-only root: exit %d, %q; want exit 1 saying the root is read-only", code, out)
	}
	e.checkInvariants(ctx)
	report(t, "faults_read_only_root", 1)

	if out, err := exec.Command("mount", "-o", "remount,rw", mnt).CombinedOutput(); err != nil {
		t.Fatalf("remount rw: %v %s", err, out)
	}
	if got := e.ok(put + " | as-manifest show"); !strings.Contains(got, "files") || !slices.Contains(strings.Fields(got), "2") {
		t.Fatalf("after room came back the package is not complete: %s", got)
	}
	e.checkInvariants(ctx)
}

// TestReliabilityDatabaseGone cuts as-put's PostgreSQL connections while it
// ingests: a clear error, no orphaned view rows, and once the database
// answers again the same command completes the package.
func TestReliabilityDatabaseGone(t *testing.T) {
	e := newEnv(t, db.Postgres)
	ctx := context.Background()
	tree := crashTree(t, 150)
	recs := filepath.Join(t.TempDir(), "recs")
	e.ok("find " + tree + " -type f | sort | as-digest > " + recs)
	admin, err := db.Open(ctx, e.dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	failures := 0
	for round := range 3 {
		pkg := fmt.Sprintf("gone@%d", round)
		cmd := exec.Command("bash", "-o", "pipefail", "-c", "as-put --package "+pkg+" --root "+tree+" --finalize < "+recs+" >/dev/null")
		cmd.Dir = repoRoot()
		cmd.Env = append(os.Environ(), e.vars...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Cut every other connection to this database, repeatedly, while
		// the ingest runs.
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		var werr error
	cut:
		for {
			select {
			case werr = <-done:
				break cut
			case <-time.After(15 * time.Millisecond):
				admin.SQL.ExecContext(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
					WHERE datname = current_database() AND pid <> pg_backend_pid()`)
			}
		}
		msg := stderr.String()
		if werr != nil {
			failures++
			if !strings.HasPrefix(msg, "as-put: ") || strings.Contains(msg, "goroutine ") {
				t.Fatalf("database gone: %q; want one clear as-put: message", msg)
			}
		}
		e.checkInvariants(ctx)
		if out := e.ok("as-put --package " + pkg + " --root " + tree + " --finalize < " + recs + " | as-manifest show"); !slices.Contains(strings.Fields(out), "153") {
			t.Fatalf("re-run after the database came back did not complete %s: %s", pkg, out)
		}
	}
	if failures == 0 {
		t.Fatal("no ingest was interrupted by the cut connections; the test proved nothing")
	}
	report(t, "faults_database_gone", failures)
}
