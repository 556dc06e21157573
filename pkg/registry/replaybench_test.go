package registry

import (
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/artifactstore/artifact-store/pkg/db"
	"github.com/artifactstore/artifact-store/pkg/db/dbtest"
	"github.com/artifactstore/artifact-store/pkg/events"
	"github.com/artifactstore/artifact-store/pkg/records"
	"github.com/artifactstore/artifact-store/pkg/ref"
)

// benchLogFiles is how many files the log of BenchmarkLogReplay ingests
// (ARTIFACTSTORE_BENCH_FILES overrides the default of 20,000: the tree of
// issue 20, a log of 20,002 events).
func benchLogFiles(b *testing.B) int {
	if s := os.Getenv("ARTIFACTSTORE_BENCH_FILES"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			b.Fatalf("ARTIFACTSTORE_BENCH_FILES=%q: want a positive integer", s)
		}
		return n
	}
	return 20000
}

// buildBenchLog fills a fresh registry's log the way as-put does: create a
// package, ingest n small files in batches of putBatchFiles, finalise.
func buildBenchLog(b *testing.B, r *Registry, n int) {
	b.Helper()
	ctx := context.Background()
	rf := ref.Version("bench", "1")
	if err := r.CreatePackage(ctx, rf, CreateOptions{}); err != nil {
		b.Fatal(err)
	}
	for start := 0; start < n; start += putBatchFiles {
		end := min(start+putBatchFiles, n)
		in := make([]Input, 0, end-start)
		for i := start; i < end; i++ {
			body := fmt.Sprint("file ", i)
			in = append(in, Input{Path: fmt.Sprintf("d%d/sub%d/f%d.txt", i%50, i%7, i),
				Open: func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(body)), nil }})
		}
		if _, err := r.IngestFiles(ctx, rf, in, BatchOptions{Workers: 4}); err != nil {
			b.Fatal(err)
		}
	}
	if _, err := r.FinalizePackage(ctx, rf, FinalizeOptions{}); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkLogReplay measures, per dialect (PostgreSQL only with
// ARTIFACTSTORE_TEST_DATABASE_URL), the event-log tools of issue 20 over a
// log built through the registry's put path, each as events/s:
//
//	replay   Registry.Replay (as-replay): rebuild every view, commit
//	check    Registry.Replay(check) as as-replay --check runs it: on SQLite
//	         the store is opened read-only and the rebuild goes to a
//	         scratch database; on PostgreSQL it is rolled back
//	verify   Log.Verify (as-events verify)
//	tail     Log.ScanRecords from 0 with each record written, as
//	         as-events tail --since 0 does
func BenchmarkLogReplay(b *testing.B) {
	for _, dialect := range []db.Dialect{db.SQLite, db.Postgres} {
		b.Run(string(dialect), func(b *testing.B) {
			ctx := context.Background()
			d := dbtest.Open(b, dialect)
			r := newRegistry(b, d)
			buildBenchLog(b, r, benchLogFiles(b))
			h, err := r.Log().Head(ctx)
			if err != nil {
				b.Fatal(err)
			}
			perSec := func(b *testing.B) {
				b.ReportMetric(float64(b.N)*float64(h.Seq)/b.Elapsed().Seconds(), "events/s")
			}
			b.Run("replay", func(b *testing.B) {
				for b.Loop() {
					if _, err := r.Replay(ctx, false); err != nil {
						b.Fatal(err)
					}
				}
				perSec(b)
			})
			b.Run("check", func(b *testing.B) {
				cr := r
				if dialect == db.SQLite {
					ro, err := db.OpenWith(ctx, d.URL(), db.Options{ReadOnly: true})
					if err != nil {
						b.Fatal(err)
					}
					defer ro.Close()
					cr = New(ro, nil, Options{Actor: "bench"})
				}
				for b.Loop() {
					res, err := cr.Replay(ctx, true)
					if err != nil {
						b.Fatal(err)
					}
					if res.Before != res.After {
						b.Fatalf("check: views %v differ from a rebuild %v", res.Before, res.After)
					}
				}
				perSec(b)
			})
			b.Run("verify", func(b *testing.B) {
				l := events.New(d)
				for b.Loop() {
					if err := l.Verify(ctx); err != nil {
						b.Fatal(err)
					}
				}
				perSec(b)
			})
			b.Run("tail", func(b *testing.B) {
				l := events.New(d)
				for b.Loop() {
					w := records.NewWriter(io.Discard, records.CBOR)
					if err := l.ScanRecords(ctx, 0, func(head, payload, tail []byte) error {
						return w.WriteRawParts(head, payload, tail)
					}); err != nil {
						b.Fatal(err)
					}
					if err := w.Flush(); err != nil {
						b.Fatal(err)
					}
				}
				perSec(b)
			})
		})
	}
}
