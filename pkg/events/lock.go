package events

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/artifactstore/artifact-store/pkg/db"
)

// Begin starts a transaction that holds the log's head lock from its first
// statement (docs/adr/0002-event-log.md): every mutation and every replay
// starts here, so whatever the transaction reads of the log and the views
// includes every transaction committed before it, and no appender commits
// until it ends. On PostgreSQL it locks the single event_head row; SQLite
// connections begin IMMEDIATE (pkg/db), which takes the write lock.
func Begin(ctx context.Context, d *db.DB) (*sql.Tx, error) {
	tx, err := d.SQL.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("events: begin: %w", err)
	}
	if d.Dialect() == db.Postgres {
		if _, err := tx.ExecContext(ctx, `SELECT seq FROM event_head WHERE id = 1 FOR UPDATE`); err != nil {
			tx.Rollback()
			return nil, fmt.Errorf("events: lock the log head: %w", err)
		}
	}
	return tx, nil
}

// BeginRead starts a read-only transaction that sees one consistent
// snapshot of the log and the views (REPEATABLE READ on PostgreSQL, a read
// transaction on SQLite), taking no lock that writers wait for and writing
// nothing, so that it works on a read-only copy of a store.
func BeginRead(ctx context.Context, d *db.DB) (*sql.Tx, error) {
	opts := &sql.TxOptions{ReadOnly: true}
	if d.Dialect() == db.Postgres {
		opts.Isolation = sql.LevelRepeatableRead
	}
	tx, err := d.SQL.BeginTx(ctx, opts)
	if err != nil {
		return nil, fmt.Errorf("events: begin read: %w", err)
	}
	return tx, nil
}
