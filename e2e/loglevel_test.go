package e2e

import (
	"strings"
	"testing"

	"github.com/artifactstore/artifact-store/pkg/db"
)

// TestLogLevelEveryStoreTool (issue 21): every tool that opens a store logs
// through log/slog at $ARTIFACTSTORE_LOG_LEVEL (or --log-level): debug
// shows which store it opened, the default level shows nothing extra.
func TestLogLevelEveryStoreTool(t *testing.T) {
	e := newEnv(t, db.SQLite)
	e.ok(`find testdata/fixture -type f | as-digest | as-put --package log@1 --root testdata/fixture --finalize > /dev/null`)
	for _, c := range []string{"as-ls", "as-get --manifest log@1", "as-events head", "as-replay --check", "as-scrub --presence",
		"as-gc --dry-run", "as-tag --list log", "as-health --check", "as-oci export log@1 -"} {
		out, _ := e.sh("ARTIFACTSTORE_LOG_LEVEL=debug " + c + " 2>&1 >/dev/null")
		if !strings.Contains(out, "level=DEBUG") || !strings.Contains(out, "opened") && !strings.Contains(out, "checked") {
			t.Errorf("%s at debug logged no store opening:\n%s", c, out)
		}
		if out, _ := e.sh(c + " --log-level debug 2>&1 >/dev/null"); !strings.Contains(out, "level=DEBUG") && !strings.HasPrefix(c, "as-events") {
			t.Errorf("%s --log-level debug logged nothing:\n%s", c, out)
		}
		if out, _ := e.sh(c + " 2>&1 >/dev/null"); strings.Contains(out, "level=DEBUG") {
			t.Errorf("%s at the default level logged debug lines:\n%s", c, out)
		}
	}
}
