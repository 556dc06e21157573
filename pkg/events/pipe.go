package events

import (
	"context"
	"database/sql"
	"fmt"
)

// A pipelined read runs the query on a goroutine of its own, which copies
// the rows out of the driver's buffers into batches and hands them to the
// caller's goroutine over a channel; the caller checks or encodes one batch
// while the reader fills the next, and gives each batch back to be reused.
const (
	// pipeBatches is how many batches a read cycles through: one being
	// filled, the others queued or being consumed.
	pipeBatches = 4
	// pipeRows and pipeBytes bound one batch (a batch holding a single
	// larger event is larger).
	pipeRows  = 256
	pipeBytes = 256 << 10
)

// rowBatch is a run of consecutive stored events whose byte fields are
// copied, one after another, into arena.
type rowBatch struct {
	rows  []storedRow
	arena []byte
}

// storedRow is one event of a rowBatch: its sequence number and where each
// byte field ends in the arena (each starts where the one before ends, the
// first where the previous row's last ends).
type storedRow struct {
	seq int64
	end [6]int // type, actor, recorded_at, payload, prev_hash, hash
}

func (b *rowBatch) reset() {
	b.rows = b.rows[:0]
	b.arena = b.arena[:0]
}

// add copies the fields of one row, as rowReader holds them, into b.
func (b *rowBatch) add(r *rowReader) {
	row := storedRow{seq: r.seq}
	for i, f := range [...][]byte{r.typ, r.actor, r.ts, r.payload, r.prev, r.hash} {
		b.arena = append(b.arena, f...)
		row.end[i] = len(b.arena)
	}
	b.rows = append(b.rows, row)
}

// full reports whether b should be handed over.
func (b *rowBatch) full() bool { return len(b.rows) >= pipeRows || len(b.arena) >= pipeBytes }

// load points r's fields at row i of b; they stay valid until b is reset.
func (b *rowBatch) load(i int, r *rowReader) {
	row := &b.rows[i]
	off := 0
	if i > 0 {
		off = b.rows[i-1].end[5]
	}
	r.seq = row.seq
	for j, f := range [...]*sql.RawBytes{&r.typ, &r.actor, &r.ts, &r.payload, &r.prev, &r.hash} {
		end := row.end[j]
		*f = b.arena[off:end:end]
		off = end
	}
}

// pipeRange is scanRange with the reading on a goroutine of its own: it
// calls fn, on the caller's goroutine, for every stored event with sequence
// number above since and at most until, in order, and returns how many it
// read. The reader queries at most chunk rows at a time, each query after
// the last event the previous one returned, until a query returns fewer
// than chunk rows or until is reached. fn's first error stops the read and
// is returned. pipeRange returns only once the reader has stopped.
func pipeRange(ctx context.Context, q Querier, since, until uint64, chunk int, fn func(*rowReader) error) (int, error) {
	if chunk <= 0 || since >= until {
		return 0, nil
	}
	if since > maxSeq || until > maxSeq {
		return 0, fmt.Errorf("%w: sequence number out of range", ErrInvalidEvent)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// Both channels hold every batch, so that neither side blocks on a
	// send: the reader waits only for a free batch, the caller only for a
	// full one.
	free := make(chan *rowBatch, pipeBatches)
	full := make(chan *rowBatch, pipeBatches)
	for range pipeBatches {
		free <- new(rowBatch)
	}
	var readErr error
	go func() {
		defer close(full)
		readErr = fillBatches(ctx, q, since, until, chunk, free, full)
	}()
	var (
		rr  rowReader
		n   int
		err error
	)
	for b := range full {
		for i := 0; err == nil && i < len(b.rows); i++ {
			b.load(i, &rr)
			n++
			if err = fn(&rr); err != nil {
				cancel() // the reader stops; keep draining until it closes full
			}
		}
		free <- b
	}
	// full is closed: the reader has returned and readErr is set.
	if err != nil {
		return n, err
	}
	return n, readErr
}

// fillBatches is pipeRange's reader.
func fillBatches(ctx context.Context, q Querier, since, until uint64, chunk int, free <-chan *rowBatch, full chan<- *rowBatch) error {
	var (
		r rowReader
		b *rowBatch
	)
	flush := func() {
		if b != nil && len(b.rows) > 0 {
			full <- b
			b = nil
		}
	}
	defer flush()
	last := since
	for last < until {
		n, err := scanRange(ctx, q, last, until, chunk, &r, func(r *rowReader) error {
			if b == nil {
				select {
				case b = <-free:
					b.reset()
				case <-ctx.Done():
					return fmt.Errorf("events: read: %w", ctx.Err())
				}
			}
			b.add(r)
			if b.full() {
				flush()
			}
			return nil
		})
		if err != nil {
			return err
		}
		if n < chunk {
			return nil
		}
		last = uint64(r.seq)
	}
	return nil
}
