package main_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/artifactstore/artifact-store/pkg/db"
	"github.com/artifactstore/artifact-store/pkg/db/dbtest"
	"github.com/artifactstore/artifact-store/pkg/events"
	"github.com/artifactstore/artifact-store/pkg/records"
)

// binary returns as-events from $AS_BIN, or builds it.
func binary(t *testing.T) string {
	t.Helper()
	if dir := os.Getenv("AS_BIN"); dir != "" {
		p := filepath.Join(dir, "as-events")
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	p := filepath.Join(t.TempDir(), "as-events")
	out, err := exec.Command("go", "build", "-o", p, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return p
}

type result struct {
	out, err string
	code     int
}

func runCmd(t *testing.T, bin, dbURL string, stdin []byte, args ...string) result {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"--db", dbURL}, args...)...)
	cmd.Stdin = bytes.NewReader(stdin)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	r := result{out: o.String(), err: e.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(r.err, "goroutine ") || strings.Contains(r.err, "panic") {
		t.Fatalf("as-events %v crashed:\n%s", args, r.err)
	}
	return r
}

func TestEndToEnd(t *testing.T) {
	bin := binary(t)
	for _, dialect := range []db.Dialect{db.SQLite, db.Postgres} {
		t.Run(string(dialect), func(t *testing.T) {
			u := dbtest.URL(t, dialect)
			if dialect == db.Postgres {
				r := runCmd(t, bin, u, nil, "head")
				if r.code != 6 || !strings.Contains(r.err, "as-events migrate") {
					t.Fatalf("head on an unmigrated PostgreSQL: %+v", r)
				}
				if r := runCmd(t, bin, u, nil, "migrate"); r.code != 0 {
					t.Fatalf("migrate: %+v", r)
				}
			}
			// Append three producer events.
			payloads := [][]byte{{0xa1, 0x63, 'j', 'o', 'b', 0x01}, {0xa0}, {0x83, 0x01, 0x02, 0x63, 'a', 'b', 'c'}}
			for i, p := range payloads {
				r := runCmd(t, bin, u, p, "append", "--type", "ci.step", "--actor", "tester", "--time", "2026-01-02T03:04:05Z")
				if r.code != 0 {
					t.Fatalf("append %d: %+v", i, r)
				}
			}
			// Tail as CBOR: payloads come back byte-identical.
			r := runCmd(t, bin, u, nil, "tail")
			if r.code != 0 {
				t.Fatalf("tail: %+v", r)
			}
			rd := records.NewReader(strings.NewReader(r.out))
			for i, p := range payloads {
				item, err := rd.Next()
				if err != nil {
					t.Fatalf("record %d: %v", i, err)
				}
				ev, err := events.UnmarshalRecord(item)
				if err != nil {
					t.Fatal(err)
				}
				if ev.Seq != uint64(i+1) || !bytes.Equal(ev.Payload, p) || ev.Actor != "tester" || ev.Type != "ci.step" {
					t.Fatalf("record %d = %+v", i, ev)
				}
			}
			// --since and JSON.
			r = runCmd(t, bin, u, nil, "tail", "--since", "2", "--json")
			var rec map[string]any
			if err := json.Unmarshal([]byte(r.out), &rec); err != nil || rec["seq"] != 3.0 || strings.Count(r.out, "\n") != 1 {
				t.Fatalf("tail --since 2 --json: %q (%v)", r.out, err)
			}
			if p, _ := json.Marshal(rec["payload"]); string(p) != `[1,2,"abc"]` {
				t.Fatalf("payload as JSON = %s", p)
			}
			r = runCmd(t, bin, u, nil, "head", "--json")
			if !strings.Contains(r.out, `"seq":3`) || r.code != 0 {
				t.Fatalf("head: %+v", r)
			}
			if r := runCmd(t, bin, u, nil, "verify"); r.code != 0 || !strings.HasPrefix(r.out, "ok: 3 events") {
				t.Fatalf("verify: %+v", r)
			}

			// Bad input: exit 1 with a clear message, nothing appended.
			for _, tc := range []struct {
				stdin []byte
				args  []string
				code  int
				msg   string
			}{
				{[]byte{0x18, 0x01}, []string{"append", "--type", "ci.x"}, 1, "canonical CBOR"},
				{[]byte{0xa0, 0xa0}, []string{"append", "--type", "ci.x"}, 1, "exactly one"},
				{nil, []string{"append", "--type", "ci.x"}, 1, "empty input"},
				{[]byte{0xa0}, []string{"append", "--type", "v1.package-created"}, 1, "reserved"},
				{[]byte{0xa0}, []string{"append", "--type", "nodot"}, 1, "namespace.name"},
				{[]byte{0xa0}, []string{"append"}, 2, "needs --type"},
				{nil, []string{"frobnicate"}, 2, "unknown command"},
				{nil, []string{"tail", "--since", "-1"}, 2, "since"},
			} {
				r := runCmd(t, bin, u, tc.stdin, tc.args...)
				if r.code != tc.code || !strings.Contains(r.err, tc.msg) || !strings.HasPrefix(r.err, "as-events: ") {
					t.Errorf("%v: exit %d, stderr %q; want %d and %q", tc.args, r.code, r.err, tc.code, tc.msg)
				}
			}
			if r := runCmd(t, bin, u, nil, "head", "--json"); !strings.Contains(r.out, `"seq":3`) {
				t.Fatalf("bad input appended something: %s", r.out)
			}

			// tail --follow in one process sees an append from another.
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			follow := exec.CommandContext(ctx, bin, "--db", u, "tail", "--follow", "--json", "--since", "3")
			stdout, err := follow.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := follow.Start(); err != nil {
				t.Fatal(err)
			}
			defer func() { follow.Process.Kill(); follow.Wait() }()
			time.Sleep(200 * time.Millisecond)
			if r := runCmd(t, bin, u, []byte{0xa0}, "append", "--type", "ci.late"); r.code != 0 {
				t.Fatalf("append: %+v", r)
			}
			line, err := bufio.NewReader(stdout).ReadString('\n')
			if err != nil || !strings.Contains(line, `"seq":4`) || !strings.Contains(line, `"type":"ci.late"`) {
				t.Fatalf("follow got %q, %v", line, err)
			}

			// Tamper with a stored payload: verify names the sequence.
			d, err := db.Open(context.Background(), u)
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			if _, err := d.SQL.Exec(`UPDATE events SET payload = $1 WHERE seq = 2`, []byte{0xa1, 0x61, 'x', 0x00}); err != nil {
				t.Fatal(err)
			}
			r = runCmd(t, bin, u, nil, "verify")
			if r.code != 4 || !strings.Contains(r.err, "at seq 2") {
				t.Fatalf("verify after tamper: %+v", r)
			}
		})
	}
}

func TestHelpAndVersion(t *testing.T) {
	bin := binary(t)
	for _, args := range [][]string{{"--help"}, {"-h"}, {"tail", "--help"}} {
		out, err := exec.Command(bin, args...).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "Usage: as-events") {
			t.Errorf("%v: %v\n%s", args, err, out)
		}
	}
	out, err := exec.Command(bin, "--help").Output()
	if err != nil || !strings.Contains(string(out), "Examples:") {
		t.Errorf("--help lacks examples: %s", out)
	}
	out, err = exec.Command(bin, "--version").Output()
	if err != nil || !strings.HasPrefix(string(out), "as-events ") {
		t.Errorf("--version: %q %v", out, err)
	}
	if err := exec.Command(bin).Run(); err == nil {
		t.Error("no command: exit 0")
	} else if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 {
		t.Errorf("no command: %v", err)
	}
}

// TestConfigErrors: the database URL comes from pkg/config, which names the
// flag or variable at fault; --db wins over the environment.
func TestConfigErrors(t *testing.T) {
	bin := binary(t)
	r := runCmd(t, bin, "mysql://u@h/db", nil, "head", "--json")
	if r.code != 1 || !strings.Contains(r.err, "--db") || !strings.Contains(r.err, `unsupported scheme "mysql:"`) {
		t.Errorf("bad --db: exit %d, stderr %q", r.code, r.err)
	}
	cmd := exec.Command(bin, "head", "--json")
	cmd.Env = append(os.Environ(), "ARTIFACTSTORE_DATABASE_URL=store.db")
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "$ARTIFACTSTORE_DATABASE_URL") {
		t.Errorf("bad env: %v, output %q", err, out)
	}
	u := "sqlite:" + filepath.Join(t.TempDir(), "s.db")
	// A read on a missing embedded store is "unavailable" and creates
	// nothing; migrate (a tool that writes) creates it.
	if r := runCmd(t, bin, u, nil, "head", "--json"); r.code != 6 || !strings.Contains(r.err, "no database at") {
		t.Errorf("head on a missing store: %+v", r)
	}
	if _, err := os.Stat(strings.TrimPrefix(u, "sqlite:")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("head created the store: %v", err)
	}
	if r := runCmd(t, bin, u, nil, "migrate"); r.code != 0 {
		t.Fatalf("migrate: %+v", r)
	}
	cmd = exec.Command(bin, "--db", u, "head", "--json")
	cmd.Env = append(os.Environ(), "ARTIFACTSTORE_DATABASE_URL=store.db")
	if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), `"seq":0`) {
		t.Errorf("--db over a bad env: %v, output %q", err, out)
	}
}

// TestMigrateFreshAsks (issue 21): migrate --fresh in a script without
// --yes is refused with exit 2, naming the store and its event count, and
// drops nothing; with --yes it wipes the log.
func TestMigrateFreshAsks(t *testing.T) {
	bin := binary(t)
	u := dbtest.URL(t, db.SQLite)
	if r := runCmd(t, bin, u, []byte{0xa0}, "append", "--type", "ci.step"); r.code != 0 {
		t.Fatalf("append: %+v", r)
	}
	r := runCmd(t, bin, u, nil, "migrate", "--fresh")
	if r.code != 2 || !strings.Contains(r.err, "(1 events)") || !strings.Contains(r.err, "--yes") {
		t.Fatalf("migrate --fresh without --yes: %+v; want exit 2 naming the store, its events and --yes", r)
	}
	if r := runCmd(t, bin, u, nil, "head", "--json"); !strings.Contains(r.out, `"seq":1`) {
		t.Fatalf("the log changed after a refused --fresh: %+v", r)
	}
	if r := runCmd(t, bin, u, nil, "migrate", "--fresh", "--yes"); r.code != 0 {
		t.Fatalf("migrate --fresh --yes: %+v", r)
	}
	if r := runCmd(t, bin, u, nil, "head", "--json"); !strings.Contains(r.out, `"seq":0`) {
		t.Fatalf("after --fresh --yes: %+v", r)
	}
}

// TestGlobalStoreFlags (issue 21): the shared store flags are accepted
// before the command too (as OPERATOR.md promises), not only after it.
func TestGlobalStoreFlags(t *testing.T) {
	bin := binary(t)
	u := dbtest.URL(t, db.SQLite)
	if r := runCmd(t, bin, u, nil, "--log-level", "debug", "migrate"); r.code != 0 {
		t.Fatalf("as-events --log-level debug migrate: %+v", r)
	}
	if r := runCmd(t, bin, u, nil, "--log-level", "debug", "head", "--json"); r.code != 0 || !strings.Contains(r.out, `"seq":0`) {
		t.Fatalf("as-events --log-level debug head: %+v", r)
	}
	// A bad value is a configuration error (exit 1, as for a bad --db).
	if r := runCmd(t, bin, u, nil, "--log-level", "loud", "head"); r.code != 1 || !strings.Contains(r.err, `--log-level: unknown log level "loud"`) {
		t.Fatalf("a bad --log-level: %+v; want exit 1 naming the flag", r)
	}
}

// TestFlagHints (issue 21): a command flag before the command names the
// command to move it after; --since -1 says what a sequence number is.
func TestFlagHints(t *testing.T) {
	bin := binary(t)
	u := dbtest.URL(t, db.SQLite)
	if r := runCmd(t, bin, u, nil, "--json", "head"); r.code != 2 || !strings.Contains(r.err, "(as-events head --json)") {
		t.Errorf("--json before head: %+v", r)
	}
	if r := runCmd(t, bin, u, nil, "tail", "--since", "-1"); r.code != 2 || !strings.Contains(r.err, "0 (from the start) or a positive integer") {
		t.Errorf("--since -1: %+v", r)
	}
}
