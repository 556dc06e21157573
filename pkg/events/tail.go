package events

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"strconv"
	"time"

	"github.com/artifactstore/artifact-store/pkg/db"
	"github.com/jackc/pgx/v5"
)

// Tail yields every event with sequence number above since, in order and
// exactly once, then waits for new commits and yields them too, until ctx
// ends or the loop body stops. It ends by yielding ctx's error (or a
// database error) as the last pair.
//
// On PostgreSQL a dedicated connection LISTENs on NotifyChannel before the
// first read, so no commit falls between reading and waiting; if that
// connection breaks, Tail reconnects and re-reads from the last sequence it
// yielded (no loss, no repeats), and it re-reads every SafetyPoll even
// without a notification. On SQLite it polls event_head every PollInterval,
// which sees commits from other processes too, and ends with an error
// wrapping db.ErrUnavailable if the database file is removed or replaced.
func (l *Log) Tail(ctx context.Context, since uint64) iter.Seq2[Event, error] {
	return func(yield func(Event, error) bool) {
		var w waiter
		if l.db.Dialect() == db.Postgres {
			pw := &pgWaiter{l: l}
			defer pw.close()
			if err := pw.connect(ctx); err != nil {
				yield(Event{}, err)
				return
			}
			w = pw
		} else {
			w = &pollWaiter{l: l}
		}
		last := since
		for {
			evs, err := l.Range(ctx, last, l.batch())
			if err != nil {
				if ctx.Err() != nil {
					err = ctx.Err()
				}
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
			if len(evs) == l.batch() {
				continue
			}
			if err := w.wait(ctx, last); err != nil {
				yield(Event{}, err)
				return
			}
		}
	}
}

// waiter blocks until events after last may exist. A nil return only means
// "read again"; spurious wake-ups are harmless.
type waiter interface {
	wait(ctx context.Context, last uint64) error
}

type pollWaiter struct{ l *Log }

func (w *pollWaiter) wait(ctx context.Context, last uint64) error {
	every := w.l.PollInterval
	if every <= 0 {
		every = 5 * time.Millisecond
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
		// A removed database file still answers through the open
		// connection, but nobody can write to it any more: end.
		if err := w.l.db.CheckFile(); err != nil {
			return fmt.Errorf("events: tail: %w", err)
		}
		var seq int64
		err := w.l.db.SQL.QueryRowContext(ctx, `SELECT seq FROM event_head WHERE id = 1`).Scan(&seq)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("events: tail: %w", err)
		}
		if uint64(seq) > last {
			return nil
		}
	}
}

type pgWaiter struct {
	l    *Log
	conn *pgx.Conn
}

func (w *pgWaiter) connect(ctx context.Context) error {
	c, err := w.l.db.Listen(ctx)
	if err != nil {
		return fmt.Errorf("events: tail: %w", err)
	}
	if _, err := c.Exec(ctx, "LISTEN "+NotifyChannel); err != nil {
		c.Close(context.Background())
		return fmt.Errorf("events: tail: listen: %w", err)
	}
	w.conn = c
	return nil
}

func (w *pgWaiter) close() {
	if w.conn != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		w.conn.Close(ctx)
		w.conn = nil
	}
}

// Reconnect back-off bounds.
const (
	minBackoff = 10 * time.Millisecond
	maxBackoff = 2 * time.Second
)

func (w *pgWaiter) wait(ctx context.Context, last uint64) error {
	backoff := minBackoff
	for {
		if w.conn == nil || w.conn.IsClosed() {
			w.close()
			if err := w.connect(ctx); err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				select {
				case <-ctx.Done():
					return ctx.Err()
				case <-time.After(backoff):
				}
				backoff = min(2*backoff, maxBackoff)
				continue
			}
			// Commits may have happened while we were not listening.
			return nil
		}
		safety := w.l.SafetyPoll
		if safety <= 0 {
			safety = time.Second
		}
		wctx, cancel := context.WithTimeout(ctx, safety)
		n, err := w.conn.WaitForNotification(wctx)
		cancel()
		switch {
		case err == nil:
			seq, perr := strconv.ParseUint(n.Payload, 10, 64)
			if perr != nil || seq > last {
				return nil
			}
			// A notification for an event already read: keep waiting.
		case ctx.Err() != nil:
			return ctx.Err()
		case errors.Is(err, context.DeadlineExceeded) && !w.conn.IsClosed():
			return nil // safety poll
		default:
			// The connection broke; reconnect on the next turn and re-read.
			w.close()
		}
	}
}
