package events_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/artifactstore/artifact-store/pkg/db"
	"github.com/artifactstore/artifact-store/pkg/db/dbtest"
	"github.com/artifactstore/artifact-store/pkg/events"
)

// Benchmarks, per dialect (PostgreSQL only with ARTIFACTSTORE_TEST_DATABASE_URL):
//
//	append/one-per-tx      events.Commit of one event: durable appends per second
//	append/batch-1000      one transaction of 1,000 Appends (ns/op is per event)
//	append/8-writers       8 goroutines appending one per transaction
//	bare/one-per-tx        the same statements as Append (lock head, insert,
//	                       set head hash, NOTIFY on PostgreSQL) without
//	                       validation or hashing: our overhead is the ratio
//	bare/batch-1000        ditto, 1,000 per transaction
//	tail-latency           commit returned → tailer yields, p50/p99
func BenchmarkEvents(b *testing.B) {
	for _, dialect := range []db.Dialect{db.SQLite, db.Postgres} {
		b.Run(string(dialect), func(b *testing.B) {
			d := dbtest.Open(b, dialect)
			l := events.New(d)
			ctx := context.Background()
			payload := ev("bench", 1).Payload

			b.Run("append/one-per-tx", func(b *testing.B) {
				e := ev("bench", 1)
				for b.Loop() {
					if _, err := l.Commit(ctx, e); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
			})
			b.Run("bare/one-per-tx", func(b *testing.B) {
				for b.Loop() {
					bareTx(b, d, payload, 1)
				}
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
			})
			b.Run("append/batch-1000", func(b *testing.B) {
				batch := make([]events.Event, 1000)
				for i := range batch {
					batch[i] = ev("bench", i)
				}
				for b.Loop() {
					if _, err := l.Commit(ctx, batch...); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(b.N*1000)/b.Elapsed().Seconds(), "events/s")
			})
			b.Run("bare/batch-1000", func(b *testing.B) {
				for b.Loop() {
					bareTx(b, d, payload, 1000)
				}
				b.ReportMetric(float64(b.N*1000)/b.Elapsed().Seconds(), "events/s")
			})
			b.Run("append/8-writers", func(b *testing.B) {
				const writers = 8
				n := b.N
				b.ResetTimer()
				var wg sync.WaitGroup
				for w := range writers {
					wg.Go(func() {
						e := ev("bench", w)
						for i := w; i < n; i += writers {
							if _, err := l.Commit(ctx, e); err != nil {
								b.Error(err)
								return
							}
						}
					})
				}
				wg.Wait()
				b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "events/s")
			})
			b.Run("tail-latency", func(b *testing.B) {
				h, err := l.Head(ctx)
				if err != nil {
					b.Fatal(err)
				}
				tctx, cancel := context.WithCancel(ctx)
				defer cancel()
				got := make(chan time.Time, 1)
				go func() {
					for _, err := range events.New(d).Tail(tctx, h.Seq) {
						if err != nil {
							return
						}
						got <- time.Now()
					}
				}()
				time.Sleep(50 * time.Millisecond) // let the tailer reach its wait
				lat := make([]time.Duration, 0, b.N)
				e := ev("bench", 1)
				for b.Loop() {
					if _, err := l.Commit(ctx, e); err != nil {
						b.Fatal(err)
					}
					done := time.Now()
					at := <-got
					lat = append(lat, max(at.Sub(done), 0))
				}
				slices.Sort(lat)
				b.ReportMetric(ms(lat[len(lat)/2]), "p50-ms")
				b.ReportMetric(ms(lat[len(lat)*99/100]), "p99-ms")
			})
		})
	}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// bareTx does what Append does in SQL, n times in one transaction, with a
// fixed hash and no validation: the floor our overhead is measured against.
func bareTx(b *testing.B, d *db.DB, payload []byte, n int) {
	ctx := context.Background()
	tx, err := d.SQL.BeginTx(ctx, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer tx.Rollback()
	hash := make([]byte, 32)
	for range n {
		var seq int64
		var prev []byte
		if err := tx.QueryRowContext(ctx, `UPDATE event_head SET seq = seq + 1 WHERE id = 1 RETURNING seq, hash`).Scan(&seq, &prev); err != nil {
			b.Fatal(err)
		}
		args := []any{seq, "bench.bare", "bench", "2026-01-01T00:00:00Z", payload, prev, hash}
		if d.Dialect() == db.Postgres {
			_, err = tx.ExecContext(ctx, `WITH ins AS (INSERT INTO events (seq, type, actor, recorded_at, payload, prev_hash, hash)
				VALUES ($1, $2, $3, $4, $5, $6, $7)), h AS (UPDATE event_head SET hash = $7 WHERE id = 1)
				SELECT pg_notify('`+events.NotifyChannel+`', $1::text)`, args...)
		} else {
			if _, err = tx.ExecContext(ctx, `INSERT INTO events (seq, type, actor, recorded_at, payload, prev_hash, hash)
				VALUES ($1, $2, $3, $4, $5, $6, $7)`, args...); err == nil {
				_, err = tx.ExecContext(ctx, `UPDATE event_head SET hash = $1 WHERE id = 1`, hash)
			}
		}
		if err != nil {
			b.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		b.Fatal(err)
	}
}
