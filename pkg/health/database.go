package health

import (
	"context"
	"errors"
	"sync"

	"github.com/artifactstore/artifact-store/pkg/db"
	"github.com/artifactstore/artifact-store/pkg/events"
)

// FromDB returns the Database probes over an open database.
func FromDB(d *db.DB) Database { return openDB{d} }

type openDB struct{ d *db.DB }

func (o openDB) Ping(ctx context.Context) error {
	var one int
	return o.d.SQL.QueryRowContext(ctx, "SELECT 1").Scan(&one)
}

func (o openDB) SchemaStatus(ctx context.Context) (db.SchemaStatus, error) {
	return o.d.SchemaStatus(ctx)
}

func (o openDB) Head(ctx context.Context) (events.Head, error) { return events.New(o.d).Head(ctx) }

func (o openDB) Dialect() string { return string(o.d.Dialect()) }

// LazyDB is a Database opened on first use by URL and kept open; while it
// cannot be opened, every probe fails with the reason and the next probe
// tries again. It lets a health server start, and report, while its
// database is down. Close releases it.
type LazyDB struct {
	opener  func(context.Context) (*db.DB, error)
	dialect string
	mu      sync.Mutex // serialises opening
	d       *db.DB
	closed  bool
}

// Lazy returns a LazyDB that opens its database with open (a tool passes
// pkg/store's opening, so that a check never creates a store). dialect is
// what Dialect reports before the database is open.
func Lazy(open func(context.Context) (*db.DB, error), dialect string) *LazyDB {
	return &LazyDB{opener: open, dialect: dialect}
}

var errClosed = errors.New("health: database closed")

func (l *LazyDB) open(ctx context.Context) (*db.DB, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil, errClosed
	}
	if l.d != nil {
		return l.d, nil
	}
	d, err := l.opener(ctx)
	if err != nil {
		return nil, err
	}
	l.d = d
	return d, nil
}

// DB returns the database, opening it if it is not open yet.
func (l *LazyDB) DB(ctx context.Context) (*db.DB, error) { return l.open(ctx) }

// Ping implements Database.
func (l *LazyDB) Ping(ctx context.Context) error {
	d, err := l.open(ctx)
	if err != nil {
		return err
	}
	return FromDB(d).Ping(ctx)
}

// SchemaStatus implements Database.
func (l *LazyDB) SchemaStatus(ctx context.Context) (db.SchemaStatus, error) {
	d, err := l.open(ctx)
	if err != nil {
		return db.SchemaStatus{}, err
	}
	return d.SchemaStatus(ctx)
}

// Head implements Database.
func (l *LazyDB) Head(ctx context.Context) (events.Head, error) {
	d, err := l.open(ctx)
	if err != nil {
		return events.Head{}, err
	}
	return events.New(d).Head(ctx)
}

// Dialect implements Database, without taking the lock a hung open may
// hold.
func (l *LazyDB) Dialect() string { return l.dialect }

// Close closes the database if it was opened.
func (l *LazyDB) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = true
	if l.d == nil {
		return nil
	}
	return l.d.Close()
}
