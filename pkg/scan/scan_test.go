package scan

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestOrderAndCancel(t *testing.T) {
	dir := t.TempDir()
	var paths []string
	for i := range 200 {
		p := filepath.Join(dir, fmt.Sprint(i))
		os.WriteFile(p, []byte(fmt.Sprint(i)), 0o644)
		paths = append(paths, p)
	}
	var got []string
	err := Files(context.Background(), slices.Values(paths), 4, func(r Result) error {
		if r.Err != nil {
			t.Fatal(r.Err)
		}
		got = append(got, r.Path)
		return nil
	})
	if err != nil || !slices.Equal(got, paths) {
		t.Fatalf("err %v; order preserved: %v", err, slices.Equal(got, paths))
	}

	ctx, cancel := context.WithCancel(context.Background())
	n := 0
	err = Files(ctx, slices.Values(paths), 4, func(r Result) error {
		if n++; n == 10 {
			cancel()
		}
		return nil
	})
	if !errors.Is(err, context.Canceled) || n > 10+8 {
		t.Fatalf("after cancel: err %v, %d results emitted", err, n)
	}

	stop := errors.New("stop")
	if err := Files(context.Background(), slices.Values(paths), 2, func(Result) error { return stop }); err != stop {
		t.Fatalf("emit error not returned: %v", err)
	}
}

// TestExpand: directories become their regular files in lexical order,
// symbolic links inside are left out, other paths pass through unchanged,
// and an unreadable subdirectory is reported, the walk going on.
func TestExpand(t *testing.T) {
	d := t.TempDir()
	for _, p := range []string{"b/x", "a/y", "a/c/z", "sealed/s"} {
		os.MkdirAll(filepath.Join(d, filepath.Dir(p)), 0o755)
		os.WriteFile(filepath.Join(d, p), []byte(p), 0o644)
	}
	os.Symlink("x", filepath.Join(d, "b", "link"))
	os.Chmod(filepath.Join(d, "sealed"), 0)
	defer os.Chmod(filepath.Join(d, "sealed"), 0o755)
	var errs []error
	var got []string
	for p := range Expand([]string{"missing", d}, func(err error) { errs = append(errs, err) }) {
		got = append(got, strings.TrimPrefix(p, d+"/"))
	}
	want := []string{"missing", "a/c/z", "a/y", "b/x"}
	if os.Geteuid() == 0 { // root reads a mode-0 directory
		want = append(want, "sealed/s")
	}
	if !slices.Equal(got, want) {
		t.Fatalf("Expand = %q, want %q", got, want)
	}
	if os.Geteuid() != 0 && len(errs) != 1 {
		t.Fatalf("walk errors = %v, want the sealed directory", errs)
	}
}
