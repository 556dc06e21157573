// Package cli is the plumbing shared by the cmd/ mains: one error shape
// ("as-xxx: …" on stderr), one table from errors to exit codes, signal
// handling that cancels a context, terminal detection and the version
// string. It holds no logic of the tools themselves.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"golang.org/x/term"

	"github.com/artifactstore/artifact-store/pkg/db"
	"github.com/artifactstore/artifact-store/pkg/events"
	"github.com/artifactstore/artifact-store/pkg/manifest"
	"github.com/artifactstore/artifact-store/pkg/ref"
	"github.com/artifactstore/artifact-store/pkg/registry"
	"github.com/artifactstore/artifact-store/pkg/storage"
)

// Exit codes shared by every tool (README "Exit codes"). A script branches
// on them; ExitCode computes them from sentinel errors in one table.
const (
	ExitOK          = 0
	ExitFailure     = 1   // a failure not listed below (I/O, some inputs unreadable)
	ExitUsage       = 2   // bad flags or arguments, a malformed reference or filter
	ExitNotFound    = 3   // package, version, tag, file or object absent, expired or deleted
	ExitIntegrity   = 4   // digest mismatch, corrupt object, broken chain, replay drift, verify difference
	ExitConflict    = 5   // finalised package, other content for an existing version, a hold, a lost race
	ExitUnavailable = 6   // database or backend unreachable or missing, schema behind or ahead
	ExitInterrupted = 130 // SIGINT or SIGTERM
)

// ErrUsage marks an error as a usage error (exit 2). Wrap it: Usagef does.
var ErrUsage = errors.New("usage")

// ErrReported means the failure was already reported on stderr (for example
// per-file errors); the tool exits 1 without another message.
var ErrReported = errors.New("failures reported above")

// Usagef returns a usage error with a formatted message.
func Usagef(format string, a ...any) error {
	return fmt.Errorf("%w: %s", ErrUsage, fmt.Sprintf(format, a...))
}

// Stdio is a tool's standard streams, injectable for tests.
type Stdio struct {
	In  io.Reader
	Out io.Writer
	Err io.Writer
}

// Main runs a tool: it cancels ctx on SIGINT/SIGTERM, prints a returned error
// as "name: message" and exits with the code ExitCode gives. It never returns.
// A panic inside run is reported as an internal error without a stack trace.
func Main(name string, run func(ctx context.Context, args []string, stdio Stdio) error) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := func() (err error) {
		defer func() {
			if p := recover(); p != nil {
				err = fmt.Errorf("internal error: %v (please report this)", p)
			}
		}()
		return run(ctx, os.Args[1:], Stdio{In: os.Stdin, Out: os.Stdout, Err: os.Stderr})
	}()
	interrupted := ctx.Err() != nil
	stop()
	code := ExitCode(err)
	if interrupted && err != nil {
		code = ExitInterrupted
	}
	if err != nil && !errors.Is(err, ErrReported) && !errors.Is(err, flag.ErrHelp) {
		msg := err.Error()
		if interrupted {
			msg = "interrupted"
		}
		fmt.Fprintf(os.Stderr, "%s: %s\n", name, msg)
		if errors.Is(err, ErrUsage) {
			fmt.Fprintf(os.Stderr, "Run '%s --help' for usage.\n", name)
		}
	}
	os.Exit(code)
}

// exitTable maps sentinel errors to exit codes. The first row whose
// sentinel matches (errors.Is) wins, so the order settles an error that
// wraps two: cancellation first, then usage, then the specific classes.
var exitTable = []struct {
	code      int
	sentinels []error
}{
	{ExitInterrupted, []error{context.Canceled}},
	{ExitUsage, []error{ErrUsage, ref.ErrInvalid, registry.ErrInvalid, registry.ErrUnknownClass}},
	{ExitIntegrity, []error{storage.ErrDigestMismatch, events.ErrChainBroken, registry.ErrIntegrity, manifest.ErrMismatch}},
	{ExitUnavailable, []error{db.ErrUnavailable, db.ErrSchemaBehind, db.ErrSchemaAhead, storage.ErrUnavailable, context.DeadlineExceeded}},
	{ExitNotFound, []error{registry.ErrNotFound, storage.ErrNotFound}},
	{ExitConflict, []error{registry.ErrConflict, registry.ErrPackageFinalized, registry.ErrPathExists, registry.ErrExists, registry.ErrOutputExists, registry.ErrNotFinalized}},
}

// ExitCode maps an error to the tool's exit code through one table of
// sentinel errors (README "Exit codes"): nil and --help → 0, anything the
// table does not name → 1.
func ExitCode(err error) int {
	if err == nil || errors.Is(err, flag.ErrHelp) {
		return ExitOK
	}
	for _, row := range exitTable {
		for _, s := range row.sentinels {
			if errors.Is(err, s) {
				return row.code
			}
		}
	}
	return ExitFailure
}

// FlagSet returns a flag set that reports errors instead of exiting. Its
// Usage prints usage, then the flags, to w; Parse prints it on --help.
func FlagSet(name, usage string, w io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprint(w, usage)
		fmt.Fprintln(w, "\nFlags:")
		fs.SetOutput(w)
		fs.PrintDefaults()
		fs.SetOutput(io.Discard)
	}
	return fs
}

// Parse parses args into fs and returns the positional arguments. Flags
// may come before, between or after them, as GNU tools allow; "--" ends
// flag parsing. Flag errors become usage errors carrying the flag package's
// message; --help prints usage and returns flag.ErrHelp, which Main turns
// into exit status 0.
func Parse(fs *flag.FlagSet, args []string) ([]string, error) {
	usage := fs.Usage
	fs.Usage = func() {}
	fs.SetOutput(io.Discard)
	defer func() { fs.Usage = usage }()
	var pos []string
	for {
		err := fs.Parse(args)
		if errors.Is(err, flag.ErrHelp) {
			usage()
			return nil, err
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrUsage, err)
		}
		rest := fs.Args()
		// flag stops at the first non-flag; "--" is consumed, so look
		// at what preceded rest to tell the two apart.
		if len(rest) == 0 {
			return pos, nil
		}
		if n := len(args) - len(rest); n > 0 && args[n-1] == "--" {
			return append(pos, rest...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// IsTerminal reports whether w is a terminal: a file whose descriptor
// answers the terminal ioctl. /dev/null and other character devices are not.
func IsTerminal(w any) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// version is set at link time by the Makefile (-X …/internal/cli.version=…).
var version string

// Version returns the version stamped at build time, else the module
// version the binary was built from, else "devel".
func Version() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				return "devel-" + s.Value[:12]
			}
		}
	}
	return "devel"
}

// scanGOGC is the collector's target for ScanGC: with it, verifying the
// 200,000-event log of issue 20's scale tree took 0.73–0.85× the time of
// the default's in paired runs (tail 0.88×) at the same peak memory, which
// there is the database's mapped pages.
const scanGOGC = 400

// ScanGC sets the garbage collector's target (GOGC) to scanGOGC percent
// for the whole process unless the GOGC environment variable chooses one;
// mains call it first. It is for the tools that read the whole log
// (as-events, as-replay): the SQLite driver allocates every row's fields
// afresh and almost nothing of them stays live, so at the default of 100
// the collector runs a cycle every few megabytes read.
func ScanGC() {
	if _, set := os.LookupEnv("GOGC"); !set {
		debug.SetGCPercent(scanGOGC)
	}
}
