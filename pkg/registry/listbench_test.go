package registry

import (
	"context"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/artifactstore/artifact-store/pkg/db"
	"github.com/artifactstore/artifact-store/pkg/db/dbtest"
)

// lifecycleFixture is a store of n packages of 10 files each (the GC
// fixture: event appends through the view writer, no bytes).
func lifecycleFixture(b *testing.B, dialect db.Dialect) (*Registry, int) {
	n := 10000
	if s := os.Getenv("AS_LS_BENCH_PACKAGES"); s != "" {
		n, _ = strconv.Atoi(s)
	}
	d := dbtest.Open(b, dialect)
	r := New(d, localDP(b), Options{Actor: "bench"})
	start := time.Now()
	buildFixture(b, r, n*10)
	b.Logf("fixture: %d packages built in %s", n, time.Since(start))
	return r, n
}

// BenchmarkList: as-ls over a store of N packages (AS_LS_BENCH_PACKAGES,
// default 10,000): records/s for the whole list and the time to the first
// record.
func BenchmarkList(b *testing.B) {
	for _, dialect := range []db.Dialect{db.SQLite, db.Postgres} {
		b.Run(string(dialect), func(b *testing.B) {
			r, n := lifecycleFixture(b, dialect)
			b.ResetTimer()
			var first time.Duration
			for b.Loop() {
				t0 := time.Now()
				got := 0
				for _, err := range r.List(context.Background(), Filter{}) {
					if err != nil {
						b.Fatal(err)
					}
					if got == 0 {
						first += time.Since(t0)
					}
					got++
				}
				if got != n {
					b.Fatalf("listed %d of %d packages", got, n)
				}
			}
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "records/s")
			b.ReportMetric(float64(first.Microseconds())/float64(b.N)/1000, "ms-to-first")
		})
	}
}

// BenchmarkExpireDecide: a dry-run expiry over N open packages (every one
// is abandoned: the decision visits each).
func BenchmarkExpireDecide(b *testing.B) {
	for _, dialect := range []db.Dialect{db.SQLite, db.Postgres} {
		b.Run(string(dialect), func(b *testing.B) {
			r, n := lifecycleFixture(b, dialect)
			b.ResetTimer()
			for b.Loop() {
				ended, err := r.Expire(context.Background(), ExpireOptions{DryRun: true, Now: time.Now().Add(365 * 24 * time.Hour)})
				if err != nil || len(ended) != n {
					b.Fatalf("expire: %d ended of %d, %v", len(ended), n, err)
				}
			}
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "packages/s")
		})
	}
}
