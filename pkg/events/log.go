package events

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"iter"
	"strconv"
	"strings"
	"time"

	"github.com/artifactstore/artifact-store/pkg/db"
	"github.com/artifactstore/artifact-store/pkg/identity"
)

// NotifyChannel is the PostgreSQL LISTEN/NOTIFY channel; the payload is the
// new event's sequence number in decimal.
const NotifyChannel = "artifactstore_events"

// Tx is what Append needs from the caller's transaction; *sql.Tx has it.
type Tx interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// Querier runs queries; *sql.DB, *sql.Tx and *sql.Conn have it.
type Querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

const (
	qLockHead = `UPDATE event_head SET seq = seq + 1 WHERE id = 1 RETURNING seq, hash`
	qInsert   = `INSERT INTO events (seq, type, actor, recorded_at, payload, prev_hash, hash) VALUES ($1, $2, $3, $4, $5, $6, $7)`
	qSetHash  = `UPDATE event_head SET hash = $1 WHERE id = 1`
	// On PostgreSQL the insert, the head update and the NOTIFY travel in one
	// statement; NOTIFY is transactional, so it is delivered on commit.
	qInsertPG = `WITH ins AS (` + qInsert + `), h AS (UPDATE event_head SET hash = $7 WHERE id = 1)
		SELECT pg_notify('` + NotifyChannel + `', $1::text)`
	qHead  = `SELECT seq, hash FROM event_head WHERE id = 1`
	qRange = `SELECT seq, type, actor, recorded_at, payload, prev_hash, hash FROM events WHERE seq > $1 AND seq <= $2 ORDER BY seq LIMIT $3`
)

// Append writes ev as the next event inside tx, the caller's transaction on
// a database of the given dialect, and returns it with Seq, PrevHash and
// Hash filled in. The event is visible (and tailers are woken) when tx
// commits; if tx rolls back, the sequence number is not used. Concurrent
// appenders queue on the head row until this transaction ends.
//
// ev.Type must pass ValidateType (Append does not refuse v1.: the registry
// appends through it) and ev.Payload must be canonical CBOR.
func Append(ctx context.Context, tx Tx, dialect db.Dialect, ev Event) (Event, error) {
	if err := ev.validate(); err != nil {
		return Event{}, err
	}
	var seq int64
	var prev []byte
	if err := tx.QueryRowContext(ctx, qLockHead).Scan(&seq, &prev); err != nil {
		return Event{}, fmt.Errorf("events: append: lock head: %w", err)
	}
	var err error
	if ev.PrevHash, err = digestFrom(prev); err != nil {
		return Event{}, err
	}
	ev.Seq = uint64(seq)
	ev.Time = ev.Time.UTC()
	ev.Hash = ev.chainHash()
	args := []any{seq, ev.Type, ev.Actor, FormatTime(ev.Time), ev.Payload, prev, ev.Hash.Bytes()}
	if dialect == db.Postgres {
		if _, err := tx.ExecContext(ctx, qInsertPG, args...); err != nil {
			return Event{}, fmt.Errorf("events: append: %w", err)
		}
		return ev, nil
	}
	if _, err := tx.ExecContext(ctx, qInsert, args...); err != nil {
		return Event{}, fmt.Errorf("events: append: %w", err)
	}
	if _, err := tx.ExecContext(ctx, qSetHash, ev.Hash.Bytes()); err != nil {
		return Event{}, fmt.Errorf("events: append: update head: %w", err)
	}
	return ev, nil
}

// Log reads and appends to the event log of one database.
type Log struct {
	db *db.DB
	// PollInterval is how often a SQLite tailer checks the head (default
	// 5ms); SafetyPoll is how long a PostgreSQL tailer waits for a
	// notification before re-reading anyway (default 1s).
	PollInterval time.Duration
	SafetyPoll   time.Duration
	// BatchSize is how many events one read fetches (default 1000).
	BatchSize int
}

// New returns the log of d.
func New(d *db.DB) *Log {
	return &Log{db: d, PollInterval: 5 * time.Millisecond, SafetyPoll: time.Second, BatchSize: 1000}
}

// DB returns the database the log lives in.
func (l *Log) DB() *db.DB { return l.db }

// Append is Append with the log's dialect.
func (l *Log) Append(ctx context.Context, tx Tx, ev Event) (Event, error) {
	return Append(ctx, tx, l.db.Dialect(), ev)
}

// Commit appends evs in one transaction of its own and commits it.
func (l *Log) Commit(ctx context.Context, evs ...Event) ([]Event, error) {
	tx, err := l.db.SQL.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("events: begin: %w", err)
	}
	defer tx.Rollback()
	out := make([]Event, 0, len(evs))
	for _, ev := range evs {
		e, err := l.Append(ctx, tx, ev)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("events: commit: %w", err)
	}
	return out, nil
}

// Head returns the last committed event's sequence number and hash.
func (l *Log) Head(ctx context.Context) (Head, error) { return head(ctx, l.db.SQL) }

func head(ctx context.Context, q Querier) (Head, error) {
	var seq int64
	var h []byte
	if err := q.QueryRowContext(ctx, qHead).Scan(&seq, &h); err != nil {
		return Head{}, fmt.Errorf("events: head: %w", err)
	}
	d, err := digestFrom(h)
	if err != nil {
		return Head{}, err
	}
	return Head{Seq: uint64(seq), Hash: d}, nil
}

// Range returns up to limit events with sequence numbers above since, in
// order.
func (l *Log) Range(ctx context.Context, since uint64, limit int) ([]Event, error) {
	return readRange(ctx, l.db.SQL, since, maxSeq, limit)
}

const maxSeq = 1<<63 - 1

func readRange(ctx context.Context, q Querier, since, until uint64, limit int) ([]Event, error) {
	var out []Event
	var rr rowReader
	_, err := scanRange(ctx, q, since, until, limit, &rr, func(r *rowReader) error {
		ev, err := r.event()
		if err != nil {
			return err
		}
		out = append(out, ev)
		return nil
	})
	return out, err
}

// rowReader holds one events row as scanned: the byte fields alias the
// driver's buffers and are valid only until the next row. It remembers
// the last time it decoded, which the next events mostly share (every
// event of a transaction carries its time).
type rowReader struct {
	seq                                 int64
	typ, actor, ts, payload, prev, hash sql.RawBytes
	// extra is what a pipelined read's reader worked out for the row
	// (pipeRange); nil otherwise.
	extra    sql.RawBytes
	lastTS   []byte
	lastTime time.Time
}

// scanRange calls fn for up to limit stored events with sequence numbers
// above since and at most until, in order, and returns how many it read.
// fn must not use q: the rows are still open while it runs.
func scanRange(ctx context.Context, q Querier, since, until uint64, limit int, r *rowReader, fn func(*rowReader) error) (int, error) {
	if limit <= 0 {
		return 0, nil
	}
	if since > maxSeq || until > maxSeq {
		return 0, fmt.Errorf("%w: sequence number out of range", ErrInvalidEvent)
	}
	rows, err := q.QueryContext(ctx, qRange, int64(since), int64(until), limit)
	if err != nil {
		return 0, fmt.Errorf("events: read: %w", err)
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		if err := rows.Scan(&r.seq, &r.typ, &r.actor, &r.ts, &r.payload, &r.prev, &r.hash); err != nil {
			return n, fmt.Errorf("events: read: %w", err)
		}
		n++
		if err := fn(r); err != nil {
			return n, err
		}
	}
	if err := rows.Err(); err != nil {
		return n, fmt.Errorf("events: read: %w", err)
	}
	return n, nil
}

// time decodes the row's recorded_at. A stored field that cannot even be
// decoded has been altered: it is reported as a chain failure at this
// sequence, as are hashes of the wrong length (checkHashes).
func (r *rowReader) time() (time.Time, error) {
	if r.lastTS != nil && bytes.Equal(r.ts, r.lastTS) {
		return r.lastTime, nil
	}
	ts := string(r.ts)
	t, err := time.Parse(time.RFC3339Nano, ts)
	if err != nil || FormatTime(t) != ts {
		return time.Time{}, &ChainError{Seq: uint64(r.seq), Err: ErrHashMismatch, Detail: fmt.Sprintf("recorded_at %q is not in its canonical form", ts)}
	}
	r.lastTS, r.lastTime = append(r.lastTS[:0], r.ts...), t
	return t, nil
}

func (r *rowReader) checkHashes() error {
	if len(r.prev) != hashSize {
		_, err := digestFrom(r.prev)
		return &ChainError{Seq: uint64(r.seq), Err: ErrBrokenLink, Detail: err.Error()}
	}
	if len(r.hash) != hashSize {
		_, err := digestFrom(r.hash)
		return &ChainError{Seq: uint64(r.seq), Err: ErrHashMismatch, Detail: err.Error()}
	}
	return nil
}

// event returns the row as an Event with its own copies of the fields.
func (r *rowReader) event() (Event, error) {
	t, err := r.time()
	if err != nil {
		return Event{}, err
	}
	if err := r.checkHashes(); err != nil {
		return Event{}, err
	}
	ev := Event{Seq: uint64(r.seq), Type: string(r.typ), Actor: string(r.actor), Time: t, Payload: bytes.Clone(r.payload)}
	ev.PrevHash, _ = digestFrom(r.prev)
	ev.Hash, _ = digestFrom(r.hash)
	return ev, nil
}

// Scan yields every event with sequence above since that is committed when
// Scan reaches it, in order, and stops at the end of the log.
func (l *Log) Scan(ctx context.Context, since uint64) iter.Seq2[Event, error] {
	return func(yield func(Event, error) bool) {
		last := since
		for {
			evs, err := l.Range(ctx, last, l.batch())
			if err != nil {
				yield(Event{}, err)
				return
			}
			for _, ev := range evs {
				if ev.Seq != last+1 {
					yield(Event{}, &ChainError{Seq: last + 1, Err: ErrGap, Detail: "next stored event is " + strconv.FormatUint(ev.Seq, 10)})
					return
				}
				if !yield(ev, nil) {
					return
				}
				last = ev.Seq
			}
			if len(evs) < l.batch() {
				return
			}
		}
	}
}

// ScanRecords calls fn with the wire record (MarshalRecord's encoding) of
// every event Scan would yield, in order, and returns nil at the end of the
// log, or the first error: fn's, or Scan's (a database error, a
// *ChainError for a gap or a stored field that cannot be decoded) after fn
// has had every event before it. The record is head ‖ payload ‖ tail, in
// three pieces so that the payload, which may be large, is not copied into
// it; they are valid only until fn returns. It is what as-events tail
// writes: the log is read ahead on goroutines of their own, which also
// build the records, and nothing is allocated per event.
func (l *Log) ScanRecords(ctx context.Context, since uint64, fn func(head, payload, tail []byte) error) error {
	last := since
	var buf []byte
	for {
		// Read up to the head as it is now, then look again: events
		// committed meanwhile are read too, as Scan reads them.
		h, err := l.Head(ctx)
		if err != nil {
			return err
		}
		if h.Seq <= last {
			return nil
		}
		_, err = pipeRange(ctx, l.db.SQL, last, h.Seq, recordPrep, func(r *rowReader) error {
			if uint64(r.seq) != last+1 {
				return &ChainError{Seq: last + 1, Err: ErrGap, Detail: "next stored event is " + strconv.FormatInt(r.seq, 10)}
			}
			var err error
			if len(r.extra) > 0 {
				// The reader built the record around the payload
				// (recordPrep): its head, then its tail.
				split := len(r.extra) - storedRecordTail
				err = fn(r.extra[:split], r.payload, r.extra[split:])
			} else {
				// The reader left it to AppendRecord, which says why
				// if it fails.
				ev, eerr := r.event()
				if eerr != nil {
					return eerr
				}
				if buf, err = AppendRecord(buf[:0], ev); err != nil {
					return err
				}
				err = fn(buf, nil, nil)
			}
			if err != nil {
				return err
			}
			last = uint64(r.seq)
			return nil
		})
		if err != nil {
			return err
		}
		if last < h.Seq {
			return nil // the log ends below its head, where Scan stops too
		}
	}
}

// recordPrep is the prepFunc of ScanRecords: each reader builds the head
// and the tail of the wire record of every event it reads
// (appendStoredRecord), or leaves them empty for the caller's AppendRecord
// where appendStoredRecord cannot build them.
func recordPrep() prepFunc {
	return func(dst []byte, r *rowReader) []byte {
		if _, err := r.time(); err != nil || r.checkHashes() != nil {
			return dst
		}
		dst, _ = appendStoredRecord(dst, r)
		return dst
	}
}

func (l *Log) batch() int {
	if l.BatchSize <= 0 {
		return 1000
	}
	return l.BatchSize
}

// Appender appends many events in one transaction: it locks and reads the
// head once, assigns each event its sequence number and chains its hash in
// memory, and writes the held events with multi-row inserts and one head
// update at Flush (or at the next Append once appenderChunk are held). The
// caller's transaction must Flush before it commits; until then the held
// events are not in the events table, so nothing in the transaction may
// read the log between Append and Flush. What one Append after another
// produces is exactly what as many calls of Append produce: the same
// sequence numbers, hashes and rows.
type Appender struct {
	tx      Tx
	dialect db.Dialect
	locked  bool
	seq     int64
	hash    identity.Digest
	held    []Event
	bytes   int // payload bytes of held
}

// appenderChunk is how many events one insert writes (7 parameters each,
// under SQLite's limit of 32,766).
const appenderChunk = 512

// NewAppender returns an Appender into tx on a database of dialect d.
func NewAppender(tx Tx, d db.Dialect) *Appender { return &Appender{tx: tx, dialect: d} }

// Append validates ev and holds it as the next event, returning it with
// Seq, PrevHash and Hash filled in.
func (a *Appender) Append(ctx context.Context, ev Event) (Event, error) {
	if err := ev.validate(); err != nil {
		return Event{}, err
	}
	if !a.locked {
		var prev []byte
		// Take the head row's lock (and read it) without moving it: Flush
		// writes the final head.
		if err := a.tx.QueryRowContext(ctx, `UPDATE event_head SET seq = seq WHERE id = 1 RETURNING seq, hash`).Scan(&a.seq, &prev); err != nil {
			return Event{}, fmt.Errorf("events: append: lock head: %w", err)
		}
		h, err := digestFrom(prev)
		if err != nil {
			return Event{}, err
		}
		a.hash, a.locked = h, true
	}
	if len(a.held) >= appenderChunk {
		if err := a.Flush(ctx); err != nil {
			return Event{}, err
		}
	}
	a.seq++
	ev.Seq = uint64(a.seq)
	ev.Time = ev.Time.UTC()
	ev.PrevHash = a.hash
	ev.Hash = ev.chainHash()
	a.hash = ev.Hash
	a.held = append(a.held, ev)
	a.bytes += len(ev.Payload)
	return ev, nil
}

// HeldBytes reports the payload bytes of the events held: appended and not
// yet written by a Flush.
func (a *Appender) HeldBytes() int { return a.bytes }

// Flush writes the held events and moves the head to the last of them.
func (a *Appender) Flush(ctx context.Context) error {
	if len(a.held) == 0 {
		return nil
	}
	evs := a.held
	last := evs[len(evs)-1]
	if a.dialect == db.Postgres {
		n := len(evs)
		seq, typ, actor, ts := make([]int64, n), make([]string, n), make([]string, n), make([]string, n)
		payload, prev, hash := make([][]byte, n), make([][]byte, n), make([][]byte, n)
		for i, ev := range evs {
			seq[i], typ[i], actor[i], ts[i] = int64(ev.Seq), ev.Type, ev.Actor, FormatTime(ev.Time)
			payload[i], prev[i], hash[i] = ev.Payload, ev.PrevHash.Bytes(), ev.Hash.Bytes()
		}
		// NOTIFY is transactional: one wake-up at commit serves every event.
		if _, err := a.tx.ExecContext(ctx, `WITH ins AS (INSERT INTO events (seq, type, actor, recorded_at, payload, prev_hash, hash)
			SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::bytea[], $6::bytea[], $7::bytea[])),
			h AS (UPDATE event_head SET seq = $8, hash = $9 WHERE id = 1)
			SELECT pg_notify('`+NotifyChannel+`', $8::text)`,
			seq, typ, actor, ts, payload, prev, hash, int64(last.Seq), last.Hash.Bytes()); err != nil {
			return fmt.Errorf("events: append: %w", err)
		}
	} else {
		var q strings.Builder
		q.WriteString(`INSERT INTO events (seq, type, actor, recorded_at, payload, prev_hash, hash) VALUES `)
		args := make([]any, 0, 7*len(evs))
		for i, ev := range evs {
			if i > 0 {
				q.WriteString(", ")
			}
			q.WriteString("(?, ?, ?, ?, ?, ?, ?)")
			args = append(args, int64(ev.Seq), ev.Type, ev.Actor, FormatTime(ev.Time), ev.Payload, ev.PrevHash.Bytes(), ev.Hash.Bytes())
		}
		if _, err := a.tx.ExecContext(ctx, q.String(), args...); err != nil {
			return fmt.Errorf("events: append: %w", err)
		}
		if _, err := a.tx.ExecContext(ctx, `UPDATE event_head SET seq = $1, hash = $2 WHERE id = 1`, int64(last.Seq), last.Hash.Bytes()); err != nil {
			return fmt.Errorf("events: append: update head: %w", err)
		}
	}
	a.held, a.bytes = a.held[:0], 0
	return nil
}
