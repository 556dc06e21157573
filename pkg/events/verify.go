package events

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"io"
	"time"

	"github.com/artifactstore/artifact-store/pkg/canonical"
	"github.com/artifactstore/artifact-store/pkg/db"
	"github.com/artifactstore/artifact-store/pkg/identity"
	"lukechampine.com/blake3"
)

// ChainError names the first sequence number at which the chain fails.
// errors.Is matches ErrChainBroken and the specific cause (ErrHashMismatch,
// ErrBrokenLink, ErrGap, ErrHeadMismatch or ErrInvalidPayload).
type ChainError struct {
	Seq    uint64
	Err    error
	Detail string
}

func (e *ChainError) Error() string {
	s := fmt.Sprintf("%v at seq %d: %v", ErrChainBroken, e.Seq, e.Err)
	if e.Detail != "" {
		s += " (" + e.Detail + ")"
	}
	return s
}

// Unwrap returns ErrChainBroken and the cause.
func (e *ChainError) Unwrap() []error { return []error{ErrChainBroken, e.Err} }

// hashSize is the length of an event hash (BLAKE3-256).
const hashSize = 32

// chain checks events one after another. It reuses one hasher and one
// record buffer, so that checking an event allocates nothing.
type chain struct {
	seq  uint64
	hash [hashSize]byte
	x    recordHasher
	pre  []byte
}

func newChain() chain { return chain{x: newRecordHasher()} }

// next checks the stored event r, the successor of the last one checked,
// and returns its time: its sequence, its link to the previous hash, its
// payload (canonical CBOR) and its stored hash against BLAKE3(prev_hash ‖
// record), the record built from the stored fields as Event.Record builds
// it (the stored time is checked to be in FormatTime's form first). The
// payload's form and the hash are what r.extra says if a reader worked
// them out (recordHasher.precheck), else worked out here.
func (c *chain) next(r *rowReader) (time.Time, error) {
	t, err := r.time()
	if err != nil {
		return t, err
	}
	if err := r.checkHashes(); err != nil {
		return t, err
	}
	seq, want := uint64(r.seq), c.seq+1
	switch {
	case seq != want:
		return t, &ChainError{Seq: want, Err: ErrGap, Detail: fmt.Sprintf("next stored event is %d", seq)}
	case !bytes.Equal(r.prev, c.hash[:]):
		prev, _ := digestFrom(r.prev)
		return t, &ChainError{Seq: seq, Err: ErrBrokenLink, Detail: fmt.Sprintf("prev_hash %v, previous hash %v", prev, c.digest())}
	}
	pre := r.extra
	if len(pre) == 0 {
		c.pre = c.x.precheck(c.pre[:0], r)
		pre = c.pre
	}
	if pre[0] == preBadPayload {
		// Rare: check again for the reason.
		return t, &ChainError{Seq: seq, Err: ErrInvalidPayload, Detail: canonical.Check(r.payload).Error()}
	}
	if sum := pre[1:]; !bytes.Equal(sum, r.hash) {
		stored, _ := digestFrom(r.hash)
		got, _ := digestFrom(sum)
		return t, &ChainError{Seq: seq, Err: ErrHashMismatch, Detail: fmt.Sprintf("stored %v, recomputed %v", stored, got)}
	}
	c.seq = seq
	copy(c.hash[:], r.hash)
	return t, nil
}

// recordHasher works out the part of checking a stored event that needs no
// other event: whether its payload is canonical and BLAKE3(prev_hash ‖
// record). It reuses one hasher and one record buffer.
type recordHasher struct {
	h   *blake3.Hasher
	rec []byte
	sum []byte
}

func newRecordHasher() recordHasher { return recordHasher{h: blake3.New(hashSize, nil)} }

// What precheck appends first.
const (
	preBadPayload = 1 // the payload is not canonical (nothing follows)
	preHashed     = 2 // the recomputed hash follows
)

// bigPayload is the size from which precheck checks a payload's form and
// hashes it concurrently.
const bigPayload = 1 << 20

// precheck appends to dst preBadPayload, or preHashed and the recomputed
// hash, for the stored event r, whose prev_hash must be hashSize long.
func (x *recordHasher) precheck(dst []byte, r *rowReader) []byte {
	// The record is its head (everything before the payload) and the
	// payload itself, hashed as they lie: no copy of the payload.
	x.rec = appendRecordHead(x.rec[:0], uint64(r.seq), r.ts, r.typ, r.actor)
	var checked error
	if len(r.payload) < bigPayload {
		checked = canonical.Check(r.payload)
		if checked == nil {
			x.hash(r.prev, r.payload)
		}
	} else {
		// Check and hash a large payload at once, on two goroutines.
		done := make(chan error, 1)
		go func() { done <- canonical.Check(r.payload) }()
		x.hash(r.prev, r.payload)
		checked = <-done
	}
	if checked != nil {
		return append(dst, preBadPayload)
	}
	return append(append(dst, preHashed), x.sum...)
}

// verifyPrep is the prepFunc of a pipelined check: every reader hashes the
// events it reads (precheck), so that the caller only links them up.
func verifyPrep() prepFunc {
	x := newRecordHasher()
	return func(dst []byte, r *rowReader) []byte {
		if len(r.prev) != hashSize || len(r.hash) != hashSize {
			return dst // chain.next reports it before it needs the hash
		}
		return x.precheck(dst, r)
	}
}

// hash sets x.sum to BLAKE3(prev ‖ x.rec ‖ payload).
func (x *recordHasher) hash(prev, payload []byte) {
	x.h.Reset()
	x.h.Write(prev)
	x.h.Write(x.rec)
	x.h.Write(payload)
	x.sum = x.h.Sum(x.sum[:0])
}

// digest returns the last checked event's hash (GenesisHash before the
// first).
func (c *chain) digest() identity.Digest {
	d, _ := digestFrom(c.hash[:])
	return d
}

// Verify walks the log from the first event to the head read at the start
// and returns nil if every event links to its predecessor and its stored
// hash matches the recomputed one, or a *ChainError naming the first bad
// sequence. Events appended while Verify runs are not checked.
func (l *Log) Verify(ctx context.Context) error {
	h, err := l.Head(ctx)
	if err != nil {
		return err
	}
	_, err = verifyTo(ctx, l.db.SQL, h, verifyBatch, false, nil)
	return err
}

// verifyBatch is how many events one query of a check reads; a replay
// holds that many events in memory before it applies them (its reads and
// writes may share one connection, which cannot write while a query's
// rows are open).
const verifyBatch = 4096

// verifyTo checks events 1..h.Seq and their agreement with h, calling apply
// (if not nil) for each good event in order. With apply, the events are
// read batch events at a time; if ahead is set, a goroutine of its own
// reads and checks them while apply works on the batch before (the caller
// must not use q in apply: it reads on another connection), else this one
// reads a batch and then applies it. Either way the first failure in
// sequence order is returned: a chain failure, or apply's error for an
// earlier event.
func verifyTo(ctx context.Context, q Querier, h Head, batch int, ahead bool, apply func(Event) error) (uint64, error) {
	c := newChain()
	if apply == nil {
		// Nothing to write: readers read the range and hash every event
		// (verifyPrep) while this goroutine links them up in order.
		if h.Seq > 0 {
			_, err := pipeRange(ctx, q, 0, h.Seq, verifyPrep, func(r *rowReader) error {
				_, err := c.next(r)
				return err
			})
			if err != nil {
				return c.seq, err
			}
			if c.seq < h.Seq {
				return c.seq, &ChainError{Seq: c.seq + 1, Err: ErrGap, Detail: fmt.Sprintf("event_head is at %d", h.Seq)}
			}
		}
		return c.seq, c.end(h)
	}
	if h.Seq == 0 {
		return 0, c.end(h)
	}
	if !ahead {
		var (
			evs []Event
			err error
		)
		for {
			evs, err = c.read(ctx, q, h, batch, evs[:0])
			for _, ev := range evs {
				if aerr := apply(ev); aerr != nil {
					return ev.Seq - 1, aerr
				}
			}
			if err == nil && c.seq == h.Seq {
				err = c.end(h)
			} else if err == nil {
				continue
			}
			return c.seq, err
		}
	}
	// Two batches of events cycle between the reader and this goroutine.
	type read struct {
		evs []Event
		err error // io.EOF after the last event (and the head) checked
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// Neither channel ever blocks a sender: each can hold both batches. The
	// applier's send to free must not block, since the reader may already
	// have returned at ctx.
	free, full := make(chan []Event, 2), make(chan read, 2)
	free <- nil
	go func() {
		defer close(full)
		var evs []Event
		for {
			var err error
			evs, err = c.read(ctx, q, h, batch, evs[:0])
			if err == nil && c.seq == h.Seq {
				if err = c.end(h); err == nil {
					err = io.EOF
				}
			}
			full <- read{evs, err} // never blocks: there are two batches
			if err != nil {
				return
			}
			select {
			case evs = <-free:
			case <-ctx.Done():
				return
			}
		}
	}()
	// stop stops the reader and waits until it has returned.
	stop := func() {
		cancel()
		for range full {
		}
	}
	var applied uint64 // the last event applied
	for b := range full {
		if ctx.Err() != nil {
			break // cancelled: apply nothing read since
		}
		for _, ev := range b.evs {
			if err := apply(ev); err != nil {
				stop()
				return ev.Seq - 1, err
			}
			applied = ev.Seq
		}
		if b.err != nil {
			stop()
			if b.err == io.EOF {
				return h.Seq, nil
			}
			return c.seq, b.err
		}
		free <- b.evs
	}
	stop()
	return applied, fmt.Errorf("events: replay: %w", ctx.Err()) // the reader stopped at ctx
}

// read reads and checks up to batch events after c.seq, at most h.Seq,
// appends the good ones to evs (copies, valid after the next read) and
// returns them with the first chain failure or read error.
func (c *chain) read(ctx context.Context, q Querier, h Head, batch int, evs []Event) ([]Event, error) {
	var rr rowReader
	n, err := scanRange(ctx, q, c.seq, h.Seq, batch, &rr, func(r *rowReader) error {
		t, err := c.next(r)
		if err != nil {
			return err
		}
		ev := Event{Seq: uint64(r.seq), Type: string(r.typ), Actor: string(r.actor), Time: t, Payload: bytes.Clone(r.payload)}
		ev.PrevHash, _ = digestFrom(r.prev)
		ev.Hash, _ = digestFrom(r.hash)
		evs = append(evs, ev)
		return nil
	})
	if err == nil && n == 0 {
		err = &ChainError{Seq: c.seq + 1, Err: ErrGap, Detail: fmt.Sprintf("event_head is at %d", h.Seq)}
	}
	return evs, err
}

// end checks that the last event checked is the head h.
func (c *chain) end(h Head) error {
	if !bytes.Equal(c.hash[:], h.Hash.Bytes()) {
		return &ChainError{Seq: h.Seq, Err: ErrHeadMismatch, Detail: fmt.Sprintf("head hash %v, last event hash %v", h.Hash, c.digest())}
	}
	return nil
}

// ViewWriter maintains the views of the log. Replay calls Reset once and
// then Apply for every event in order, all in one transaction; an error
// from either rolls the whole replay back.
type ViewWriter interface {
	// Reset empties every view the writer owns.
	Reset(ctx context.Context, tx *sql.Tx) error
	// Apply updates the views for one event. It must depend on nothing but
	// the event and the views (no clock, no randomness).
	Apply(ctx context.Context, tx *sql.Tx, ev Event) error
}

// Flusher is a ViewWriter that may hold back what Apply writes (to write
// many events' rows in one statement). Replay calls Flush after the last
// Apply, in the same transaction and before it reports success.
type Flusher interface {
	Flush(ctx context.Context, tx *sql.Tx) error
}

// Replay rebuilds the views from the whole log in one transaction: it locks
// the head (appenders wait until it is done), verifies the chain as it
// reads, calls vw.Reset and feeds every event to vw.Apply in order. It
// returns the sequence number of the last event applied. A broken chain
// aborts the replay with a *ChainError and leaves the views untouched.
func Replay(ctx context.Context, d *db.DB, vw ViewWriter) (uint64, error) {
	tx, err := Begin(ctx, d)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback()
	last, err := ReplayTx(ctx, tx, vw)
	if err != nil {
		return 0, err
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("events: replay: commit: %w", err)
	}
	return last, nil
}

// ReplayTx is Replay inside the caller's transaction, which must come from
// Begin and which it neither commits nor rolls back: a caller that rolls
// back afterwards has rebuilt the views in scratch and left the live ones
// untouched.
func ReplayTx(ctx context.Context, tx *sql.Tx, vw ViewWriter) (uint64, error) {
	return ReplayFrom(ctx, tx, tx, vw)
}

// ReplayFrom reads the log through src (a transaction from Begin or
// BeginRead), verifying the chain as it reads, and rebuilds the views in
// dst: vw.Reset, then vw.Apply for every event in order, then Flush if vw
// is a Flusher. dst may be a
// transaction on another database with the same schema (a scratch copy),
// so that a check writes nothing where the log is, or another transaction
// on the same database that sees the same log (one holding the head lock,
// with src a read transaction begun after it). When src is not dst, the
// log is read and checked on a goroutine of its own while the events read
// before are applied; vw.Apply is still called in order, on the caller's
// goroutine. The first failure in sequence order is returned: a broken
// chain, or vw.Apply's error for an event before the break.
func ReplayFrom(ctx context.Context, src Querier, dst *sql.Tx, vw ViewWriter) (uint64, error) {
	h, err := head(ctx, src)
	if err != nil {
		return 0, err
	}
	if err := vw.Reset(ctx, dst); err != nil {
		return 0, fmt.Errorf("events: replay: reset views: %w", err)
	}
	last, err := verifyTo(ctx, src, h, 1000, src != Querier(dst), func(ev Event) error {
		if err := vw.Apply(ctx, dst, ev); err != nil {
			return fmt.Errorf("events: replay: apply seq %d: %w", ev.Seq, err)
		}
		return nil
	})
	if err != nil {
		return last, err
	}
	if f, ok := vw.(Flusher); ok {
		if err := f.Flush(ctx, dst); err != nil {
			return last, fmt.Errorf("events: replay: %w", err)
		}
	}
	return last, nil
}
