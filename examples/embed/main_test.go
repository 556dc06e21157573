package main

import (
	"context"
	"os/exec"
	"strings"
	"testing"
)

// TestEmbed runs the example as a program and checks what it reports.
func TestEmbed(t *testing.T) {
	if err := run(context.Background(), t.TempDir()); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("go", "run", ".", t.TempDir()).CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	for _, want := range []string{"files 3", "verified dir/c.bin", "event 5 v1.package.finalized", "replay identical"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}
