// Command as-health serves artifact-store's GET /health (pkg/health) or,
// with --check, runs the probes once for scripts and container health
// checks.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/artifactstore/artifact-store/internal/cli"
	"github.com/artifactstore/artifact-store/pkg/config"
	"github.com/artifactstore/artifact-store/pkg/dataplane"
	"github.com/artifactstore/artifact-store/pkg/db"
	"github.com/artifactstore/artifact-store/pkg/health"
	"github.com/artifactstore/artifact-store/pkg/registry"
	"github.com/artifactstore/artifact-store/pkg/storage"
	"github.com/artifactstore/artifact-store/pkg/store"
)

const usage = `Usage: as-health [--addr HOST:PORT] [--check] [--timeout D] [--scrub-max-age D]
                 [--db URL] [--storage-root DIR] [--log-level LEVEL]

Serve GET /health for the configured store: JSON with an overall status
("ok", "degraded" or "fail") and one check each for the registry, the
database (round-trip time, schema version, pending migrations), the event
log (head sequence and hash), every storage backend (reachable,
free/total bytes) and integrity (what as-scrub recorded: known-corrupt
objects, the oldest verification). HTTP 200 when all is well, 503 otherwise; a check that
is not ok says why in its "error" field. Each probe has a deadline
(--timeout), so a hung database cannot hang the endpoint. The status is
"degraded" while a stored object is known corrupt, or when the oldest
verification is older than --scrub-max-age ($ARTIFACTSTORE_SCRUB_MAX_AGE;
default: no limit).

With --check, run the probes once, print the JSON on standard output and
exit 0 if the store is healthy, 1 if not: for scripts and container
health checks.

Configuration comes from flags, else the environment (.env.example), else
the embedded default under $XDG_DATA_HOME/artifact-store (SQLite store.db
and objects/), which needs no configuration. A PostgreSQL schema that is
behind is reported (migrations_pending, 503), not refused. Requests are
logged on standard error at $ARTIFACTSTORE_LOG_LEVEL (--log-level).
SIGINT or SIGTERM stops the server gracefully.

Exit status: 0 healthy (--check) or a clean shutdown, 6 failing (the
database or the object store is missing, unreachable or behind the tool),
1 degraded or another failure, 2 usage error. A check never creates a missing store.

Examples:
    as-health                                  # http://127.0.0.1:8000/health
    curl -s localhost:8000/health | jq .status
    as-health --addr :9000 --db postgres://as@db/as --storage-root /srv/objects
    as-health --check >/dev/null || echo unhealthy
    as-health --check --scrub-max-age 720h     # degraded if not scrubbed for 30 days
    HEALTHCHECK CMD ["as-health", "--check"]   # in a Dockerfile
`

// Server timeouts. WriteTimeout leaves room for a report whose probes all
// run to their deadline.
const (
	readHeaderTimeout = 5 * time.Second
	readTimeout       = 10 * time.Second
	idleTimeout       = 60 * time.Second
	shutdownTimeout   = 10 * time.Second
	warmUpTimeout     = 30 * time.Second
	maxHeaderBytes    = 64 << 10
)

func main() { cli.Main("as-health", run) }

func run(ctx context.Context, args []string, stdio cli.Stdio) error {
	fs := cli.FlagSet("as-health", usage, stdio.Out)
	flags := cli.RegisterStoreFlags(fs)
	addr := fs.String("addr", "127.0.0.1:8000", "listen on `HOST:PORT`")
	check := fs.Bool("check", false, "run the probes once, print the JSON, exit 0 if healthy")
	timeout := fs.Duration("timeout", health.DefaultTimeout, "deadline of each probe")
	maxAge := fs.String("scrub-max-age", "", "report degraded when the oldest verification is older than `D` (default $"+config.EnvScrubMaxAge+", else no limit)")
	version := fs.Bool("version", false, "print the version and exit")
	pos, err := cli.Parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return cli.Usagef("as-health takes no arguments, got %q", pos[0])
	}
	if *version {
		fmt.Fprintln(stdio.Out, "as-health", cli.Version())
		return nil
	}
	if *timeout <= 0 {
		return cli.Usagef("--timeout must be positive, got %s", *timeout)
	}
	cfg, err := flags.Config()
	if err != nil {
		return err
	}
	if *maxAge != "" {
		d, err := time.ParseDuration(*maxAge)
		if err != nil || d < 0 {
			return cli.Usagef("--scrub-max-age %q: want a non-negative duration such as 720h", *maxAge)
		}
		cfg.ScrubMaxAge = d
	}
	log := cli.Logger(stdio.Err, cfg)
	dialect, _ := db.DialectOf(cfg.DatabaseURL)
	// A health check only reads: it never creates a missing store.
	database := health.Lazy(func(ctx context.Context) (*db.DB, error) { return store.OpenDB(ctx, cfg, store.Read) }, string(dialect))
	defer database.Close()
	backend := &lazyBackend{open: func(ctx context.Context) (*dataplane.InProcess, func() error, error) {
		return store.OpenDataPlane(ctx, cfg, store.Read)
	}}
	defer backend.close()
	checker := health.New(health.Options{
		Database: database,
		Backends: map[string]health.BackendProber{cfg.StorageBackend: backend},
		Timeout:  *timeout,
		Version:  cli.Version(),
		Integrity: func(ctx context.Context) (health.Integrity, error) {
			d, err := database.DB(ctx)
			if err != nil {
				return health.Integrity{}, err
			}
			s, err := registry.ReadScrubStatus(ctx, d, cfg.StorageBackend)
			return health.Integrity(s), err
		},
		MaxVerifyAge: cfg.ScrubMaxAge,
	})

	if *check {
		rep := checker.Check(ctx)
		log.Debug("store checked", "database", db.Redact(cfg.DatabaseURL), "backend", cfg.StorageBackend, "status", rep.Status)
		b, err := json.MarshalIndent(rep, "", "  ")
		if err != nil {
			return err
		}
		if _, err := fmt.Fprintf(stdio.Out, "%s\n", b); err != nil {
			return err
		}
		switch rep.Status {
		case health.StatusOK:
			return nil
		case health.StatusFail:
			return fmt.Errorf("%w: %s: failing: %s", db.ErrUnavailable, rep.Status, strings.Join(rep.Failing(), ", "))
		}
		return fmt.Errorf("%s: failing: %s", rep.Status, strings.Join(rep.Failing(), ", "))
	}
	log.Info("configured", "database", db.Redact(cfg.DatabaseURL), "storage_backend", cfg.StorageBackend, "local_root", cfg.LocalRoot,
		"s3_endpoint", cfg.S3.Endpoint, "s3_bucket", cfg.S3.Bucket, "s3_prefix", cfg.S3.Prefix, "probe_timeout", *timeout)
	return serve(ctx, *addr, checker, *timeout, log)
}

// lazyBackend opens the configured backend (through pkg/store) on first
// use and keeps it; while it cannot be opened, each probe reports why and
// the next one tries again, so that the server starts, and recovers,
// while the backend is down.
type lazyBackend struct {
	open    func(context.Context) (*dataplane.InProcess, func() error, error)
	mu      sync.Mutex
	dp      *dataplane.InProcess
	closeDP func() error
}

func (l *lazyBackend) Health(ctx context.Context) (storage.Health, error) {
	l.mu.Lock()
	if l.dp == nil {
		dp, c, err := l.open(ctx)
		if err != nil {
			l.mu.Unlock()
			return storage.Health{FreeBytes: -1, TotalBytes: -1}, err
		}
		l.dp, l.closeDP = dp, c
	}
	be := l.dp.Backend()
	l.mu.Unlock()
	return be.Health(ctx)
}

func (l *lazyBackend) close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closeDP != nil {
		l.closeDP()
	}
}

// serve runs the HTTP server until ctx is cancelled (SIGINT/SIGTERM), then
// shuts it down gracefully.
func serve(ctx context.Context, addr string, h http.Handler, timeout time.Duration, log *slog.Logger) error {
	mux := http.NewServeMux()
	mux.Handle("/health", h)
	return cli.Serve(ctx, cli.ServeOptions{
		Addr: addr, Handler: cli.LogRequests(log, mux), Log: log, Path: "/health",
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      2*timeout + 10*time.Second,
		IdleTimeout:       idleTimeout,
		Shutdown:          shutdownTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
	})
}
