package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/artifactstore/artifact-store/internal/tooltest"
	"github.com/artifactstore/artifact-store/pkg/db"
)

// TestReplayInterrupted: SIGINT at several points of an as-replay of some
// 5,000 events ends it promptly with exit 130 (or 0 if the replay was
// done first), never a hang, and leaves a store whose log verifies and
// whose views still equal the log. The timing is not steered, so this
// checks the tool's behaviour, not one interleaving: TestReplayFromCancel
// (pkg/events) is the deterministic test of the hang a cancelled replay
// once had.
func TestReplayInterrupted(t *testing.T) {
	if testing.Short() {
		t.Skip("ingests 5,000 files per dialect")
	}
	for _, d := range []db.Dialect{db.SQLite, db.Postgres} {
		t.Run(string(d), func(t *testing.T) {
			e := newEnv(t, d)
			tree := t.TempDir()
			for i := range 5000 {
				if err := os.WriteFile(filepath.Join(tree, fmt.Sprintf("f%04d", i)), []byte(fmt.Sprintf("file %d\n", i)), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			e.ok("find " + tree + " -type f | as-digest | as-put --package int@1 --finalize >/dev/null")
			replay := tooltest.Path(t, "as-replay")
			// The signals fall at fractions of an uninterrupted replay's
			// time, whatever the machine's speed.
			start := time.Now()
			e.ok(replay + " >/dev/null")
			whole := time.Since(start)
			interrupted := 0
			for _, frac := range []float64{0.3, 0.5, 0.7} {
				after := time.Duration(frac * float64(whole))
				cmd := exec.Command(replay)
				cmd.Env = append(os.Environ(), e.vars...)
				if err := cmd.Start(); err != nil {
					t.Fatal(err)
				}
				done := make(chan error, 1)
				go func() { done <- cmd.Wait() }()
				time.Sleep(after)
				cmd.Process.Signal(os.Interrupt)
				var err error
				select {
				case err = <-done:
				case <-time.After(30 * time.Second):
					cmd.Process.Kill()
					<-done
					t.Fatalf("as-replay still running 30 s after SIGINT at %v", after)
				}
				switch ee, ok := err.(*exec.ExitError); {
				case err == nil:
				case ok && ee.ExitCode() == 130:
					interrupted++
				case ok && ee.Sys().(syscall.WaitStatus).Signal() == syscall.SIGINT:
					// Signalled before it installed its handler: it had
					// not opened the store yet.
				default:
					t.Fatalf("as-replay, SIGINT at %v: %v, want exit 130 (or 0 if it had finished)", after, err)
				}
				e.ok("as-events verify >/dev/null && as-replay --check >/dev/null")
			}
			t.Logf("%d of 3 replays interrupted (a whole replay took %v)", interrupted, whole)
			if interrupted == 0 {
				t.Fatal("no as-replay was interrupted: every one finished before its SIGINT, so nothing was tested")
			}
		})
	}
}
