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
