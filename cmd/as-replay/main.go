// Command as-replay rebuilds every view from the event log and prints the
// state digest; with --check it rebuilds in a scratch transaction, compares,
// and changes nothing.
package main

import (
	"context"
	"fmt"

	"github.com/artifactstore/artifact-store/internal/cli"
	"github.com/artifactstore/artifact-store/pkg/registry"
	"github.com/artifactstore/artifact-store/pkg/store"
)

const usage = `Usage: as-replay [--check] [flags]

Rebuilds every view (packages, files, storage locations, retention state)
from sequence 1 of the event log in one transaction, verifying the hash chain
as it goes, and prints the state digest (BLAKE3 over a canonical dump of every
view) on standard output.

With --check the rebuild happens in a transaction that is rolled back: the
live views are compared with a rebuild and left untouched. The exit status is
4 if they differ (the views drifted from the log; run as-replay to repair),
6 if the database is unreachable or its schema is behind the tool.

Examples:
    as-replay --check            # in CI or cron: prove the views equal the log
    as-replay                    # repair views from the log
`

func main() {
	cli.ScanGC()
	cli.Main("as-replay", run)
}

func run(ctx context.Context, args []string, stdio cli.Stdio) error {
	fs := cli.FlagSet("as-replay", usage, stdio.Out)
	flags := cli.RegisterStoreFlags(fs)
	check := fs.Bool("check", false, "compare the views with a rebuild; change nothing")
	version := fs.Bool("version", false, "print the version and exit")
	pos, err := cli.Parse(fs, args)
	if err != nil {
		return err
	}
	if *version {
		fmt.Fprintln(stdio.Out, "as-replay", cli.Version())
		return nil
	}
	if len(pos) > 0 {
		return cli.Usagef("unexpected arguments %q", pos)
	}
	access := store.Write
	if *check {
		access = store.Check // works on a read-only copy: nothing is written
	}
	// Replay needs the log and the views only: no backend is opened.
	d, _, err := flags.OpenDB(ctx, access)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.CheckSchema(ctx); err != nil {
		return err
	}
	res, err := registry.New(d, nil, registry.Options{Actor: flags.ActorOr()}).Replay(ctx, *check)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdio.Out, res.After)
	switch {
	case *check && res.Before != res.After:
		fmt.Fprintf(stdio.Err, "as-replay: views differ from a rebuild of %d events: live %s, rebuilt %s (run as-replay to repair)\n", res.Events, res.Before, res.After)
		return fmt.Errorf("%w: %w", cli.ErrReported, registry.ErrIntegrity)
	case *check:
		fmt.Fprintf(stdio.Err, "as-replay: ok: views equal a rebuild of %d events\n", res.Events)
	default:
		fmt.Fprintf(stdio.Err, "as-replay: rebuilt the views from %d events (state was %s)\n", res.Events, res.Before)
	}
	return nil
}
