package cli

import (
	"context"
	"flag"
	"io"
	"log/slog"
	"os"
	"os/user"
	"time"

	"github.com/artifactstore/artifact-store/pkg/config"
	"github.com/artifactstore/artifact-store/pkg/db"
	"github.com/artifactstore/artifact-store/pkg/store"
)

// StoreFlags are the flags every store-using tool shares: --db,
// --storage-root and --log-level (package config) and --actor.
type StoreFlags struct {
	config.Overrides
	Actor string
	// Now, if set by the tool (a --now flag), gives events' time.
	Now func() time.Time
}

// RegisterStoreFlags adds the shared store flags to fs.
func RegisterStoreFlags(fs *flag.FlagSet) *StoreFlags {
	f := &StoreFlags{}
	f.Register(fs)
	return f
}

// Register binds the shared store flags of fs to f (a tool with
// subcommands registers one StoreFlags on each of its flag sets).
func (f *StoreFlags) Register(fs *flag.FlagSet) {
	f.Overrides.RegisterFlags(fs)
	fs.StringVar(&f.Actor, "actor", f.Actor, "who is acting, recorded in events (default $ARTIFACTSTORE_ACTOR, else the login name)")
}

// Config resolves the flags over the environment and the defaults: one
// place validates configuration, so every tool reports a bad URL or root
// the same way.
func (f *StoreFlags) Config() (config.Config, error) {
	return config.LoadWith(os.Getenv, f.Overrides)
}

// Open opens the store for tool with the given access (package store).
func (f *StoreFlags) Open(ctx context.Context, tool string, a store.Access) (*store.Store, error) {
	cfg, err := f.Config()
	if err != nil {
		return nil, err
	}
	actor := f.Actor
	if actor == "" {
		actor = DefaultActor()
	}
	t0 := time.Now()
	st, err := store.Open(ctx, store.Options{Config: cfg, Access: a, Actor: actor, Tool: tool, Build: tool + " " + Version(), Now: f.Now})
	logOpen(cfg, "store opened", err, t0, "backend", cfg.StorageBackend, "actor", actor)
	return st, err
}

// logOpen logs, at debug level on standard error through the tool's
// logger ($ARTIFACTSTORE_LOG_LEVEL, --log-level), which store a tool
// opened (the URL redacted) and how long it took, or why it failed.
func logOpen(cfg config.Config, msg string, err error, t0 time.Time, attrs ...any) {
	log := Logger(os.Stderr, cfg)
	attrs = append([]any{"database", db.Redact(cfg.DatabaseURL), "ms", float64(time.Since(t0).Microseconds()) / 1000}, attrs...)
	if err != nil {
		log.Debug(msg+": failed", append(attrs, "err", err)...)
		return
	}
	log.Debug(msg, attrs...)
}

// OpenDB opens only the configured database, for tools that need no bytes.
func (f *StoreFlags) OpenDB(ctx context.Context, a store.Access) (*db.DB, config.Config, error) {
	cfg, err := f.Config()
	if err != nil {
		return nil, cfg, err
	}
	t0 := time.Now()
	d, err := store.OpenDB(ctx, cfg, a)
	logOpen(cfg, "database opened", err, t0)
	return d, cfg, err
}

// ActorOr returns the --actor flag, else DefaultActor.
func (f *StoreFlags) ActorOr() string {
	if f.Actor != "" {
		return f.Actor
	}
	return DefaultActor()
}

// DefaultActor is who acts when no --actor is given
// (docs/adr/0008-registry-operations-and-actor.md): $ARTIFACTSTORE_ACTOR,
// else the login name, else "unknown".
func DefaultActor() string {
	if a := os.Getenv("ARTIFACTSTORE_ACTOR"); a != "" {
		return a
	}
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	return "unknown"
}

// Logger returns the tool's logger: text on w at the configured level.
func Logger(w io.Writer, cfg config.Config) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: cfg.LogLevel}))
}
