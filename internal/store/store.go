// Package store is the tools' wiring: it opens the database, the data plane
// over the configured backend and the registry on top, the same way for
// every tool. It is the only place outside pkg/dataplane that chooses a
// backend.
package store

import (
	"context"
	"errors"
	"flag"
	"os"
	"os/user"
	"time"

	"github.com/artifactstore/artifact-store/internal/cli"
	"github.com/artifactstore/artifact-store/pkg/config"
	"github.com/artifactstore/artifact-store/pkg/db"
	"github.com/artifactstore/artifact-store/pkg/manifest"
	"github.com/artifactstore/artifact-store/pkg/registry"
)

// Options say where the store is and who acts on it.
type Options struct {
	Config config.Config    // database, storage backend (package config)
	Actor  string           // "" → ARTIFACTSTORE_ACTOR, else the user name
	Tool   string           // the tool recorded in manifests' provenance
	Now    func() time.Time // events' time (as-gc --now); nil: the clock
}

// Store is an open registry with what it needs.
type Store struct {
	DB       *db.DB
	Registry *registry.Registry
	closers  []func() error
}

// Open opens the store. A PostgreSQL schema that is behind is refused with
// db.ErrSchemaBehind, whose message says how to migrate; the embedded
// SQLite default migrates itself.
func Open(ctx context.Context, o Options) (*Store, error) {
	if o.Config.DatabaseURL == "" {
		return nil, errors.New("store: no database URL (use Flags.Options or config.Load)")
	}
	d, err := db.Open(ctx, o.Config.DatabaseURL)
	if err != nil {
		return nil, err
	}
	if err := d.CheckSchema(ctx); err != nil {
		d.Close()
		return nil, err
	}
	dp, closeDP, err := openDataPlane(ctx, o.Config)
	if err != nil {
		d.Close()
		return nil, err
	}
	actor := o.Actor
	if actor == "" {
		actor = DefaultActor()
	}
	reg := registry.New(d, dp, registry.Options{
		Actor:    actor,
		Now:      o.Now,
		Producer: manifest.Producer{Tool: o.Tool, Version: cli.Version()},
	})
	return &Store{DB: d, Registry: reg, closers: []func() error{closeDP, d.Close}}, nil
}

// Close releases everything Open acquired.
func (s *Store) Close() error {
	var errs []error
	for _, c := range s.closers {
		errs = append(errs, c())
	}
	return errors.Join(errs...)
}

// DefaultActor is who acts when no --actor is given (ADR 0002):
// ARTIFACTSTORE_ACTOR, else the login name, else "unknown".
func DefaultActor() string {
	if a := os.Getenv("ARTIFACTSTORE_ACTOR"); a != "" {
		return a
	}
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	return "unknown"
}

// Flags are the command-line flags every store-using tool shares: --db,
// --storage-root and --log-level (package config), and --actor.
type Flags struct {
	config.Overrides
	Actor string
}

// RegisterFlags adds the shared flags to fs and returns the Flags they fill.
func RegisterFlags(fs *flag.FlagSet) *Flags {
	f := &Flags{}
	f.Overrides.RegisterFlags(fs)
	fs.StringVar(&f.Actor, "actor", "", "who is acting, recorded in events (default $ARTIFACTSTORE_ACTOR or the user name)")
	return f
}

// Options resolves the flags over the environment and the defaults (package
// config: one place validates configuration, and every tool reports a bad
// URL or root the same way) into Options for Open.
func (f *Flags) Options(tool string) (Options, error) {
	cfg, err := config.LoadWith(os.Getenv, f.Overrides)
	if err != nil {
		return Options{}, err
	}
	return Options{Config: cfg, Actor: f.Actor, Tool: tool}, nil
}
