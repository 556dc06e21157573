package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

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

// TestGCAbandonedUploads: --uploads-older-than cancels the OCI upload
// sessions started before the cutoff and removes their staged bytes; a
// dry run lists them and changes nothing; a session started after the
// cutoff stays; the flag needs --upload-dir.
func TestGCAbandonedUploads(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	url := "sqlite:" + filepath.Join(dir, "store.db")
	root := filepath.Join(dir, "objects")
	ups := filepath.Join(dir, "uploads")
	if err := os.MkdirAll(ups, 0o755); err != nil {
		t.Fatal(err)
	}
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
	at := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	r := registry.New(d, dp, registry.Options{Actor: "test", Now: func() time.Time { return at }})
	oldID, err := r.StartOCIUpload(ctx, "app")
	if err != nil {
		t.Fatal(err)
	}
	at = at.Add(48 * time.Hour)
	newID, err := r.StartOCIUpload(ctx, "app")
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{oldID, newID} {
		if err := os.WriteFile(filepath.Join(ups, id), []byte("staged"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	closeDP()
	d.Close()

	gc := func(args ...string) (string, error) {
		var out, errb bytes.Buffer
		err := run(ctx, append([]string{"--db", url, "--storage-root", root, "--json", "--now", "2026-12-03T01:00:00Z"}, args...), cli.Stdio{In: strings.NewReader(""), Out: &out, Err: &errb})
		return out.String(), err
	}
	out, err := gc("--dry-run", "--uploads-older-than", "24h", "--upload-dir", ups, "mark")
	if err != nil || !strings.Contains(out, oldID) || strings.Contains(out, newID) {
		t.Fatalf("dry run: %v\n%s", err, out)
	}
	if _, err := os.Stat(filepath.Join(ups, oldID)); err != nil {
		t.Fatalf("a dry run removed staged bytes: %v", err)
	}
	out, err = gc("--uploads-older-than", "24h", "--upload-dir", ups, "mark")
	if err != nil || !strings.Contains(out, `"phase":"uploads"`) || !strings.Contains(out, oldID) {
		t.Fatalf("run: %v\n%s", err, out)
	}
	if _, err := os.Stat(filepath.Join(ups, oldID)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("staged bytes of the abandoned upload: %v", err)
	}
	if _, err := os.Stat(filepath.Join(ups, newID)); err != nil {
		t.Fatalf("staged bytes of a recent upload: %v", err)
	}
	d, err = db.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	dp, closeDP, err = dataplane.OpenLocal("local", root, false)
	if err != nil {
		t.Fatal(err)
	}
	defer closeDP()
	r = registry.New(d, dp, registry.Options{Actor: "test"})
	if err := r.CheckOCIUpload(ctx, "app", oldID); !errors.Is(err, registry.ErrNotFound) {
		t.Fatalf("abandoned upload still open: %v", err)
	}
	if err := r.CheckOCIUpload(ctx, "app", newID); err != nil {
		t.Fatalf("recent upload: %v", err)
	}
	for _, args := range [][]string{{"--uploads-older-than", "24h"}, {"--upload-dir", ups}, {"--uploads-older-than", "-1h", "--upload-dir", ups}} {
		if _, err := gc(args...); !errors.Is(err, cli.ErrUsage) {
			t.Errorf("%v: %v, want a usage error", args, err)
		}
	}
}
