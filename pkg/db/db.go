// Package db opens artifact-store's database by URL — the embedded SQLite
// default or a PostgreSQL server — and owns its schema migrations.
//
// URLs:
//
//	sqlite:PATH            (relative or absolute path)
//	sqlite:///abs/path.db  (the URL form: an empty host, an absolute path)
//	postgres://…           (any URL pgx accepts; postgresql:// too)
//
// SQLite runs through modernc.org/sqlite (no cgo) in WAL mode with
// synchronous=FULL (a commit is durable when it returns), foreign keys on, a
// busy timeout, and BEGIN IMMEDIATE transactions so that writers queue on the
// database lock instead of failing on a stale snapshot. PostgreSQL runs
// through pgx's database/sql driver; [DB.Listen] gives a pgx-native
// connection for LISTEN/NOTIFY.
//
// Migrations are the goose files embedded by package migrations, one tree per
// dialect. [Open] migrates an SQLite database itself (it is the zero-config
// embedded default); a PostgreSQL schema is migrated only by an explicit
// [DB.Migrate] (as-events migrate), and [DB.CheckSchema] reports a schema that
// is behind with [ErrSchemaBehind].
package db

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
)

// Dialect names the SQL dialect of an open database.
type Dialect string

// The supported dialects.
const (
	SQLite   Dialect = "sqlite"
	Postgres Dialect = "postgres"
)

// Sentinel errors.
var (
	// ErrBadURL is wrapped by errors for a database URL Open cannot use.
	ErrBadURL = errors.New("db: unsupported database URL")
	// ErrUnavailable: the database cannot be reached or does not exist.
	ErrUnavailable = errors.New("db: database unavailable")
	// ErrSchemaBehind means the database has migrations still to apply.
	ErrSchemaBehind = errors.New("db: database schema is behind; run `as-events migrate` (or `make migrate`) to bring it up to date")
	// ErrSchemaAhead means the database was migrated by a newer release.
	ErrSchemaAhead = errors.New("db: database schema is newer than this program knows; upgrade artifact-store")
)

// BusyTimeout is how long an SQLite statement waits for another writer's
// lock before failing with SQLITE_BUSY.
const BusyTimeout = 30 * time.Second

// DB is an open database: a *sql.DB plus what artifact-store needs to know
// about it. It is safe for concurrent use.
type DB struct {
	// SQL is the connection pool. Queries use $1, $2, … placeholders, which
	// both dialects accept.
	SQL      *sql.DB
	dialect  Dialect
	url      string
	pgConf   *pgx.ConnConfig // PostgreSQL only
	readOnly bool
	file     os.FileInfo // SQLite only: the file opened (CheckFile)
	stmts    sync.Map    // query text → *sql.Stmt (QueryRowPrepared)
}

// Dialect reports the database's dialect.
func (d *DB) Dialect() Dialect { return d.dialect }

// URL returns the URL the database was opened with.
func (d *DB) URL() string { return d.url }

// Close closes the prepared statements and the connection pool.
func (d *DB) Close() error {
	d.stmts.Range(func(_, v any) bool {
		v.(*sql.Stmt).Close()
		return true
	})
	return d.SQL.Close()
}

// GrowCache raises the SQLite page cache of tx's connection to 64 MiB for
// a bulk rewrite of the views (a replay), which would otherwise spill its
// dirty pages before it commits. The connection keeps the larger cache
// until it is closed. On PostgreSQL it does nothing.
func (d *DB) GrowCache(ctx context.Context, tx *sql.Tx) error {
	if d.dialect != SQLite {
		return nil
	}
	if _, err := tx.ExecContext(ctx, "PRAGMA cache_size = -65536"); err != nil {
		return fmt.Errorf("db: page cache: %w", err)
	}
	return nil
}

// QueryRowPrepared is SQL.QueryRowContext for a hot read query whose text
// is a constant: the statement is prepared once per pool (database/sql
// re-prepares it on each connection it meets) instead of parsed on every
// call. If preparing fails, the query runs unprepared, with the same result.
func (d *DB) QueryRowPrepared(ctx context.Context, query string, args ...any) *sql.Row {
	if v, ok := d.stmts.Load(query); ok {
		return v.(*sql.Stmt).QueryRowContext(ctx, args...)
	}
	st, err := d.SQL.PrepareContext(ctx, query)
	if err != nil {
		return d.SQL.QueryRowContext(ctx, query, args...)
	}
	if v, loaded := d.stmts.LoadOrStore(query, st); loaded {
		st.Close()
		st = v.(*sql.Stmt)
	}
	return st.QueryRowContext(ctx, args...)
}

// Open opens the database at rawURL for a tool that writes, and checks
// that it answers. An SQLite database is created if missing (with its
// parent directory) and migrated to the latest schema; a PostgreSQL
// database is only connected to.
func Open(ctx context.Context, rawURL string) (*DB, error) {
	return open(ctx, rawURL, Options{Create: true})
}

// Options say how OpenWith opens a database.
type Options struct {
	// Create lets an SQLite database that does not exist be created (and
	// migrated). Without it a missing database is ErrUnavailable: a tool
	// that only reads never makes a new, empty store out of a mistyped
	// path.
	Create bool
	// ReadOnly opens SQLite read-only (no migration, no lock file, no
	// write), so that a check works on a read-only copy of a store. A
	// database whose file or directory we cannot write is opened as
	// immutable: nothing else may change it while it is open.
	ReadOnly bool
	// Scratch opens an SQLite database that is thrown away after use (the
	// rebuild of as-replay --check on a read-only store): no rollback
	// journal and no fsync, so a crash or a power cut may leave it
	// corrupt. Never for a store: see docs/adr/0014-replay-scratch-database.md.
	Scratch bool
}

// OpenWith opens the database at rawURL as o says.
func OpenWith(ctx context.Context, rawURL string, o Options) (*DB, error) {
	return open(ctx, rawURL, o)
}

func open(ctx context.Context, rawURL string, o Options) (*DB, error) {
	if err := CheckURL(rawURL); err != nil {
		return nil, err
	}
	if d, _ := DialectOf(rawURL); d == SQLite {
		return openSQLite(ctx, rawURL, o)
	}
	return openPostgres(ctx, rawURL)
}

// SQLitePath returns the file path of an sqlite: URL.
func SQLitePath(rawURL string) (string, error) {
	rest, ok := strings.CutPrefix(rawURL, "sqlite:")
	if !ok {
		return "", fmt.Errorf("%w %q: not an sqlite: URL", ErrBadURL, rawURL)
	}
	if after, ok := strings.CutPrefix(rest, "//"); ok {
		// The URL form sqlite://HOST/PATH: only an empty host, so the
		// path is absolute. sqlite://localhost/tmp/x.db must not become
		// the relative path localhost/tmp/x.db.
		if after != "" && !strings.HasPrefix(after, "/") {
			host, _, _ := strings.Cut(after, "/")
			return "", fmt.Errorf("%w %q: sqlite URLs take no host (%q); write sqlite:///abs/path or sqlite:PATH", ErrBadURL, rawURL, host)
		}
		rest = after
	}
	if i := strings.IndexByte(rest, '?'); i >= 0 {
		return "", fmt.Errorf("%w %q: sqlite URLs take no query parameters", ErrBadURL, rawURL)
	}
	if rest == "" {
		return "", fmt.Errorf("%w %q: empty path (want sqlite:PATH)", ErrBadURL, rawURL)
	}
	if strings.ContainsRune(rest, 0) {
		return "", fmt.Errorf("%w %q: path contains NUL", ErrBadURL, rawURL)
	}
	return rest, nil
}

// MaxIdleConns is how many connections a DB keeps open when idle. The
// database/sql default of 2 makes a server with many concurrent readers
// (as-serve) open and close a connection for most queries, re-reading the
// schema each time; a connection costs little to keep.
const MaxIdleConns = 16

func openSQLite(ctx context.Context, rawURL string, o Options) (*DB, error) {
	path, err := SQLitePath(rawURL)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) && !o.Create {
		return nil, fmt.Errorf("%w: no database at %s (only a tool that writes creates the embedded store; check --db or $ARTIFACTSTORE_DATABASE_URL)", ErrUnavailable, path)
	}
	if o.Create {
		if dir := filepath.Dir(path); dir != "" {
			if err := os.MkdirAll(dir, 0o700); err != nil {
				return nil, fmt.Errorf("db: create directory for %s: %w", path, err)
			}
		}
	}
	if !o.ReadOnly {
		// Several processes may open a new store at once (parallel as-put
		// in CI): serialise the first connection and the self-migration on
		// a lock file beside the database, so that the later ones wait and
		// find the schema current. The first connection is inside the lock
		// because it turns a new file to WAL, which needs the database
		// alone: SQLite refuses that at once with SQLITE_BUSY, without
		// waiting out busy_timeout, while another opener reads the file.
		unlock, err := lockFile(path + ".migrate-lock")
		if err != nil {
			return nil, fmt.Errorf("db: open %s: %w", path, err)
		}
		defer unlock()
	}
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", BusyTimeout.Milliseconds()))
	if o.ReadOnly {
		q.Set("mode", "ro")
		if !writable(path) || !writable(filepath.Dir(path)) {
			q.Set("immutable", "1")
		}
	} else if o.Scratch {
		q.Add("_pragma", "journal_mode(OFF)")
		q.Add("_pragma", "synchronous(OFF)")
		q.Set("_txlock", "immediate")
	} else {
		q.Add("_pragma", "journal_mode(WAL)")
		q.Add("_pragma", "synchronous(FULL)")
		q.Set("_txlock", "immediate")
	}
	q.Add("_pragma", "foreign_keys(1)")
	// Memory, not durability: a page cache of up to 8 MiB per connection
	// (the default 2 MiB spills a big batch's dirty pages to the WAL before
	// commit and reads them back; 64 MiB cost as-put 45 MiB of peak memory
	// for no measured speed, and a server keeps MaxIdleConns connections;
	// as-put's two batches in flight use two connections, and 8 MiB gave
	// the same page writes as 16 MiB with 9% more page reads and 10–15 MB
	// less peak), GrowCache for a replay, and statement journals and sort
	// files in memory instead of temporary files.
	q.Add("_pragma", "cache_size(-8192)")
	q.Add("_pragma", "temp_store(MEMORY)")
	dsn := "file:" + (&url.URL{Path: path}).EscapedPath() + "?" + q.Encode()
	sqldb, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("db: open %s: %w", path, err)
	}
	sqldb.SetMaxIdleConns(MaxIdleConns)
	d := &DB{SQL: sqldb, dialect: SQLite, url: rawURL, readOnly: o.ReadOnly}
	if err := sqldb.PingContext(ctx); err != nil {
		sqldb.Close()
		return nil, fmt.Errorf("%w: open %s: %v", ErrUnavailable, path, err)
	}
	if o.ReadOnly {
		return d, nil
	}
	if err := d.Migrate(ctx); err != nil {
		sqldb.Close()
		return nil, err
	}
	d.file, _ = os.Stat(path) // nil (no check) if it cannot be read
	return d, nil
}

// writable reports whether this process may write path.
func writable(path string) bool { return syscall.Access(path, 2 /* W_OK */) == nil }

// ReadOnly reports whether the database was opened read-only.
func (d *DB) ReadOnly() bool { return d.readOnly }

// lockFile takes an exclusive advisory lock (flock) on path, creating it,
// and returns the function that releases it.
func lockFile(path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return func() { f.Close() }, nil // closing releases the lock
}

func openPostgres(ctx context.Context, rawURL string) (*DB, error) {
	conf, err := pgx.ParseConfig(rawURL)
	if err != nil {
		return nil, fmt.Errorf("%w %s: %s", ErrBadURL, Redact(rawURL), scrub(err.Error(), rawURL))
	}
	listenConf := conf.Copy() // LISTEN waits for notifications: no response deadline
	if err := applyTimeouts(conf, hasParam(rawURL, "connect_timeout")); err != nil {
		return nil, fmt.Errorf("%w %s: %w", ErrBadURL, Redact(rawURL), err)
	}
	if !hasParam(rawURL, "connect_timeout") {
		listenConf.ConnectTimeout = DefaultConnectTimeout
	}
	// A pooled connection whose server process went away while it sat idle
	// (a restart, pg_terminate_backend) is found out and discarded before
	// it is handed out again, with a ping, instead of failing the request
	// that drew it.
	sqldb := stdlib.OpenDB(*conf, stdlib.OptionResetSession(func(ctx context.Context, c *pgx.Conn) error {
		if c.IsClosed() || c.Ping(ctx) != nil {
			return driver.ErrBadConn
		}
		return nil
	}))
	sqldb.SetMaxIdleConns(MaxIdleConns)
	if err := sqldb.PingContext(ctx); err != nil {
		sqldb.Close()
		return nil, fmt.Errorf("%w: connect to %s: %s", ErrUnavailable, Redact(rawURL), scrub(err.Error(), rawURL))
	}
	return &DB{SQL: sqldb, dialect: Postgres, url: rawURL, pgConf: listenConf}, nil
}

// Listen opens a dedicated pgx connection (PostgreSQL only) for
// LISTEN/NOTIFY; the caller closes it.
func (d *DB) Listen(ctx context.Context) (*pgx.Conn, error) {
	if d.dialect != Postgres {
		return nil, fmt.Errorf("db: Listen needs PostgreSQL, not %s", d.dialect)
	}
	c, err := pgx.ConnectConfig(ctx, d.pgConf.Copy())
	if err != nil {
		return nil, fmt.Errorf("db: connect for LISTEN: %w", err)
	}
	return c, nil
}
