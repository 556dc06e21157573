package events

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/artifactstore/artifact-store/pkg/canonical"
	"github.com/artifactstore/artifact-store/pkg/db"
	"github.com/artifactstore/artifact-store/pkg/db/dbtest"
	"github.com/artifactstore/artifact-store/pkg/identity"
	"pgregory.net/rapid"
)

// pipeLogLen spans several stripes of a pipelined read, so that each of
// its readers reads more than one.
const pipeLogLen = 4*pipeStripe + 77

// pipeLog returns a log of pipeLogLen events on each dialect.
func pipeLog(t *testing.T, f func(t *testing.T, d *db.DB, l *Log)) {
	for _, dialect := range []db.Dialect{db.SQLite, db.Postgres} {
		t.Run(string(dialect), func(t *testing.T) {
			d := dbtest.Open(t, dialect)
			ctx := context.Background()
			tx, err := d.SQL.BeginTx(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer tx.Rollback()
			a := NewAppender(tx, d.Dialect())
			t0 := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
			for i := range pipeLogLen {
				p, err := canonical.Marshal(map[string]any{"i": i, "pad": strings.Repeat("x", i%300)})
				if err != nil {
					t.Fatal(err)
				}
				// Runs of events share a time, as a transaction's do.
				e := Event{Type: "test.pipe", Actor: "p", Time: t0.Add(time.Duration(i/10) * time.Microsecond), Payload: p}
				if _, err := a.Append(ctx, e); err != nil {
					t.Fatal(err)
				}
			}
			if err := a.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			if err := tx.Commit(); err != nil {
				t.Fatal(err)
			}
			f(t, d, New(d))
		})
	}
}

// noReaders fails if a reader of a pipelined read is still running. A
// reader has done all its work before pipeRange returns, but its goroutine
// may still be on its way out: look again for a while (as goleak does)
// before calling it a leak.
func noReaders(t *testing.T) {
	t.Helper()
	noneRunning(t, "a reader goroutine", "events.(*pipeReader).read", "events.pipeRange.func")
}

// noneRunning fails, naming what, if a goroutine with any of frames in its
// stack is still running after about ten seconds of looking again.
func noneRunning(t *testing.T, what string, frames ...string) {
	t.Helper()
	buf := make([]byte, 1<<20)
	for try := 0; ; try++ {
		buf = buf[:runtime.Stack(buf[:cap(buf)], true)]
		running := false
		for _, f := range frames {
			running = running || bytes.Contains(buf, []byte(f))
		}
		if !running {
			return
		}
		if try == 1000 {
			t.Fatalf("%s is left running:\n%s", what, buf)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestPipelinedVerify: a fault in any stripe of the pipelined check,
// whichever reader reads it, is reported at its exact sequence number with
// the cause the one-query check (Replay's) reports, and the first of two
// faults wins even when a reader reaches the later one first.
func TestPipelinedVerify(t *testing.T) {
	pipeLog(t, func(t *testing.T, d *db.DB, l *Log) {
		ctx := context.Background()
		if err := l.Verify(ctx); err != nil {
			t.Fatal(err)
		}
		noReaders(t)
		exec := func(q string, args ...any) { t.Helper(); mustExec(t, d, q, args...) }
		col := func(name string, seq uint64) []byte {
			t.Helper()
			var b []byte
			if err := d.SQL.QueryRowContext(ctx, `SELECT `+name+` FROM events WHERE seq = $1`, seq).Scan(&b); err != nil {
				t.Fatal(err)
			}
			return b
		}
		flip := func(b []byte) []byte {
			b = bytes.Clone(b)
			b[len(b)-1] ^= 1
			return b
		}
		// Stripe 1 goes to the second reader, stripe 3 to it again, stripe
		// 2 to the first; the last stripe is short.
		for _, seq := range []uint64{1, pipeStripe, pipeStripe + 1, 2*pipeStripe + 5, 3*pipeStripe + 9, pipeLogLen} {
			for _, tc := range []struct {
				name  string
				col   string
				value func(orig []byte) any
				want  error
			}{
				{"other payload", "payload", func([]byte) any { return []byte{0xa1, 0x61, 'i', 0x00} }, ErrHashMismatch},
				{"payload not canonical", "payload", func([]byte) any { return []byte{0x18, 0x01} }, ErrInvalidPayload},
				{"hash", "hash", func(b []byte) any { return flip(b) }, ErrHashMismatch},
				{"short hash", "hash", func(b []byte) any { return b[:5] }, ErrHashMismatch},
				{"prev_hash", "prev_hash", func(b []byte) any { return flip(b) }, ErrBrokenLink},
				{"actor", "actor", func([]byte) any { return "q" }, ErrHashMismatch},
				{"time", "recorded_at", func([]byte) any { return "2026-12-03T12:00:00.000Z" }, ErrHashMismatch},
			} {
				t.Run(fmt.Sprintf("%s@%d", tc.name, seq), func(t *testing.T) {
					orig := col(tc.col, seq)
					set := `UPDATE events SET ` + tc.col + ` = $1 WHERE seq = $2`
					exec(set, tc.value(orig), seq)
					defer func() {
						if tc.col == "actor" || tc.col == "recorded_at" {
							exec(set, string(orig), seq)
						} else {
							exec(set, orig, seq)
						}
					}()
					err := l.Verify(ctx)
					noReaders(t)
					var ce *ChainError
					if !errors.As(err, &ce) || ce.Seq != seq || !errors.Is(err, tc.want) {
						t.Fatalf("Verify = %v, want a ChainError at %d wrapping %v", err, seq, tc.want)
					}
					_, rerr := ReplayFrom(ctx, d.SQL, nil, nopViews{})
					if rerr == nil || rerr.Error() != err.Error() {
						t.Fatalf("Verify = %v, but the one-query check (Replay's) = %v", err, rerr)
					}
				})
			}
		}
		if err := l.Verify(ctx); err != nil {
			t.Fatalf("after restoring: %v", err)
		}
		// Two faults: the first is reported, though the second lies in a
		// stripe that the other reader reads at the same time.
		first, second := uint64(2*pipeStripe-3), uint64(2*pipeStripe+3)
		for _, seq := range []uint64{second, first} {
			h := col("hash", seq)
			exec(`UPDATE events SET hash = $1 WHERE seq = $2`, flip(h), seq)
			defer exec(`UPDATE events SET hash = $1 WHERE seq = $2`, h, seq)
		}
		var ce *ChainError
		if err := l.Verify(ctx); !errors.As(err, &ce) || ce.Seq != first || !errors.Is(err, ErrHashMismatch) {
			t.Fatalf("Verify = %v, want a hash mismatch at %d", err, first)
		}
	})
}

// TestPipelinedVerifyGapsAndHead: missing events in a later stripe, a
// whole missing stripe, missing events at the end and a wrong head are
// reported as the one-query check reports them.
func TestPipelinedVerifyGapsAndHead(t *testing.T) {
	pipeLog(t, func(t *testing.T, d *db.DB, l *Log) {
		ctx := context.Background()
		exec := func(q string, args ...any) { t.Helper(); mustExec(t, d, q, args...) }
		check := func(seq uint64, want error) {
			t.Helper()
			err := l.Verify(ctx)
			noReaders(t)
			var ce *ChainError
			if !errors.As(err, &ce) || ce.Seq != seq || !errors.Is(err, want) {
				t.Fatalf("Verify = %v, want a ChainError at %d wrapping %v", err, seq, want)
			}
			if _, rerr := ReplayFrom(ctx, d.SQL, nil, nopViews{}); rerr == nil || rerr.Error() != err.Error() {
				t.Fatalf("Verify = %v, but the one-query check (Replay's) = %v", err, rerr)
			}
		}
		var hash []byte
		if err := d.SQL.QueryRowContext(ctx, `SELECT hash FROM event_head WHERE id = 1`).Scan(&hash); err != nil {
			t.Fatal(err)
		}
		exec(`UPDATE event_head SET hash = $1 WHERE id = 1`, make([]byte, 32))
		check(pipeLogLen, ErrHeadMismatch)
		exec(`UPDATE event_head SET hash = $1 WHERE id = 1`, hash)
		exec(`DELETE FROM events WHERE seq > $1`, pipeLogLen-3)
		check(pipeLogLen-2, ErrGap)
		exec(`DELETE FROM events WHERE seq > $1 AND seq <= $2`, 2*pipeStripe, 3*pipeStripe)
		check(2*pipeStripe+1, ErrGap)
		exec(`DELETE FROM events WHERE seq = $1`, pipeStripe+10)
		check(pipeStripe+10, ErrGap)
	})
}

// mustExec runs q on d or fails t.
func mustExec(t *testing.T, d *db.DB, q string, args ...any) {
	t.Helper()
	if _, err := d.SQL.ExecContext(context.Background(), q, args...); err != nil {
		t.Fatal(err)
	}
}

// nopViews is a ViewWriter that keeps nothing.
type nopViews struct{}

func (nopViews) Reset(context.Context, *sql.Tx) error        { return nil }
func (nopViews) Apply(context.Context, *sql.Tx, Event) error { return nil }

// TestPipeRangeStops: an error from the caller's function, or its context
// cancelled in the middle, stops the readers, and pipeRange returns only
// after they have stopped.
func TestPipeRangeStops(t *testing.T) {
	pipeLog(t, func(t *testing.T, d *db.DB, l *Log) {
		ctx := context.Background()
		var seqs []uint64
		n, err := pipeRange(ctx, d.SQL, 0, pipeLogLen, nil, func(r *rowReader) error {
			seqs = append(seqs, uint64(r.seq))
			return nil
		})
		if err != nil || n != pipeLogLen || len(seqs) != pipeLogLen || seqs[0] != 1 || seqs[len(seqs)-1] != pipeLogLen {
			t.Fatalf("pipeRange = %d, %v (%d events)", n, err, len(seqs))
		}
		for i, s := range seqs {
			if s != uint64(i+1) {
				t.Fatalf("event %d has seq %d", i, s)
			}
		}
		noReaders(t)

		stop := errors.New("stop")
		at := pipeStripe + pipeRows/2
		n, err = pipeRange(ctx, d.SQL, 0, pipeLogLen, verifyPrep, func(r *rowReader) error {
			if r.seq == int64(at) {
				return stop
			}
			return nil
		})
		if !errors.Is(err, stop) || n != at {
			t.Fatalf("pipeRange = %d, %v; want %d, the caller's error", n, err, at)
		}
		noReaders(t)

		cctx, cancel := context.WithCancel(ctx)
		defer cancel()
		n, err = pipeRange(cctx, d.SQL, 0, pipeLogLen, nil, func(r *rowReader) error {
			if r.seq == 10 {
				cancel()
			}
			return nil
		})
		if !errors.Is(err, context.Canceled) || n >= pipeLogLen {
			t.Fatalf("pipeRange with its context cancelled = %d, %v", n, err)
		}
		noReaders(t)

		err = l.ScanRecords(cctx, 0, func(_, _, _ []byte) error { return nil })
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("ScanRecords with a cancelled context = %v", err)
		}
		noReaders(t)
	})
}

// TestPipeRangeOneConnection: on a pool of one connection, or in a
// transaction, a pipelined read runs one reader and completes.
func TestPipeRangeOneConnection(t *testing.T) {
	pipeLog(t, func(t *testing.T, d *db.DB, l *Log) {
		ctx := context.Background()
		tx, err := d.SQL.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback()
		h, err := head(ctx, tx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := verifyTo(ctx, tx, h, 0, false, nil); err != nil {
			t.Fatalf("verifyTo in a transaction: %v", err)
		}
		tx.Rollback()
		d.SQL.SetMaxOpenConns(1)
		defer d.SQL.SetMaxOpenConns(0)
		if err := l.Verify(ctx); err != nil {
			t.Fatal(err)
		}
		n := 0
		if err := l.ScanRecords(ctx, 0, func(_, _, _ []byte) error { n++; return nil }); err != nil || n != pipeLogLen {
			t.Fatalf("ScanRecords = %v after %d records", err, n)
		}
		noReaders(t)
	})
}

// TestScanRecords: ScanRecords writes what Scan and AppendRecord write,
// from any point, and stops with the same error as they do.
func TestScanRecords(t *testing.T) {
	pipeLog(t, func(t *testing.T, d *db.DB, l *Log) {
		ctx := context.Background()
		// An event whose payload nests as deep as Check allows: valid, but
		// its record, one level deeper, is refused.
		deep := bytes.Repeat([]byte{0x81}, canonical.DefaultLimits.MaxDepth-1)
		deep = append(deep, 0x80)
		okDeep := append(bytes.Repeat([]byte{0x81}, canonical.DefaultLimits.MaxDepth-2), 0x80)
		if _, err := l.Commit(ctx,
			Event{Type: "test.deepish", Actor: "ä ö 😀", Time: time.Unix(1, 5), Payload: okDeep},
			Event{Type: "test.deep", Actor: "a", Time: time.Unix(2, 0), Payload: deep},
			Event{Type: "test.after", Actor: "a", Time: time.Unix(3, 0), Payload: []byte{0xa0}}); err != nil {
			t.Fatal(err)
		}
		old := func(since uint64) ([][]byte, error) {
			var out [][]byte
			for ev, err := range l.Scan(ctx, since) {
				if err != nil {
					return out, err
				}
				rec, err := AppendRecord(nil, ev)
				if err != nil {
					return out, err
				}
				out = append(out, rec)
			}
			return out, nil
		}
		for _, since := range []uint64{0, 1, pipeStripe - 1, pipeLogLen - 1, pipeLogLen, pipeLogLen + 1, pipeLogLen + 2, pipeLogLen + 3, pipeLogLen + 100} {
			want, werr := old(since)
			var got [][]byte
			gerr := l.ScanRecords(ctx, since, func(head, payload, tail []byte) error {
				got = append(got, bytes.Join([][]byte{head, payload, tail}, nil))
				return nil
			})
			noReaders(t)
			if fmt.Sprint(gerr) != fmt.Sprint(werr) {
				t.Fatalf("since %d: ScanRecords = %v, Scan and AppendRecord = %v", since, gerr, werr)
			}
			if len(got) != len(want) {
				t.Fatalf("since %d: %d records, want %d", since, len(got), len(want))
			}
			for i := range got {
				if !bytes.Equal(got[i], want[i]) {
					t.Fatalf("since %d: record %d = %x, want %x", since, i, got[i], want[i])
				}
			}
		}
		// The caller's error ends it.
		stop := errors.New("stop")
		n := 0
		if err := l.ScanRecords(ctx, 0, func(_, _, _ []byte) error {
			if n++; n == 2*pipeStripe {
				return stop
			}
			return nil
		}); !errors.Is(err, stop) || n != 2*pipeStripe {
			t.Fatalf("ScanRecords = %v after %d records", err, n)
		}
		noReaders(t)
	})
}

// TestAppendStoredRecord: the record built from the stored fields is
// AppendRecord's, byte for byte, whenever appendStoredRecord builds one.
func TestAppendStoredRecord(t *testing.T) {
	payloads := [][]byte{{0xa0}, {0x80}, {0x01}, {0x61, 'x'}, {0xa1, 0x61, 'k', 0x61, 'v'},
		{0x18, 0x01} /* not shortest */, {0x62, 0xff, 0xfe} /* not UTF-8 */, {}, {0x01, 0x02}, /* two items */
		append(bytes.Repeat([]byte{0x81}, canonical.DefaultLimits.MaxDepth-2), 0x80),
		append(bytes.Repeat([]byte{0x81}, canonical.DefaultLimits.MaxDepth-1), 0x80)}
	built := 0
	rapid.Check(t, func(rt *rapid.T) {
		ev := Event{
			Seq:     rapid.OneOf(rapid.Uint64Range(1, 1<<20), rapid.Uint64Range(1, 1<<63-1)).Draw(rt, "seq"),
			Type:    rapid.OneOf(rapid.StringMatching(`[a-z]{1,5}\.[a-z]{1,5}`), rapid.String(), rapid.Custom(func(t *rapid.T) string { return string(rapid.SliceOf(rapid.Byte()).Draw(t, "b")) })).Draw(rt, "type"),
			Actor:   rapid.OneOf(rapid.String(), rapid.Custom(func(t *rapid.T) string { return string(rapid.SliceOf(rapid.Byte()).Draw(t, "b")) })).Draw(rt, "actor"),
			Time:    time.Unix(rapid.Int64Range(-1e10, 1e11).Draw(rt, "sec"), rapid.Int64Range(0, 999999999).Draw(rt, "nsec")).UTC(),
			Payload: rapid.SampledFrom(payloads).Draw(rt, "payload"),
		}
		var err error
		for _, h := range []*identity.Digest{&ev.PrevHash, &ev.Hash} {
			if *h, err = identity.NewDigest(identity.BLAKE3, bytes.Repeat([]byte{rapid.Byte().Draw(rt, "h")}, 32)); err != nil {
				rt.Fatal(err)
			}
		}
		r := rowReader{seq: int64(ev.Seq), typ: []byte(ev.Type), actor: []byte(ev.Actor), ts: []byte(FormatTime(ev.Time)),
			payload: ev.Payload, prev: ev.PrevHash.Bytes(), hash: ev.Hash.Bytes()}
		prefix := []byte{0xee}
		got, ok := appendStoredRecord(prefix, &r)
		want, werr := AppendRecord(nil, ev)
		if !ok {
			if !bytes.Equal(got, prefix) {
				rt.Fatalf("appendStoredRecord declined but appended %x", got[1:])
			}
			return
		}
		built++
		// What it appends goes around the payload.
		got = got[1:]
		split := len(got) - storedRecordTail
		if split < 0 {
			rt.Fatalf("appendStoredRecord appended %x, shorter than its tail", got)
		}
		got = bytes.Join([][]byte{got[:split], ev.Payload, got[split:]}, nil)
		if werr != nil || !bytes.Equal(got, want) {
			rt.Fatalf("appendStoredRecord = %x, AppendRecord = %x, %v", got, want, werr)
		}
	})
	if built == 0 {
		t.Fatal("appendStoredRecord built no record")
	}
}

// failViews is a ViewWriter that records the sequence of every event it
// is given and fails (or runs hook) at one of them.
type failViews struct {
	seqs   []uint64
	failAt uint64
	hook   func()
}

var errApply = errors.New("apply refused")

func (*failViews) Reset(context.Context, *sql.Tx) error { return nil }
func (v *failViews) Apply(_ context.Context, _ *sql.Tx, ev Event) error {
	v.seqs = append(v.seqs, ev.Seq)
	if ev.Seq == v.failAt {
		if v.hook != nil {
			v.hook()
			return nil
		}
		return errApply
	}
	return nil
}

// replayVia replays d's log into vw beside its own transaction (beside:
// ReplayFrom with the pool as the source, so the log is read on a reader
// of its own) or in one transaction (ReplayTx), rolled back after.
func replayVia(ctx context.Context, d *db.DB, beside bool, vw ViewWriter) (uint64, error) {
	if beside {
		return ReplayFrom(ctx, d.SQL, nil, vw)
	}
	tx, err := Begin(ctx, d)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback()
	return ReplayTx(ctx, tx, vw)
}

// TestReplayFromFirstFailure: whether the log is read on the replay's own
// transaction or beside it (src is not dst), events are applied in order
// and the first failure in sequence order is returned: a view's refusal
// before a broken hash, in the same batch of reads or an earlier one, and
// the broken hash before a later refusal.
func TestReplayFromFirstFailure(t *testing.T) {
	pipeLog(t, func(t *testing.T, d *db.DB, l *Log) {
		ctx := context.Background()
		exec := func(q string, args ...any) { t.Helper(); mustExec(t, d, q, args...) }
		replay := func(t *testing.T, beside bool, vw ViewWriter) (uint64, error) {
			t.Helper()
			return replayVia(ctx, d, beside, vw)
		}
		inOrder := func(t *testing.T, seqs []uint64, last uint64) {
			t.Helper()
			if uint64(len(seqs)) != last {
				t.Fatalf("%d events applied, want %d", len(seqs), last)
			}
			for i, s := range seqs {
				if s != uint64(i+1) {
					t.Fatalf("event %d applied has seq %d", i, s)
				}
			}
		}
		for _, beside := range []bool{false, true} {
			t.Run(fmt.Sprintf("beside=%v", beside), func(t *testing.T) {
				vw := &failViews{}
				last, err := replay(t, beside, vw)
				if err != nil || last != pipeLogLen {
					t.Fatalf("replay = %d, %v", last, err)
				}
				inOrder(t, vw.seqs, pipeLogLen)

				var hash []byte
				const broken = 2500
				if err := d.SQL.QueryRowContext(ctx, `SELECT hash FROM events WHERE seq = $1`, broken).Scan(&hash); err != nil {
					t.Fatal(err)
				}
				bad := bytes.Clone(hash)
				bad[0] ^= 1
				exec(`UPDATE events SET hash = $1 WHERE seq = $2`, bad, broken)
				defer exec(`UPDATE events SET hash = $1 WHERE seq = $2`, hash, broken)
				// 2400 is read in the same batch of 1000 as the broken
				// hash, 1500 in the batch before.
				for _, at := range []uint64{2400, 1500} {
					vw := &failViews{failAt: at}
					last, err := replay(t, beside, vw)
					if !errors.Is(err, errApply) || last != at-1 {
						t.Fatalf("refusal at %d, broken hash at %d: replay = %d, %v; want %d and the refusal", at, broken, last, err, at-1)
					}
					inOrder(t, vw.seqs, at)
				}
				vw = &failViews{failAt: 3000}
				last, err = replay(t, beside, vw)
				var ce *ChainError
				if !errors.As(err, &ce) || ce.Seq != broken || !errors.Is(err, ErrHashMismatch) || last != broken-1 {
					t.Fatalf("broken hash at %d, refusal at 3000: replay = %d, %v; want the hash mismatch", broken, last, err)
				}
				inOrder(t, vw.seqs, broken-1)
			})
		}
	})
}

// TestReplayFromCancel: a replay whose context is cancelled while it
// applies its first batch returns the cancellation, on both paths, instead
// of hanging, and leaves no reader running. Beside the log, the batch the
// reader read ahead is not applied. The first event's view waits long
// enough for the reader to have read the second batch and to wait for a
// free buffer, the state in which a cancellation once left the applier
// blocked for good on the buffer it handed back.
func TestReplayFromCancel(t *testing.T) {
	pipeLog(t, func(t *testing.T, d *db.DB, l *Log) {
		for _, beside := range []bool{false, true} {
			t.Run(fmt.Sprintf("beside=%v", beside), func(t *testing.T) {
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				vw := &failViews{failAt: 1, hook: func() {
					time.Sleep(200 * time.Millisecond)
					cancel()
				}}
				type result struct {
					last uint64
					err  error
				}
				done := make(chan result, 1)
				go func() {
					last, err := replayVia(ctx, d, beside, vw)
					done <- result{last, err}
				}()
				var r result
				select {
				case r = <-done:
				case <-time.After(30 * time.Second):
					t.Fatal("replay still running 30 s after its context was cancelled")
				}
				if !errors.Is(r.err, context.Canceled) {
					t.Fatalf("replay with its context cancelled = %d, %v", r.last, r.err)
				}
				if beside && (r.last != 1000 || len(vw.seqs) != 1000) {
					t.Fatalf("cancelled in the first batch of 1000: replay = %d with %d events applied, want 1000 and 1000", r.last, len(vw.seqs))
				}
				noReplayReader(t)
			})
		}
	})
}

// noReplayReader fails if the goroutine that reads beside a replay is
// still running (see noReaders).
func noReplayReader(t *testing.T) {
	t.Helper()
	noneRunning(t, "the replay's reader", "events.verifyTo.func")
}

// TestReplayFromWholeBatches: a log that ends exactly on a batch of the
// read beside the replay (2,000 events, batches of 1,000) is applied whole
// and in order, its last batch ending the read with the head checked, on
// both paths.
func TestReplayFromWholeBatches(t *testing.T) {
	pipeLog(t, func(t *testing.T, d *db.DB, l *Log) {
		const n = 2000
		mustExec(t, d, `DELETE FROM events WHERE seq > $1`, n)
		mustExec(t, d, `UPDATE event_head SET seq = $1, hash = (SELECT hash FROM events WHERE seq = $1) WHERE id = 1`, n)
		ctx := context.Background()
		for _, beside := range []bool{false, true} {
			vw := &failViews{}
			last, err := replayVia(ctx, d, beside, vw)
			if err != nil || last != n || len(vw.seqs) != n || vw.seqs[n-1] != n {
				t.Fatalf("beside=%v: replay = %d, %v with %d events applied; want %d", beside, last, err, len(vw.seqs), n)
			}
		}
		noReplayReader(t)
	})
}
