// Command as-scrub re-reads stored objects, checks both digests and the
// size against what the log recorded, and records each result as an event
// (v1.scrub.verified, v1.scrub.corrupt). A known-corrupt object is refused
// by as-get and makes as-health report degraded until the same bytes are
// stored again (docs/adr/0011-garbage-collection.md, "Scrub").
package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/artifactstore/artifact-store/internal/cli"
	"github.com/artifactstore/artifact-store/pkg/records"
	"github.com/artifactstore/artifact-store/pkg/registry"
	"github.com/artifactstore/artifact-store/pkg/store"
)

const usage = `Usage: as-scrub [--sample PERCENT] [--older-than D] [--limit N] [--presence] [--workers N]
                [--json] [--db URL] [--storage-root DIR] [--actor NAME]

Re-read stored objects through the data plane and check that their bytes
still hash to both recorded digests (BLAKE3 and SHA-256) and have the
recorded size. Every result is an event: verified objects in batches, each
corrupt or missing object in its own event saying what differed.

A corrupt object is refused by as-get (exit 4) and makes as-health report
degraded. Storing the same bytes again (as-put of a file with that content)
replaces it and logs the repair.

Selection (combinable; default: every stored object):
  --sample PERCENT   about PERCENT of the objects, chosen at random
  --older-than D     only objects not verified within D (e.g. 168h)
  --limit N          at most N objects
  --presence         only check that each object exists with its recorded
                     size (no read: fast); missing ones are recorded corrupt

Output: one record per corrupt object, then a summary record (objects,
bytes, verified, corrupt, milliseconds). JSON lines on a terminal or with
--json, else canonical CBOR records. Progress on stderr on a terminal.

Exit status: 0 every scrubbed object verified, 1 failure, 2 usage,
4 corruption found, 6 database or backend unavailable, 130 interrupted.

Examples:
    as-scrub                         # everything
    as-scrub --sample 5              # a 5% spot check
    as-scrub --older-than 720h       # what was not verified for 30 days
    as-scrub --presence              # a restored copy: is every object there?
    as-scrub --json | jq 'select(.corrupt)'
`

func main() { cli.Main("as-scrub", run) }

// corruptRecord is one object whose bytes did not verify.
type corruptRecord struct {
	ContentAddress string `cbor:"content_address" json:"content_address"`
	BackendID      string `cbor:"backend_id" json:"backend_id"`
	Size           uint64 `cbor:"size" json:"size"`
	Corrupt        bool   `cbor:"corrupt" json:"corrupt"`
	Detail         string `cbor:"detail" json:"detail"`
}

func run(ctx context.Context, args []string, stdio cli.Stdio) error {
	fs := cli.FlagSet("as-scrub", usage, stdio.Out)
	flags := cli.RegisterStoreFlags(fs)
	sample := fs.String("sample", "", "scrub about `PERCENT` of the objects (0 < PERCENT <= 100)")
	older := fs.Duration("older-than", 0, "only objects not verified within `D`")
	presence := fs.Bool("presence", false, "only check that each object exists with its recorded size")
	limit := fs.Int("limit", 0, "scrub at most `N` objects")
	workers := fs.Int("workers", 0, "read `N` objects at once (default: half the CPUs, at least 1)")
	asJSON := fs.Bool("json", false, "JSON lines instead of CBOR records")
	version := fs.Bool("version", false, "print the version and exit")
	pos, err := cli.Parse(fs, args)
	if err != nil {
		return err
	}
	if *version {
		fmt.Fprintln(stdio.Out, "as-scrub", cli.Version())
		return nil
	}
	if len(pos) > 0 {
		return cli.Usagef("unexpected arguments %q", pos)
	}
	opts := registry.ScrubOptions{OlderThan: *older, Limit: *limit, Workers: *workers, Presence: *presence}
	if *sample != "" {
		p, err := strconv.ParseFloat(strings.TrimSuffix(*sample, "%"), 64)
		if err != nil || !(p > 0 && p <= 100) {
			return cli.Usagef("--sample %q: want a percentage above 0 and at most 100", *sample)
		}
		opts.Sample = p
	}
	if *older < 0 || *limit < 0 || *workers < 0 {
		return cli.Usagef("--older-than, --limit and --workers must not be negative")
	}
	st, err := flags.Open(ctx, "as-scrub", store.Write)
	if err != nil {
		return err
	}
	defer st.Close()

	w := records.NewWriter(stdio.Out, cli.OutputFormat(stdio.Out, *asJSON))
	defer w.Flush()
	progress := cli.IsTerminal(stdio.Err)
	var n int
	var werr error
	opts.OnObject = func(o registry.ScrubObject) {
		n++
		if o.Corrupt && werr == nil {
			werr = w.Write(corruptRecord{ContentAddress: o.Address.String(), BackendID: o.BackendID, Size: uint64(o.Size), Corrupt: true, Detail: o.Detail})
		}
		if progress && n%100 == 0 {
			fmt.Fprintf(stdio.Err, "\ras-scrub: %d objects", n)
		}
	}
	start := time.Now()
	res, err := st.Registry.Scrub(ctx, opts)
	if progress && n >= 100 {
		fmt.Fprintln(stdio.Err)
	}
	if err != nil {
		return err
	}
	if werr != nil {
		return werr
	}
	if err := w.Write(res.Summary(time.Since(start))); err != nil {
		return err
	}
	if err := w.Flush(); err != nil {
		return err
	}
	if res.Corrupt > 0 {
		fmt.Fprintf(stdio.Err, "as-scrub: %d corrupt object(s) found and recorded\n", res.Corrupt)
		return fmt.Errorf("%w: %w", cli.ErrReported, registry.ErrIntegrity)
	}
	return nil
}
