package events_test

import (
	"bytes"
	"context"
	"testing"

	"github.com/artifactstore/artifact-store/pkg/db"
	"github.com/artifactstore/artifact-store/pkg/db/dbtest"
	"github.com/artifactstore/artifact-store/pkg/events"
)

// TestAppenderEqualsAppend: events held by an Appender and flushed in
// multi-row inserts are the rows, hashes and head that as many Append
// calls write, across its chunk boundary and over several transactions;
// HeldBytes counts the payloads not yet written.
func TestAppenderEqualsAppend(t *testing.T) {
	each(t, func(t *testing.T, d *db.DB, _ string) {
		ctx := context.Background()
		plain := dbtest.Open(t, d.Dialect())
		batches := []int{1, 3, 512, 513, 1100}
		i := 0
		for _, n := range batches {
			tx, err := events.Begin(ctx, d)
			if err != nil {
				t.Fatal(err)
			}
			app := events.NewAppender(tx, d.Dialect())
			ptx, err := events.Begin(ctx, plain)
			if err != nil {
				t.Fatal(err)
			}
			held, heldBytes := 0, 0
			for range n {
				e := ev("a", i)
				i++
				if held == 512 { // the chunk: this Append writes the held events first
					held, heldBytes = 0, 0
				}
				got, err := app.Append(ctx, e)
				if err != nil {
					t.Fatal(err)
				}
				held, heldBytes = held+1, heldBytes+len(e.Payload)
				if app.HeldBytes() != heldBytes {
					t.Fatalf("event %d: HeldBytes %d, want %d", i, app.HeldBytes(), heldBytes)
				}
				want, err := events.Append(ctx, ptx, plain.Dialect(), e)
				if err != nil {
					t.Fatal(err)
				}
				if got.Seq != want.Seq || got.Hash != want.Hash || got.PrevHash != want.PrevHash {
					t.Fatalf("event %d: appender %d %s, Append %d %s", i, got.Seq, got.Hash, want.Seq, want.Hash)
				}
			}
			if err := app.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			if app.HeldBytes() != 0 {
				t.Fatalf("HeldBytes %d after Flush", app.HeldBytes())
			}
			if err := tx.Commit(); err != nil {
				t.Fatal(err)
			}
			if err := ptx.Commit(); err != nil {
				t.Fatal(err)
			}
		}
		l, pl := events.New(d), events.New(plain)
		h, _ := l.Head(ctx)
		ph, _ := pl.Head(ctx)
		if h != ph || h.Seq != uint64(i) {
			t.Fatalf("head %+v, want %+v (%d events)", h, ph, i)
		}
		got, err := l.Range(ctx, 0, i)
		if err != nil {
			t.Fatal(err)
		}
		want, err := pl.Range(ctx, 0, i)
		if err != nil {
			t.Fatal(err)
		}
		for k := range want {
			g, w := got[k], want[k]
			if g.Seq != w.Seq || g.Hash != w.Hash || g.PrevHash != w.PrevHash || !bytes.Equal(g.Payload, w.Payload) || g.Type != w.Type || g.Actor != w.Actor || !g.Time.Equal(w.Time) {
				t.Fatalf("row %d: %+v, want %+v", k, g, w)
			}
		}
		if err := l.Verify(ctx); err != nil {
			t.Fatal(err)
		}
	})
}
