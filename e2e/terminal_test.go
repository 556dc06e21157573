package e2e

import (
	"strings"
	"testing"

	"github.com/artifactstore/artifact-store/internal/tooltest"
	"github.com/artifactstore/artifact-store/pkg/db"
)

// TestTerminalBehaviour (issue 21), through a pseudo-terminal made by
// script(1): JSON written to a terminal ends with a newline while a pipe
// gets the exact JCS bytes, and as-put waiting on a terminal for records
// says so instead of sitting silent.
func TestTerminalBehaviour(t *testing.T) {
	script := tooltest.RequirePeer(t, "script")
	e := newEnv(t, db.SQLite)
	e.ok(`find testdata/fixture -type f | as-digest | as-put --package tty@1 --root testdata/fixture --finalize > /dev/null`)
	piped := e.ok(`as-get --manifest tty@1 --json`)
	if strings.HasSuffix(piped, "\n") {
		t.Fatalf("a pipe got a trailing newline after the JCS bytes")
	}
	tty := e.ok(script + ` -qec "as-get --manifest tty@1 --json" /dev/null`)
	if tty != piped+"\r\n" {
		t.Fatalf("on a terminal: %q…, want the JCS bytes and a newline", tty[max(0, len(tty)-20):])
	}
	out, _ := e.sh(script + ` -qec "as-put --package tty@2" /dev/null < /dev/null`)
	if !strings.Contains(out, "reading file records from standard input") {
		t.Fatalf("as-put on a terminal said nothing about waiting for records:\n%s", out)
	}
}
