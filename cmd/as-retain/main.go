// Command as-retain sets a package's retention (class, hold), applies the
// expiry policy, and deletes a package an operator made by mistake
// (docs/adr/0010-tags-and-expiry.md).
package main

import (
	"context"
	"fmt"

	"github.com/artifactstore/artifact-store/internal/cli"
	"github.com/artifactstore/artifact-store/pkg/events"
	"github.com/artifactstore/artifact-store/pkg/ref"
	"github.com/artifactstore/artifact-store/pkg/registry"
	"github.com/artifactstore/artifact-store/pkg/store"
)

const usage = `Usage: as-retain REF [--class CLASS] [--hold REASON | --release-hold]
       as-retain expire [--now TIME] [--dry-run] [--keep-last N]
                        [--include-tagged] [--abandoned-after D]
       as-retain delete REF --reason TEXT

REF is NAME@VERSION, NAME:TAG or NAME@blake3:….

  REF     --class changes the retention class (retain_until is recomputed
          from the finalisation time plus the class's minimum retention);
          --hold places a hold that blocks expiry and deletion until
          --release-hold. Each change is one event.
  expire  ends every finalised package past its retain_until that is not on
          hold, not tagged (unless --include-tagged) and not among the
          newest --keep-last N versions of its name (natural version
          order), and abandons every open package untouched for longer than
          --abandoned-after (default 7d). One event each (v1.package.expired,
          v1.package.abandoned), naming the rule. --now (RFC 3339; default
          the clock) is the run's time, recorded in the events, so a replay
          never reads a clock. --dry-run prints the same records and writes
          nothing.
  delete  ends a package at once (v1.package.deleted, with the reason);
          refused while it is on hold.

An ended package vanishes from as-ls and as-get (not found, "expired at …");
its manifest stays in the log, and its objects become garbage for as-gc.

Output (expire, delete): one record {action, name, version, at, reason,
tags, dry_run} per package ended; JSON lines on a terminal or with --json,
else canonical CBOR.

Exit status: 0 done, 1 failure, 2 usage (a bad reference, class, time or
duration), 3 package not found, 5 on hold or no hold to release, 6 store
unavailable, 130 interrupted.

Examples:
    as-retain app@1.2.3 --class release
    as-retain app:stable --hold "incident 4711"
    as-retain app:stable --release-hold
    as-retain expire --dry-run --keep-last 3
    as-retain expire --now 2027-01-01T00:00:00Z
    as-retain delete app@1.2.4 --reason "built from the wrong branch"
`

func main() { cli.Main("as-retain", run) }

func run(ctx context.Context, args []string, stdio cli.Stdio) error {
	if len(args) > 0 {
		switch args[0] {
		case "expire":
			return expire(ctx, args[1:], stdio)
		case "delete":
			return remove(ctx, args[1:], stdio)
		}
	}
	return set(ctx, args, stdio)
}

func set(ctx context.Context, args []string, stdio cli.Stdio) error {
	fs := cli.FlagSet("as-retain", usage, stdio.Out)
	flags := cli.RegisterStoreFlags(fs)
	class := fs.String("class", "", "set the retention `CLASS`")
	hold := fs.String("hold", "", "place a hold, with its `REASON`")
	release := fs.Bool("release-hold", false, "release the package's hold")
	version := fs.Bool("version", false, "print the version and exit")
	pos, err := cli.Parse(fs, args)
	if err != nil {
		return err
	}
	if *version {
		fmt.Fprintln(stdio.Out, "as-retain", cli.Version())
		return nil
	}
	switch {
	case len(pos) != 1:
		return cli.Usagef("want REF with --class, --hold or --release-hold, or a command (expire, delete)")
	case *class == "" && *hold == "" && !*release:
		return cli.Usagef("nothing to do: give --class CLASS, --hold REASON or --release-hold")
	case *hold != "" && *release:
		return cli.Usagef("--hold and --release-hold exclude each other")
	}
	rf, err := ref.Parse(pos[0])
	if err != nil {
		return cli.Usagef("%v", err)
	}
	st, err := flags.Open(ctx, "as-retain", store.Write)
	if err != nil {
		return err
	}
	defer st.Close()
	p, err := st.Registry.GetPackage(ctx, rf)
	if err != nil {
		return err
	}
	if *class != "" {
		if err := st.Registry.SetRetentionClass(ctx, p.Ref, *class); err != nil {
			return err
		}
		fmt.Fprintf(stdio.Err, "as-retain: %s: class %s\n", p.Ref, *class)
	}
	if *hold != "" {
		if err := st.Registry.PlaceHold(ctx, p.Ref, *hold); err != nil {
			return err
		}
		fmt.Fprintf(stdio.Err, "as-retain: %s: on hold (%s)\n", p.Ref, *hold)
	}
	if *release {
		if err := st.Registry.ReleaseHold(ctx, p.Ref); err != nil {
			return err
		}
		fmt.Fprintf(stdio.Err, "as-retain: %s: hold released\n", p.Ref)
	}
	return nil
}

func expire(ctx context.Context, args []string, stdio cli.Stdio) error {
	fs := cli.FlagSet("as-retain expire", usage, stdio.Out)
	flags := cli.RegisterStoreFlags(fs)
	now := fs.String("now", "", "the run's `TIME`, RFC 3339 (default: the clock)")
	dry := fs.Bool("dry-run", false, "print what would end; write nothing")
	keep := fs.Int("keep-last", 0, "protect the newest `N` finalised versions of each name")
	tagged := fs.Bool("include-tagged", false, "let tagged packages expire (their tags go with them)")
	abandoned := fs.String("abandoned-after", "7d", "abandon open packages untouched for longer than `D` (7d, 36h)")
	asJSON := fs.Bool("json", false, "write JSON lines instead of CBOR")
	pos, err := cli.Parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return cli.Usagef("expire takes no arguments, got %q", pos)
	}
	if *keep < 0 {
		return cli.Usagef("--keep-last must be at least 0, got %d", *keep)
	}
	opts := registry.ExpireOptions{DryRun: *dry, KeepLast: *keep, IncludeTagged: *tagged}
	if *now != "" {
		if opts.Now, err = events.ParseTime(*now); err != nil {
			return cli.Usagef("--now: %v", err)
		}
	}
	if opts.AbandonedAfter, err = registry.ParseDuration(*abandoned); err != nil || opts.AbandonedAfter <= 0 {
		return cli.Usagef("--abandoned-after %q: want a positive duration (7d, 36h)", *abandoned)
	}
	access := store.Write
	if *dry {
		access = store.Read
	}
	st, err := flags.Open(ctx, "as-retain", access)
	if err != nil {
		return err
	}
	defer st.Close()
	ended, err := st.Registry.Expire(ctx, opts)
	if err != nil {
		return err
	}
	if err := cli.WriteRecords(stdio.Out, *asJSON, ended...); err != nil {
		return err
	}
	verb := "ended"
	if *dry {
		verb = "would end"
	}
	fmt.Fprintf(stdio.Err, "as-retain: %s %d package(s)\n", verb, len(ended))
	return nil
}

func remove(ctx context.Context, args []string, stdio cli.Stdio) error {
	fs := cli.FlagSet("as-retain delete", usage, stdio.Out)
	flags := cli.RegisterStoreFlags(fs)
	reason := fs.String("reason", "", "why the package is deleted (required, recorded)")
	asJSON := fs.Bool("json", false, "write JSON lines instead of CBOR")
	pos, err := cli.Parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return cli.Usagef("delete wants one REF")
	}
	if *reason == "" {
		return cli.Usagef("delete needs --reason TEXT (it is recorded in the log)")
	}
	rf, err := ref.Parse(pos[0])
	if err != nil {
		return cli.Usagef("%v", err)
	}
	st, err := flags.Open(ctx, "as-retain", store.Write)
	if err != nil {
		return err
	}
	defer st.Close()
	e, err := st.Registry.DeletePackage(ctx, rf, *reason)
	if err != nil {
		return err
	}
	return cli.WriteRecords(stdio.Out, *asJSON, e)
}
