// Package store opens an artifact store from configuration: the database,
// the data plane over the configured storage backend (local filesystem or
// S3), and the registry on top. It is the one way every tool, and every
// program that embeds the library, opens a store (docs/ARCHITECTURE.md
// "Opening a store"), so that what one can reach, all can.
package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/artifactstore/artifact-store/pkg/config"
	"github.com/artifactstore/artifact-store/pkg/dataplane"
	"github.com/artifactstore/artifact-store/pkg/db"
	"github.com/artifactstore/artifact-store/pkg/registry"
)

// Access says what a caller will do with a store, and so what opening it
// may change.
type Access int

const (
	// Write: the caller stores or changes things. A missing embedded
	// store (SQLite file, object root) is created and migrated.
	Write Access = iota
	// Read: the caller only reads. The store must exist: a missing
	// database or object root is db.ErrUnavailable or
	// storage.ErrUnavailable, never a new empty store. An embedded
	// database whose schema is behind is still migrated.
	Read
	// Check: the caller only inspects, possibly a read-only copy (a
	// restored backup): nothing is written at all, not even a migration
	// or a lock file.
	Check
)

// Options say where the store is, who acts on it and how it is used.
type Options struct {
	Config config.Config
	Access Access
	// Actor is recorded in every event the registry appends.
	Actor string
	// Tool names the producer recorded in manifests' provenance (part of
	// the package identity); Build is the tool's build version, recorded
	// in the log only (docs/adr/0003-manifest-canonicalisation.md).
	Tool, Build string
	// Now gives events' time (as-gc --now, as-retain expire --now); nil
	// means the clock.
	Now func() time.Time
}

// Store is an open store.
type Store struct {
	DB        *db.DB
	DataPlane dataplane.DataPlane
	Registry  *registry.Registry
	closers   []func() error
}

// OpenDB opens only the database of the configuration, for a tool that
// needs no bytes (the event log, replay, migrations). Its schema is not
// checked: call CheckSchema, or Migrate.
func OpenDB(ctx context.Context, cfg config.Config, a Access) (*db.DB, error) {
	if cfg.DatabaseURL == "" {
		return nil, errors.New("store: no database URL in the configuration (use config.Load)")
	}
	return db.OpenWith(ctx, cfg.DatabaseURL, db.Options{Create: a == Write, ReadOnly: a == Check})
}

// Open opens the whole store. A schema that is behind is refused with
// db.ErrSchemaBehind, whose message says how to migrate (the embedded
// SQLite default migrates itself when opened for Write or Read).
func Open(ctx context.Context, o Options) (*Store, error) {
	d, err := OpenDB(ctx, o.Config, o.Access)
	if err != nil {
		return nil, err
	}
	if err := d.CheckSchema(ctx); err != nil {
		d.Close()
		return nil, err
	}
	dp, closeDP, err := OpenDataPlane(ctx, o.Config, o.Access)
	if err != nil {
		d.Close()
		return nil, err
	}
	reg := registry.New(d, dp, registry.Options{Actor: o.Actor, Tool: o.Tool, Build: o.Build, Now: o.Now})
	return &Store{DB: d, DataPlane: dp, Registry: reg, closers: []func() error{closeDP, d.Close}}, nil
}

// Close releases everything Open acquired.
func (s *Store) Close() error {
	var errs []error
	for _, c := range s.closers {
		errs = append(errs, c())
	}
	return errors.Join(errs...)
}

// OpenDataPlane opens the data plane over the configured storage backend:
// the local filesystem under cfg.LocalRoot (backend id "local"), or the
// S3-compatible bucket of cfg.S3 (backend id "s3", credentials from the
// standard AWS chain). cfg.CheckBackend is applied first, so a missing
// bucket or a malformed endpoint is reported before any I/O. Opened for
// Read or Check, a missing local root is storage.ErrUnavailable.
func OpenDataPlane(ctx context.Context, cfg config.Config, a Access) (*dataplane.InProcess, func() error, error) {
	if err := cfg.CheckBackend(); err != nil {
		return nil, nil, err
	}
	switch cfg.StorageBackend {
	case config.BackendS3:
		return dataplane.OpenS3(ctx, config.BackendS3, cfg.S3)
	case config.BackendLocal, "":
		return dataplane.OpenLocal(config.BackendLocal, cfg.LocalRoot, a != Write)
	}
	return nil, nil, fmt.Errorf("store: unknown storage backend %q", cfg.StorageBackend)
}
