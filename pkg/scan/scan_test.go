package scan

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
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
