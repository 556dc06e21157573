// Package store is the tools' wiring: it opens the database, the data plane
// over the configured backend and the registry on top, the same way for
// every tool. It is the only place outside pkg/dataplane that chooses a
// backend.
package store

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/user"
	"path/filepath"

	"github.com/artifactstore/artifact-store/internal/cli"
	"github.com/artifactstore/artifact-store/pkg/db"
	"github.com/artifactstore/artifact-store/pkg/manifest"
	"github.com/artifactstore/artifact-store/pkg/registry"
)

// Options say where the store is and who acts on it.
type Options struct {
	DatabaseURL string // sqlite:… or postgres://…
	LocalRoot   string // the local backend's root directory
	Actor       string // "" → ARTIFACTSTORE_ACTOR, else the user name
	Tool        string // the tool recorded in manifests' provenance
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
	if o.DatabaseURL == "" || o.LocalRoot == "" {
		return nil, errors.New("store: database URL and storage root are required")
	}
	d, err := db.Open(ctx, o.DatabaseURL)
	if err != nil {
		return nil, err
	}
	if err := d.CheckSchema(ctx); err != nil {
		d.Close()
		return nil, err
	}
	if err := os.MkdirAll(o.LocalRoot, 0o755); err != nil {
		d.Close()
		return nil, fmt.Errorf("storage root %s: %w", o.LocalRoot, err)
	}
	dp, closeDP, err := openDataPlaneFor(ctx, o)
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

// RegisterFlags adds --db, --storage-root and --actor to fs and returns the
// Options they fill. Flags override ARTIFACTSTORE_DATABASE_URL and
// ARTIFACTSTORE_STORAGE_LOCAL_ROOT, which override the defaults: an embedded
// store under $XDG_DATA_HOME/artifact-store (~/.local/share/artifact-store).
func RegisterFlags(fs *flag.FlagSet) *Options {
	o := &Options{}
	fs.StringVar(&o.DatabaseURL, "db", "", "database URL (sqlite:PATH or postgres://…; default $ARTIFACTSTORE_DATABASE_URL or the embedded store)")
	fs.StringVar(&o.LocalRoot, "storage-root", "", "object store root (default $ARTIFACTSTORE_STORAGE_LOCAL_ROOT or the embedded store's objects/)")
	fs.StringVar(&o.Actor, "actor", "", "who is acting, recorded in events (default $ARTIFACTSTORE_ACTOR or the user name)")
	return o
}

// Resolve fills what the flags left empty from the environment and the
// defaults.
func (o *Options) Resolve() error {
	if o.DatabaseURL == "" {
		u, err := db.DefaultURL()
		if err != nil {
			return err
		}
		o.DatabaseURL = u
	}
	if o.LocalRoot == "" {
		o.LocalRoot = os.Getenv("ARTIFACTSTORE_STORAGE_LOCAL_ROOT")
	}
	if o.LocalRoot == "" {
		dir, err := dataDir()
		if err != nil {
			return err
		}
		o.LocalRoot = filepath.Join(dir, "objects")
	}
	if !filepath.IsAbs(o.LocalRoot) {
		abs, err := filepath.Abs(o.LocalRoot)
		if err != nil {
			return err
		}
		o.LocalRoot = abs
	}
	return nil
}

func dataDir() (string, error) {
	if x := os.Getenv("XDG_DATA_HOME"); x != "" {
		return filepath.Join(x, "artifact-store"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("no data directory: set ARTIFACTSTORE_STORAGE_LOCAL_ROOT or XDG_DATA_HOME (%w)", err)
	}
	return filepath.Join(home, ".local", "share", "artifact-store"), nil
}
