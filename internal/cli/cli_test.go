package cli

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"runtime/debug"
	"testing"
)

func TestIsTerminal(t *testing.T) {
	null, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer null.Close()
	if IsTerminal(null) {
		t.Error("/dev/null is a character device but not a terminal")
	}
	if IsTerminal(&bytes.Buffer{}) {
		t.Error("a buffer is not a terminal")
	}
}

func TestParseInterspersed(t *testing.T) {
	fs := FlagSet("t", "usage\n", &bytes.Buffer{})
	j := fs.Bool("json", false, "")
	n := fs.Int("n", 0, "")
	pos, err := Parse(fs, []string{"a", "--json", "b", "-n", "3", "--", "--c"})
	if err != nil || !*j || *n != 3 || len(pos) != 3 || pos[0] != "a" || pos[1] != "b" || pos[2] != "--c" {
		t.Fatalf("Parse = %q, %v (json %v n %d)", pos, err, *j, *n)
	}
	if _, err := Parse(FlagSet("t", "", &bytes.Buffer{}), []string{"--nope"}); !errors.Is(err, ErrUsage) || ExitCode(err) != ExitUsage {
		t.Fatalf("unknown flag: %v", err)
	}
	if _, err := Parse(FlagSet("t", "", &bytes.Buffer{}), []string{"--help"}); !errors.Is(err, flag.ErrHelp) || ExitCode(err) != ExitOK {
		t.Fatalf("--help: %v", err)
	}
}

// TestScanGC: the collector's target becomes scanGOGC, unless GOGC is
// set, which wins.
func TestScanGC(t *testing.T) {
	orig := debug.SetGCPercent(100)
	defer debug.SetGCPercent(orig)
	t.Setenv("GOGC", "") // restored after the test
	os.Unsetenv("GOGC")
	ScanGC()
	if got := debug.SetGCPercent(100); got != scanGOGC {
		t.Errorf("GOGC unset: target %d, want %d", got, scanGOGC)
	}
	t.Setenv("GOGC", "50")
	ScanGC()
	if got := debug.SetGCPercent(100); got != 100 {
		t.Errorf("GOGC=50: ScanGC changed the target to %d", got)
	}
}
