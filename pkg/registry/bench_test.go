package registry

import (
	"context"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/artifactstore/artifact-store/pkg/db/dbtest"
	"github.com/artifactstore/artifact-store/pkg/ref"
)

// BenchmarkReplay measures replay of a log of file events (events/s is the
// figure the issue sets a goal for).
func BenchmarkReplay(b *testing.B) {
	ctx := context.Background()
	r := newRegistry(b, dbtest.SQLite(b))
	ref := ref.Version("bench", "1")
	if err := r.CreatePackage(ctx, ref, CreateOptions{}); err != nil {
		b.Fatal(err)
	}
	const n = 5000
	in := make([]Input, n)
	for i := range in {
		body := fmt.Sprint("file ", i)
		in[i] = Input{Path: fmt.Sprintf("d%d/f%d", i%50, i), Open: func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(body)), nil }}
	}
	if _, err := r.IngestFiles(ctx, ref, in, BatchOptions{Workers: 4}); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	events := uint64(0)
	for b.Loop() {
		res, err := r.Replay(ctx, false)
		if err != nil {
			b.Fatal(err)
		}
		events += res.Events
	}
	b.ReportMetric(float64(events)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkIngestFiles measures a batch of small files into a package:
// files/s through the whole registry path (bytes durable, one transaction).
func BenchmarkIngestFiles(b *testing.B) {
	ctx := context.Background()
	r := newRegistry(b, dbtest.SQLite(b))
	const n = 1000
	files := 0
	v := 0
	for b.Loop() {
		v++
		ref := ref.Version("bench", fmt.Sprint(v))
		if err := r.CreatePackage(ctx, ref, CreateOptions{}); err != nil {
			b.Fatal(err)
		}
		in := make([]Input, n)
		for i := range in {
			body := fmt.Sprint("file ", v, " ", i, strings.Repeat("x", 8000))
			in[i] = Input{Path: fmt.Sprintf("d%d/f%d", i%50, i), Open: func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(body)), nil }}
		}
		if _, err := r.IngestFiles(ctx, ref, in, BatchOptions{Workers: 16}); err != nil {
			b.Fatal(err)
		}
		files += n
	}
	b.ReportMetric(float64(files)/b.Elapsed().Seconds(), "files/s")
}

// BenchmarkBuildManifest measures reading a 20,000-file package back into
// its manifest, the serial step of finalisation that nothing overlaps.
func BenchmarkBuildManifest(b *testing.B) {
	ctx := context.Background()
	r := newRegistry(b, dbtest.SQLite(b))
	pkg := ref.Version("bench", "1")
	if err := r.CreatePackage(ctx, pkg, CreateOptions{}); err != nil {
		b.Fatal(err)
	}
	const n = 20000
	for start := 0; start < n; start += 2000 {
		in := make([]Input, 2000)
		for i := range in {
			body := fmt.Sprint("file ", start+i)
			in[i] = Input{Path: fmt.Sprintf("d%03d/e%d/f%05d.bin", (start+i)%500, (start+i)%7, start+i), Open: func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(body)), nil }}
		}
		if _, err := r.IngestFiles(ctx, pkg, in, BatchOptions{Workers: 4}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		tx, err := r.db.SQL.BeginTx(ctx, nil)
		if err != nil {
			b.Fatal(err)
		}
		p, err := lookupPackage(ctx, tx, pkg)
		if err != nil {
			b.Fatal(err)
		}
		m, err := r.buildManifest(ctx, tx, p, FinalizeOptions{})
		tx.Rollback()
		if err != nil || len(m.Files) != n || len(m.StorageReceipts) != n {
			b.Fatalf("%d files, %d receipts: %v", len(m.Files), len(m.StorageReceipts), err)
		}
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "files/s")
}
