// Command as-events reads, checks and appends to artifact-store's event log:
// tail, head, verify, append (producer events) and migrate.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/artifactstore/artifact-store/internal/cli"
	"github.com/artifactstore/artifact-store/pkg/canonical"
	"github.com/artifactstore/artifact-store/pkg/db"
	"github.com/artifactstore/artifact-store/pkg/events"
	"github.com/artifactstore/artifact-store/pkg/records"
	"github.com/artifactstore/artifact-store/pkg/store"
)

const usage = `Usage: as-events [--db URL] COMMAND [FLAGS]

Read and check artifact-store's append-only, hash-chained event log.

Commands:
    tail [--since N] [--follow] [--json]
                     events with sequence number above N (default 0), as a
                     canonical CBOR sequence of records
                     {seq, type, actor, time, payload, prev_hash, hash};
                     JSON lines (payload decoded) on a terminal or with
                     --json. --follow keeps waiting for new events.
    head [--json]    the last sequence number and its hash
    verify           walk the hash chain; names the first bad sequence
    append --type T [--actor A] [--time RFC3339]
                     append one producer event whose payload is the
                     canonical CBOR item on standard input; types are
                     namespace.name, and the v1. namespace is reserved for
                     the registry
    migrate [--fresh [--yes]]
                     bring the schema up to date (--fresh: drop everything,
                     the event log included, and re-create it; it names the
                     store and asks on a terminal, and needs --yes in a
                     script)

The database is --db, else $ARTIFACTSTORE_DATABASE_URL, else the embedded
store sqlite:$XDG_DATA_HOME/artifact-store/store.db. URLs: sqlite:PATH,
postgres://user@host/db. SQLite migrates itself; PostgreSQL needs
'as-events migrate' after an upgrade.

Exit status: 0 success, 1 bad input or another failure, 2 usage error,
4 broken hash chain (verify), 6 database unreachable or not migrated,
130 interrupted.

Examples:
    as-events tail --since 42 --follow
    as-events --db postgres://as@db/as tail --json | jq .payload
    as-events verify && as-events head
    printf '\xa1\x63job\x01' | as-events append --type ci.job-finished
    as-events --db postgres://as@db/as migrate
`

func main() {
	cli.ScanGC()
	cli.Main("as-events", run)
}

// commands are as-events' subcommands.
var commands = []string{"tail", "head", "verify", "append", "migrate"}

func run(ctx context.Context, args []string, stdio cli.Stdio) error {
	fs := cli.FlagSet("as-events", usage, stdio.Out)
	sf := &cli.StoreFlags{}
	sf.Register(fs) // --db, --log-level, … before the command as after it
	version := fs.Bool("version", false, "print the version and exit")
	// Global flags stop at the command name; the command parses the rest.
	showUsage := fs.Usage
	fs.Usage = func() {}
	fs.SetOutput(io.Discard)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			showUsage()
			return nil
		}
		if f, ok := strings.CutPrefix(err.Error(), "flag provided but not defined: "); ok {
			cmd := "COMMAND"
			for _, a := range args {
				if slices.Contains(commands, a) {
					cmd = a
					break
				}
			}
			return cli.Usagef("%v; command flags go after the command (as-events %s -%s)", err, cmd, f)
		}
		return cli.Usagef("%v", err)
	}
	fs.Usage = showUsage
	if *version {
		fmt.Fprintln(stdio.Out, "as-events", cli.Version())
		return nil
	}
	rest := fs.Args()
	if len(rest) == 0 {
		return cli.Usagef("no command given (tail, head, verify, append, migrate)")
	}
	c := &command{stdio: stdio, sf: sf}
	switch rest[0] {
	case "tail":
		return c.tail(ctx, rest[1:])
	case "head":
		return c.head(ctx, rest[1:])
	case "verify":
		return c.verify(ctx, rest[1:])
	case "append":
		return c.append(ctx, rest[1:])
	case "migrate":
		return c.migrate(ctx, rest[1:])
	case "help":
		fs.Usage()
		return nil
	}
	return cli.Usagef("unknown command %q (tail, head, verify, append, migrate)", rest[0])
}

type command struct {
	stdio cli.Stdio
	sf    *cli.StoreFlags
}

// flags parses a subcommand's flags; every subcommand also takes the
// shared store flags (--db, --log-level, …).
func (c *command) flags(name, use string, args []string, define func(fs *flag.FlagSet)) error {
	fs := cli.FlagSet("as-events "+name, "Usage: as-events "+name+" "+use+"\n\nSee 'as-events --help'.\n", c.stdio.Out)
	c.sf.Register(fs)
	define(fs)
	pos, err := cli.Parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return cli.Usagef("%s takes no arguments, got %q", name, pos[0])
	}
	return nil
}

// open opens the database for the access a command needs and, unless
// migrating, refuses a schema that is behind.
func (c *command) open(ctx context.Context, a store.Access, migrating bool) (*db.DB, error) {
	d, _, err := c.sf.OpenDB(ctx, a)
	if err != nil {
		return nil, err
	}
	if !migrating {
		if err := d.CheckSchema(ctx); err != nil {
			d.Close()
			return nil, err
		}
	}
	return d, nil
}

func (c *command) writer(asJSON bool) *records.Writer {
	return records.NewWriter(c.stdio.Out, cli.OutputFormat(c.stdio.Out, asJSON))
}

func (c *command) tail(ctx context.Context, args []string) error {
	var since uint64
	var follow, asJSON bool
	if err := c.flags("tail", "[--since N] [--follow] [--json]", args, func(fs *flag.FlagSet) {
		fs.Func("since", "emit events with sequence number above `N` (0: all)", func(v string) error {
			n, err := strconv.ParseUint(v, 10, 64)
			if err != nil {
				return fmt.Errorf("want a sequence number: 0 (from the start) or a positive integer, got %q", v)
			}
			since = n
			return nil
		})
		fs.BoolVar(&follow, "follow", false, "keep waiting for new events")
		fs.BoolVar(&follow, "f", false, "short for --follow")
		fs.BoolVar(&asJSON, "json", false, "write JSON lines instead of CBOR")
	}); err != nil {
		return err
	}
	if since > math.MaxInt64 {
		return cli.Usagef("--since %d: sequence numbers end at %d", since, int64(math.MaxInt64))
	}
	d, err := c.open(ctx, store.Read, false)
	if err != nil {
		return err
	}
	defer d.Close()
	l := events.New(d)
	w := c.writer(asJSON)
	if !follow {
		var werr error
		err := l.ScanRecords(ctx, since, func(head, payload, tail []byte) error {
			werr = w.WriteRawParts(head, payload, tail)
			return werr
		})
		switch {
		case werr != nil:
			return werr
		case err != nil:
			if ferr := w.Flush(); ferr != nil {
				return ferr
			}
			return err
		}
		return w.Flush()
	}
	var b []byte // one buffer for every record
	for ev, err := range l.Tail(ctx, since) {
		if err != nil {
			if ferr := w.Flush(); ferr != nil {
				return ferr
			}
			if errors.Is(err, context.Canceled) {
				return nil // interrupted while following: a normal end
			}
			return err
		}
		if b, err = events.AppendRecord(b[:0], ev); err != nil {
			return err
		}
		if err := w.WriteRaw(b); err != nil {
			return err
		}
		if err := w.Flush(); err != nil {
			return err
		}
	}
	return w.Flush()
}

// headRecord is what head prints.
type headRecord struct {
	Seq  uint64 `cbor:"seq" json:"seq"`
	Hash string `cbor:"hash" json:"hash"`
}

func (c *command) head(ctx context.Context, args []string) error {
	var asJSON bool
	if err := c.flags("head", "[--json]", args, func(fs *flag.FlagSet) {
		fs.BoolVar(&asJSON, "json", false, "write JSON instead of CBOR")
	}); err != nil {
		return err
	}
	d, err := c.open(ctx, store.Read, false)
	if err != nil {
		return err
	}
	defer d.Close()
	h, err := events.New(d).Head(ctx)
	if err != nil {
		return err
	}
	w := c.writer(asJSON)
	if err := w.Write(headRecord{Seq: h.Seq, Hash: h.Hash.String()}); err != nil {
		return err
	}
	return w.Flush()
}

func (c *command) verify(ctx context.Context, args []string) error {
	if err := c.flags("verify", "", args, func(*flag.FlagSet) {}); err != nil {
		return err
	}
	d, err := c.open(ctx, store.Check, false)
	if err != nil {
		return err
	}
	defer d.Close()
	l := events.New(d)
	h, err := l.Head(ctx)
	if err != nil {
		return err
	}
	if err := l.Verify(ctx); err != nil {
		return err
	}
	fmt.Fprintf(c.stdio.Out, "ok: %d events, chain verified up to seq %d (%s)\n", h.Seq, h.Seq, h.Hash)
	return nil
}

// maxPayload bounds a payload read from standard input.
const maxPayload = 16 << 20

func (c *command) append(ctx context.Context, args []string) error {
	var typ, when string
	var asJSON bool
	if err := c.flags("append", "--type T [--actor A] [--time RFC3339] < payload.cbor", args, func(fs *flag.FlagSet) {
		fs.StringVar(&typ, "type", "", "event type `T`, namespace.name outside v1.")
		fs.StringVar(&when, "time", "", "when it happened, RFC 3339 (default now)")
		fs.BoolVar(&asJSON, "json", false, "write the appended record as JSON")
	}); err != nil {
		return err
	}
	if typ == "" {
		return cli.Usagef("append needs --type")
	}
	if err := events.ValidateProducerType(typ); err != nil {
		return err
	}
	at := time.Now()
	if when != "" {
		t, err := events.ParseTime(when)
		if err != nil {
			return cli.Usagef("--time: %v (e.g. 2026-01-02T15:04:05Z)", err)
		}
		at = t
	}
	if cli.IsTerminal(c.stdio.In) {
		return cli.Usagef("append reads a canonical CBOR payload from standard input; refusing to read it from a terminal")
	}
	payload, err := io.ReadAll(io.LimitReader(c.stdio.In, maxPayload+1))
	if err != nil {
		return fmt.Errorf("reading the payload from standard input: %w", err)
	}
	if len(payload) > maxPayload {
		return fmt.Errorf("payload on standard input exceeds %d bytes", maxPayload)
	}
	if err := canonical.Check(payload); err != nil {
		return fmt.Errorf("the payload on standard input must be exactly one canonical CBOR item: %w", err)
	}
	d, err := c.open(ctx, store.Write, false)
	if err != nil {
		return err
	}
	defer d.Close()
	out, err := events.New(d).Commit(ctx, events.Event{Type: typ, Actor: c.sf.ActorOr(), Time: at, Payload: payload})
	if err != nil {
		return err
	}
	b, err := events.MarshalRecord(out[0])
	if err != nil {
		return err
	}
	w := c.writer(asJSON)
	if err := w.WriteRaw(b); err != nil {
		return err
	}
	return w.Flush()
}

func (c *command) migrate(ctx context.Context, args []string) error {
	var fresh, yes bool
	if err := c.flags("migrate", "[--fresh [--yes]]", args, func(fs *flag.FlagSet) {
		fs.BoolVar(&fresh, "fresh", false, "drop every table (the event log too) and re-create the schema")
		fs.BoolVar(&yes, "yes", false, "with --fresh: do not ask for confirmation")
	}); err != nil {
		return err
	}
	d, err := c.open(ctx, store.Write, true)
	if err != nil {
		return err
	}
	defer d.Close()
	if fresh {
		if err := c.confirmFresh(ctx, d, yes); err != nil {
			return err
		}
		err = d.MigrateFresh(ctx)
	} else {
		err = d.Migrate(ctx)
	}
	if err != nil {
		return err
	}
	st, err := d.SchemaStatus(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(c.stdio.Err, "as-events: %s schema at version %d\n", d.Dialect(), st.Current)
	return nil
}

// confirmFresh names the store --fresh would wipe and how many events it
// holds, and goes on only with --yes or a typed "yes" on a terminal; a
// script without --yes is refused (exit 2) before anything is dropped.
func (c *command) confirmFresh(ctx context.Context, d *db.DB, yes bool) error {
	what := db.Redact(d.URL())
	if h, err := events.New(d).Head(ctx); err == nil {
		what = fmt.Sprintf("%s (%d events)", what, h.Seq)
	}
	if yes {
		fmt.Fprintf(c.stdio.Err, "as-events: dropping every table of %s\n", what)
		return nil
	}
	if !cli.IsTerminal(c.stdio.In) {
		return cli.Usagef("migrate --fresh drops every table of %s, the event log included; add --yes to confirm (make migrate-fresh FORCE=1)", what)
	}
	fmt.Fprintf(c.stdio.Err, "as-events: drop every table of %s, the event log included? type yes: ", what)
	line, _ := bufio.NewReader(c.stdio.In).ReadString('\n')
	if strings.TrimSpace(line) != "yes" {
		return cli.Usagef("not confirmed; nothing dropped")
	}
	return nil
}
