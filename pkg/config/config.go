// Package config is the one place where artifact-store's tools read and
// check their configuration (DESIGN.md §8, .env.example).
//
// Sources, strongest first: command-line flags ([Overrides], usually bound
// with [Overrides.RegisterFlags]), then the environment, then defaults. The
// defaults give a working embedded store with nothing configured: an SQLite
// database and a local object root under one data directory,
//
//	$XDG_DATA_HOME/artifact-store/        (XDG_DATA_HOME unset or relative:
//	    store.db                           ~/.local/share/artifact-store)
//	    objects/
//
// Environment variables:
//
//	ARTIFACTSTORE_DATABASE_URL        sqlite:PATH or postgres://… (flag --db)
//	ARTIFACTSTORE_STORAGE_BACKEND     local (default) or s3
//	ARTIFACTSTORE_STORAGE_LOCAL_ROOT  absolute directory (flag --storage-root)
//	ARTIFACTSTORE_LOG_LEVEL           debug, info, warn, error (flag --log-level)
//	ARTIFACTSTORE_S3_ENDPOINT, _BUCKET, _REGION, _PREFIX, _PATH_STYLE
//	                                  the S3 backend (credentials: the AWS chain)
//	ARTIFACTSTORE_SCRUB_MAX_AGE       a Go duration (720h); as-health reports
//	                                  degraded when the oldest verification of
//	                                  a stored object is older (default: off)
//
// [Load] validates everything at once and returns a single error naming
// each bad variable or flag, so that every tool reports a bad URL or an
// unusable root the same way, once. The package depends on the standard
// library only, so that every other package (pkg/db included) may use it.
package config

import (
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/artifactstore/artifact-store/pkg/db"
)

// Environment variable names.
const (
	EnvDatabaseURL    = "ARTIFACTSTORE_DATABASE_URL"
	EnvStorageBackend = "ARTIFACTSTORE_STORAGE_BACKEND"
	EnvLocalRoot      = "ARTIFACTSTORE_STORAGE_LOCAL_ROOT"
	EnvLogLevel       = "ARTIFACTSTORE_LOG_LEVEL"
	EnvS3Endpoint     = "ARTIFACTSTORE_S3_ENDPOINT"
	EnvS3Bucket       = "ARTIFACTSTORE_S3_BUCKET"
	EnvS3Region       = "ARTIFACTSTORE_S3_REGION"
	EnvS3Prefix       = "ARTIFACTSTORE_S3_PREFIX"
	EnvS3PathStyle    = "ARTIFACTSTORE_S3_PATH_STYLE"
	EnvScrubMaxAge    = "ARTIFACTSTORE_SCRUB_MAX_AGE"
)

// Storage backend kinds.
const (
	BackendLocal = "local"
	BackendS3    = "s3"
)

// Default file names inside the data directory.
const (
	DatabaseFile = "store.db"
	ObjectsDir   = "objects"
)

// Sentinel errors.
var (
	// ErrInvalid is wrapped by every validation error Load returns.
	ErrInvalid = errors.New("config: invalid configuration")
)

// Config is a tool's resolved, validated configuration.
type Config struct {
	// DataDir is the default home of the embedded store; empty if it could
	// not be determined (no home directory) and nothing needed it.
	DataDir string
	// DatabaseURL is sqlite:PATH or postgres://… (see pkg/db).
	DatabaseURL string
	// StorageBackend is BackendLocal or BackendS3.
	StorageBackend string
	// LocalRoot is the local backend's absolute root directory.
	LocalRoot string
	// LogLevel is the slog level for tools' logs.
	LogLevel slog.Level
	// S3 holds the S3 backend's settings, parsed and kept for it.
	S3 S3
	// ScrubMaxAge, if positive, is the age beyond which the oldest
	// verification of a stored object makes as-health report degraded.
	ScrubMaxAge time.Duration
}

// S3 is the S3-compatible backend's configuration (credentials come from
// the standard AWS chain, never from here).
type S3 struct {
	Endpoint, Bucket, Region, Prefix string
	// PathStyle addresses the bucket as <endpoint>/<bucket>/<key>:
	// $ARTIFACTSTORE_S3_PATH_STYLE (true/false), by default true when an
	// endpoint is given (MinIO, Garage, Ceph RGW, VersityGW need it) and
	// false for AWS S3.
	PathStyle bool
}

// Overrides are values given on the command line; each non-empty field
// wins over its environment variable.
type Overrides struct {
	DatabaseURL string // --db
	LocalRoot   string // --storage-root
	LogLevel    string // --log-level
}

// RegisterFlags binds --db, --storage-root and --log-level to o.
func (o *Overrides) RegisterFlags(fs *flag.FlagSet) {
	o.RegisterDBFlag(fs)
	fs.StringVar(&o.LocalRoot, "storage-root", o.LocalRoot, "local object root `DIR` (default $"+EnvLocalRoot+", else DATA_DIR/objects)")
	fs.StringVar(&o.LogLevel, "log-level", o.LogLevel, "log `LEVEL`: debug, info, warn, error (default $"+EnvLogLevel+", else info)")
}

// RegisterDBFlag binds only --db to o, for tools that touch no storage.
func (o *Overrides) RegisterDBFlag(fs *flag.FlagSet) {
	fs.StringVar(&o.DatabaseURL, "db", o.DatabaseURL, "database `URL`: sqlite:PATH or postgres://… (default $"+EnvDatabaseURL+", else the embedded store)")
}

// setting is one raw value and where it came from, for error messages.
type setting struct {
	value, source string
}

func pick(getenv func(string) string, flagValue, flagName, env string) setting {
	if flagValue != "" {
		return setting{flagValue, "--" + flagName}
	}
	if v := getenv(env); v != "" {
		return setting{v, "$" + env}
	}
	return setting{}
}

// Load reads the configuration from the environment (getenv is usually
// os.Getenv), fills the defaults and validates it.
func Load(getenv func(string) string) (Config, error) {
	return LoadWith(getenv, Overrides{})
}

// LoadWith is Load with command-line overrides applied over the
// environment. The error, if any, wraps ErrInvalid and names every bad
// variable or flag.
func LoadWith(getenv func(string) string, o Overrides) (Config, error) {
	dbs := pick(getenv, o.DatabaseURL, "db", EnvDatabaseURL)
	roots := pick(getenv, o.LocalRoot, "storage-root", EnvLocalRoot)
	levels := pick(getenv, o.LogLevel, "log-level", EnvLogLevel)
	c := Config{
		DatabaseURL:    dbs.value,
		StorageBackend: strings.TrimSpace(getenv(EnvStorageBackend)),
		LocalRoot:      roots.value,
		S3: S3{
			Endpoint: getenv(EnvS3Endpoint),
			Bucket:   getenv(EnvS3Bucket),
			Region:   getenv(EnvS3Region),
			Prefix:   getenv(EnvS3Prefix),
		},
	}
	var errs []error
	bad := func(source, format string, a ...any) {
		errs = append(errs, fmt.Errorf("%s: "+format, append([]any{source}, a...)...))
	}

	if dbs.value == "" || roots.value == "" {
		dir, err := DataDir(getenv)
		if err != nil {
			errs = append(errs, err)
		}
		c.DataDir = dir
		if dir != "" && c.DatabaseURL == "" {
			c.DatabaseURL = "sqlite:" + filepath.Join(dir, DatabaseFile)
		}
		if dir != "" && c.LocalRoot == "" {
			c.LocalRoot = filepath.Join(dir, ObjectsDir)
		}
	} else if dir, err := DataDir(getenv); err == nil {
		c.DataDir = dir
	}

	if dbs.value != "" {
		if err := db.CheckURL(dbs.value); err != nil {
			bad(dbs.source, "%v", err)
		}
	}

	c.S3.PathStyle = c.S3.Endpoint != ""
	if v := strings.TrimSpace(getenv(EnvS3PathStyle)); v != "" {
		switch strings.ToLower(v) {
		case "1", "true", "yes", "on":
			c.S3.PathStyle = true
		case "0", "false", "no", "off":
			c.S3.PathStyle = false
		default:
			bad("$"+EnvS3PathStyle, "%q is not a boolean (want true or false)", v)
		}
	}

	if v := strings.TrimSpace(getenv(EnvScrubMaxAge)); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			bad("$"+EnvScrubMaxAge, "%q is not a non-negative duration (want e.g. 720h)", v)
		}
		c.ScrubMaxAge = d
	}

	switch c.StorageBackend {
	case "":
		c.StorageBackend = BackendLocal
	case BackendLocal, BackendS3:
	default:
		bad("$"+EnvStorageBackend, "unknown storage backend %q (want %s or %s)", c.StorageBackend, BackendLocal, BackendS3)
	}

	if roots.value != "" {
		if err := checkRoot(roots.value); err != nil {
			bad(roots.source, "%v", err)
		}
	}

	if levels.value != "" {
		if err := c.LogLevel.UnmarshalText([]byte(strings.TrimSpace(levels.value))); err != nil {
			bad(levels.source, "unknown log level %q (want debug, info, warn or error)", levels.value)
		}
	}

	switch len(errs) {
	case 0:
		return c, nil
	case 1:
		return c, fmt.Errorf("%w: %w", ErrInvalid, errs[0])
	}
	// One line per problem, so that each is read on its own.
	msgs := make([]string, len(errs))
	for i, e := range errs {
		msgs[i] = "\n    " + e.Error()
	}
	return c, fmt.Errorf("%w (%d problems):%s", ErrInvalid, len(errs), strings.Join(msgs, ""))
}

// CheckBackend reports whether the configured storage backend can be used
// by this build and has what it needs: nil for local; for s3, a bucket
// name S3 accepts and, if given, an http:// or https:// endpoint without
// credentials in it. The error wraps ErrInvalid.
func (c Config) CheckBackend() error {
	switch c.StorageBackend {
	case BackendLocal, "":
		return nil
	case BackendS3:
		return c.S3.check()
	}
	return fmt.Errorf("config: $%s: unknown storage backend %q", EnvStorageBackend, c.StorageBackend)
}

func (s S3) check() error {
	var errs []string
	if s.Bucket == "" {
		errs = append(errs, fmt.Sprintf("$%s is required with $%s=s3", EnvS3Bucket, EnvStorageBackend))
	} else if why := bucketName(s.Bucket); why != "" {
		errs = append(errs, fmt.Sprintf("$%s: bucket name %q %s", EnvS3Bucket, s.Bucket, why))
	}
	if s.Endpoint != "" {
		u, err := url.Parse(s.Endpoint)
		switch {
		case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
			errs = append(errs, fmt.Sprintf("$%s: want an http:// or https:// URL with a host (like http://127.0.0.1:9000)", EnvS3Endpoint))
		case u.User != nil:
			// The value is not repeated: it holds a secret.
			errs = append(errs, fmt.Sprintf("$%s must not carry credentials: give them through the AWS chain (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, a profile or a role)", EnvS3Endpoint))
		}
	}
	switch len(errs) {
	case 0:
		return nil
	case 1:
		return fmt.Errorf("%w: %s", ErrInvalid, errs[0])
	}
	return fmt.Errorf("%w: %s", ErrInvalid, strings.Join(errs, "; "))
}

// bucketName says what is wrong with an S3 bucket name ("" if nothing):
// 3-63 characters of lowercase letters, digits, '.' and '-', starting and
// ending with a letter or digit.
func bucketName(b string) string {
	if len(b) < 3 || len(b) > 63 {
		return "must be 3 to 63 characters long"
	}
	for i := 0; i < len(b); i++ {
		c := b[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '.' || c == '-') {
			return "may hold only lowercase letters, digits, '.' and '-'"
		}
	}
	if end := b[len(b)-1]; b[0] == '.' || b[0] == '-' || end == '.' || end == '-' {
		return "must start and end with a letter or digit"
	}
	return ""
}

// DataDir returns the default data directory, $XDG_DATA_HOME/artifact-store,
// with XDG_DATA_HOME falling back to ~/.local/share when it is unset or
// relative (as the XDG base directory specification says).
func DataDir(getenv func(string) string) (string, error) {
	base := getenv("XDG_DATA_HOME")
	if base == "" || !filepath.IsAbs(base) {
		home := getenv("HOME")
		if home == "" {
			var err error
			if home, err = os.UserHomeDir(); err != nil {
				return "", fmt.Errorf("config: no data directory: set $XDG_DATA_HOME or $HOME, or give $%s and $%s: %w", EnvDatabaseURL, EnvLocalRoot, err)
			}
		}
		base = filepath.Join(home, ".local", "share")
	}
	return filepath.Join(base, "artifact-store"), nil
}

// DatabaseURL resolves the database URL when no flag gives one:
// $ARTIFACTSTORE_DATABASE_URL, else the embedded store
// sqlite:DATA_DIR/store.db. It does not validate the URL (Load does).
func DatabaseURL(getenv func(string) string) (string, error) {
	if u := getenv(EnvDatabaseURL); u != "" {
		return u, nil
	}
	dir, err := DataDir(getenv)
	if err != nil {
		return "", err
	}
	return "sqlite:" + filepath.Join(dir, DatabaseFile), nil
}

// checkRoot checks a local object root without creating it: an absolute
// path that, if it exists, is a directory, and whose nearest existing
// ancestor is a directory (so that it can be created).
func checkRoot(root string) error {
	if strings.ContainsRune(root, 0) {
		return errors.New("root contains NUL")
	}
	if !filepath.IsAbs(root) {
		return fmt.Errorf("root %q is relative; give an absolute directory", root)
	}
	p := filepath.Clean(root)
	for {
		st, err := os.Stat(p)
		switch {
		case err == nil && st.IsDir():
			return nil
		case err == nil && p == filepath.Clean(root):
			return fmt.Errorf("root %q exists and is not a directory", root)
		case err == nil:
			return fmt.Errorf("root %q cannot be created: %s is not a directory", root, p)
		case !errors.Is(err, os.ErrNotExist) && !errors.Is(err, syscall.ENOTDIR):
			return fmt.Errorf("root %q is unusable: %v", root, err)
		}
		parent := filepath.Dir(p)
		if parent == p {
			return fmt.Errorf("root %q: no existing ancestor", root)
		}
		p = parent
	}
}
