package registry

import (
	"context"
	"fmt"

	"github.com/artifactstore/artifact-store/pkg/db"
)

// gcLockKey is the PostgreSQL advisory lock a GC run holds ("asgc").
const gcLockKey = 0x61736763

// LockGC makes this process the only one marking and sweeping the store
// (docs/adr/0011: the argument assumes one sweeper at a time). It fails with
// ErrConflict when another run holds the lock. The lock dies with the
// process (a PostgreSQL session lock, an flock on SQLite), so a SIGKILLed
// run never blocks the next one.
func (r *Registry) LockGC(ctx context.Context) (unlock func(), err error) {
	if r.db.Dialect() == db.Postgres {
		conn, err := r.db.SQL.Conn(ctx)
		if err != nil {
			return nil, fmt.Errorf("registry: GC lock: %w", err)
		}
		var ok bool
		if err := conn.QueryRowContext(ctx, `SELECT pg_try_advisory_lock($1)`, int64(gcLockKey)).Scan(&ok); err != nil {
			conn.Close()
			return nil, fmt.Errorf("registry: GC lock: %w", err)
		}
		if !ok {
			conn.Close()
			return nil, fmt.Errorf("%w: another garbage collection is running", ErrConflict)
		}
		return func() {
			conn.ExecContext(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, int64(gcLockKey))
			conn.Close()
		}, nil
	}
	path, err := db.SQLitePath(r.db.URL())
	if err != nil {
		return nil, fmt.Errorf("registry: GC lock: %w", err)
	}
	return flockGC(path + ".gc-lock")
}
