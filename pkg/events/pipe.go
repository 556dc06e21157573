package events

import (
	"context"
	"database/sql"
	"fmt"

	"modernc.org/sqlite"
)

// A pipelined read (pipeRange) runs its queries on readers, goroutines of
// their own, which copy the rows out of the driver's buffers into batches,
// do the work on each event that needs no other event (a prepFunc: hashing
// it, encoding it) and hand the batches to the caller's goroutine over
// channels; the caller takes the events in order and gives each batch back
// to its reader to be reused. Nothing is allocated per event but what the
// driver allocates.
const (
	// pipeBatches is how many batches each reader of a read cycles
	// through: being filled, queued or being consumed.
	pipeBatches = 5
	// pipeRows and pipeBytes bound one batch (a batch holding a single
	// larger event is larger).
	pipeRows  = 256
	pipeBytes = 256 << 10
)

// rowBatch is a run of consecutive stored events whose byte fields are
// copied, one after another, into arena (or kept: storedRow.blobs).
type rowBatch struct {
	rows  []storedRow
	arena []byte
	last  bool // the last batch of a stripe
}

// storedRow is one event of a rowBatch: its sequence number and where each
// byte field ends in the arena (each starts where the one before ends, the
// first where the previous row's last ends).
type storedRow struct {
	seq int64
	end [7]int // type, actor, recorded_at, payload, prev_hash, hash, extra
	// blobs holds payload, prev_hash and hash themselves when the reader
	// kept the driver's slices (freshBlobs) instead of copying them; their
	// spans in the arena are then empty.
	blobs [3][]byte
	kept  bool
}

func (b *rowBatch) reset() {
	b.rows = b.rows[:0]
	b.arena = b.arena[:0]
	b.last = false
}

// add copies the fields of one row, as rowReader holds them, into b,
// followed by what prep (if not nil) appends for it. If keep is set, the
// BLOB fields are kept rather than copied (see freshBlobs).
func (b *rowBatch) add(r *rowReader, keep bool, prep prepFunc) {
	row := storedRow{seq: r.seq, kept: keep}
	for i, f := range [...][]byte{r.typ, r.actor, r.ts, r.payload, r.prev, r.hash} {
		if keep && i >= 3 {
			row.blobs[i-3] = f
		} else {
			b.arena = append(b.arena, f...)
		}
		row.end[i] = len(b.arena)
	}
	if prep != nil {
		b.arena = prep(b.arena, r)
	}
	row.end[6] = len(b.arena)
	b.rows = append(b.rows, row)
}

// prepFunc appends to dst what a reader works out for the row r ahead of
// the caller (rowReader.extra holds it there). Each reader has its own.
type prepFunc func(dst []byte, r *rowReader) []byte

// full reports whether b should be handed over.
func (b *rowBatch) full() bool { return len(b.rows) >= pipeRows || len(b.arena) >= pipeBytes }

// load points r's fields at row i of b; they stay valid until b is reset.
func (b *rowBatch) load(i int, r *rowReader) {
	row := &b.rows[i]
	off := 0
	if i > 0 {
		off = b.rows[i-1].end[6]
	}
	r.seq = row.seq
	for j, f := range [...]*sql.RawBytes{&r.typ, &r.actor, &r.ts, &r.payload, &r.prev, &r.hash, &r.extra} {
		end := row.end[j]
		*f = b.arena[off:end:end]
		if row.kept && j >= 3 && j < 6 {
			*f = row.blobs[j-3]
		}
		off = end
	}
}

// freshBlobs reports whether q's driver returns every BLOB value as a new
// slice that it never touches again, so that a reader may keep it past the
// next row instead of copying it: modernc.org/sqlite does (its
// conn.columnBlob copies the value out of SQLite into a new slice) and
// database/sql hands that slice on as the sql.RawBytes scanned into.
func freshBlobs(q Querier) bool {
	d, ok := q.(*sql.DB)
	if !ok {
		return false
	}
	_, ok = d.Driver().(*sqlite.Driver)
	return ok
}

// pipeRange is scanRange with the reading on goroutines of their own: it
// calls fn, on the caller's goroutine, for every stored event with sequence
// number above since and at most until, in order, and returns how many it
// read. The range is cut into stripes of pipeStripe events, read by
// pipeReaders readers in turn (reader k reads stripes k, k+pipeReaders, …)
// with one query each, on a connection each (one reader only, unless q is a
// pool of at least pipeReaders connections). If newPrep is not nil, each
// reader also runs a prepFunc of its own on every row and fn finds the
// result in rowReader.extra. fn's first error stops the read and is
// returned. pipeRange returns only once every reader has stopped.
//
// A reader owns its batches and waits only for one of them to come back,
// never for another reader, so the caller, taking the stripes in order,
// always finds the one it waits for being read.
func pipeRange(ctx context.Context, q Querier, since, until uint64, newPrep func() prepFunc, fn func(*rowReader) error) (int, error) {
	if since >= until {
		return 0, nil
	}
	if since > maxSeq || until > maxSeq {
		return 0, fmt.Errorf("%w: sequence number out of range", ErrInvalidEvent)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stripes := (until - since + pipeStripe - 1) / pipeStripe
	keep := freshBlobs(q)
	readers := int(min(stripes, pipeReaders))
	if d, ok := q.(*sql.DB); !ok || d.Stats().MaxOpenConnections != 0 && d.Stats().MaxOpenConnections < readers {
		// One connection (a transaction's, or a pool that small): one
		// reader, which never waits for another to give a connection
		// back while the caller waits for it.
		readers = 1
	}
	rd := make([]*pipeReader, readers)
	for k := range rd {
		p := &pipeReader{
			// Both channels hold every batch of the reader, so that no
			// send blocks.
			free: make(chan *rowBatch, pipeBatches),
			full: make(chan *rowBatch, pipeBatches),
		}
		for range pipeBatches {
			p.free <- new(rowBatch)
		}
		rd[k] = p
		var prep prepFunc
		if newPrep != nil {
			prep = newPrep()
		}
		go func() {
			defer close(p.full)
			p.err = p.read(ctx, q, since, until, uint64(k), uint64(readers), keep, prep)
		}()
	}
	var (
		rr  rowReader
		n   int
		err error
	)
	// Take the stripes in order; a reader that fails closes its channel
	// after the rows it read.
stripes:
	for s := range stripes {
		p := rd[s%uint64(readers)]
		for {
			b, ok := <-p.full
			if !ok {
				break stripes
			}
			for i := 0; err == nil && i < len(b.rows); i++ {
				b.load(i, &rr)
				n++
				err = fn(&rr)
			}
			last := b.last
			p.free <- b
			if err != nil {
				break stripes
			}
			if last {
				break
			}
		}
	}
	cancel()
	for _, p := range rd {
		for b := range p.full {
			p.free <- b
		}
	}
	// Every full channel is closed: the readers have returned.
	if err != nil {
		return n, err
	}
	for _, p := range rd {
		if p.err != nil {
			return n, p.err
		}
	}
	return n, nil
}

const (
	// pipeReaders is how many readers one pipelined read runs.
	pipeReaders = 2
	// pipeStripe is how many events a reader reads with one query before
	// the next stripe goes to the next reader.
	pipeStripe = pipeRows * (pipeBatches - 1)
)

// readerMmap is how much of an SQLite database file a reader's connection
// maps (PRAGMA mmap_size).
const readerMmap = 1 << 30

// pipeReader is one reader of pipeRange with its batches.
type pipeReader struct {
	free, full chan *rowBatch
	err        error // set before full is closed
}

// read reads stripe k, k+m, k+2m, … of (since, until] into batches, marking
// the last batch of each stripe (an empty one if the stripe is empty).
func (p *pipeReader) read(ctx context.Context, q Querier, since, until, k, m uint64, keep bool, prep prepFunc) error {
	var r rowReader
	if keep {
		// SQLite: read through a connection of our own that maps the
		// database file instead of copying its pages into the page cache
		// (fewer copies and, in a short-lived tool, far fewer page faults).
		// mmap_size is a per-connection setting that changes no result; the
		// connection keeps it when it goes back to the pool, so that the
		// next pipelined read finds the file mapped.
		conn, err := q.(*sql.DB).Conn(ctx)
		if err != nil {
			return fmt.Errorf("events: read: %w", err)
		}
		defer conn.Close()
		if _, err := conn.ExecContext(ctx, fmt.Sprintf("PRAGMA mmap_size = %d", readerMmap)); err != nil {
			return fmt.Errorf("events: read: %w", err)
		}
		q = conn
	}
	for lo := since + k*pipeStripe; lo < until; lo += m * pipeStripe {
		hi := min(lo+pipeStripe, until)
		var b *rowBatch
		get := func() error {
			select {
			case b = <-p.free:
				b.reset()
				return nil
			case <-ctx.Done():
				return fmt.Errorf("events: read: %w", ctx.Err())
			}
		}
		_, err := scanRange(ctx, q, lo, hi, int(hi-lo), &r, func(r *rowReader) error {
			if b == nil {
				if err := get(); err != nil {
					return err
				}
			}
			b.add(r, keep, prep)
			if b.full() {
				p.full <- b
				b = nil
			}
			return nil
		})
		if err != nil {
			if b != nil {
				p.full <- b
			}
			return err
		}
		if b == nil {
			if err := get(); err != nil {
				return err
			}
		}
		b.last = true
		p.full <- b
	}
	return nil
}
