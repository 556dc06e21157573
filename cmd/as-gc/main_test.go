package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/artifactstore/artifact-store/internal/cli"
	"github.com/artifactstore/artifact-store/pkg/dataplane"
	"github.com/artifactstore/artifact-store/pkg/db"
	"github.com/artifactstore/artifact-store/pkg/identity"
	"github.com/artifactstore/artifact-store/pkg/ref"
	"github.com/artifactstore/artifact-store/pkg/registry"
)

// TestGC: a dry run reports the garbage with its size and deletes nothing;
// a real run with --grace 0 deletes it and reports objects and bytes; the
// live file survives.
func TestGC(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	url := "sqlite:" + filepath.Join(dir, "store.db")
	root := filepath.Join(dir, "objects")
	d, err := db.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	dp, closeDP, err := dataplane.OpenLocal("local", root, false)
	if err != nil {
		t.Fatal(err)
	}
	r := registry.New(d, dp, registry.Options{Actor: "test"})
	p := ref.Version("app", "1")
	if err := r.CreatePackage(ctx, p, registry.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	dead := []byte("garbage garbage")
	for _, b := range []string{string(dead), "live"} {
		if _, err := r.IngestFile(ctx, p, "f", strings.NewReader(b), registry.IngestOptions{Replace: true}); err != nil {
			t.Fatal(err)
		}
	}
	closeDP()
	d.Close()
	sum, _ := identity.SumReader(bytes.NewReader(dead))

	gc := func(args ...string) []map[string]any {
		t.Helper()
		var out, errb bytes.Buffer
		err := run(ctx, append([]string{"--db", url, "--storage-root", root, "--json"}, args...), cli.Stdio{In: strings.NewReader(""), Out: &out, Err: &errb})
		if err != nil {
			t.Fatalf("as-gc %v: %v (%s)", args, err, errb.String())
		}
		var recs []map[string]any
		for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
			var m map[string]any
			if err := json.Unmarshal([]byte(line), &m); err != nil {
				t.Fatalf("%q: %v", line, err)
			}
			recs = append(recs, m)
		}
		return recs
	}
	recs := gc("--dry-run", "mark")
	if len(recs) != 2 || recs[0]["content_address"] != sum.BLAKE3.String() || recs[0]["size"] != float64(len(dead)) || recs[1]["objects"] != float64(1) {
		t.Fatalf("dry run: %v", recs)
	}
	recs = gc("--grace", "0")
	last := recs[len(recs)-1]
	if last["phase"] != "sweep" || last["objects"] != float64(1) || last["bytes"] != float64(len(dead)) {
		t.Fatalf("run: %v", recs)
	}
	dp, closeDP, err = dataplane.OpenLocal("local", root, false)
	if err != nil {
		t.Fatal(err)
	}
	defer closeDP()
	if _, err := dp.StatObject(ctx, sum.BLAKE3); !errors.Is(err, dataplane.ErrNotFound) {
		t.Fatalf("garbage still stored: %v", err)
	}
	if err := run(ctx, []string{"--grace", "-1s"}, cli.Stdio{Out: &bytes.Buffer{}, Err: &bytes.Buffer{}}); !errors.Is(err, cli.ErrUsage) {
		t.Fatalf("negative grace: %v", err)
	}
}
