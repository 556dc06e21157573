// Command as-gc collects garbage online: mark condemns the objects no live
// package references (and orphan bytes in the backend), sweep deletes the
// bytes of those still condemned and unreferenced at least --grace after
// their mark. Every step is an event (docs/adr/0011-garbage-collection.md).
package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/artifactstore/artifact-store/internal/cli"
	"github.com/artifactstore/artifact-store/pkg/ociserve"
	"github.com/artifactstore/artifact-store/pkg/records"
	"github.com/artifactstore/artifact-store/pkg/registry"
	"github.com/artifactstore/artifact-store/pkg/store"
)

const usage = `Usage: as-gc [mark|sweep] [--grace D] [--dry-run] [--now T] [--no-orphans]
             [--uploads-older-than D --upload-dir DIR]
             [--json] [--db URL] [--storage-root DIR] [--actor NAME]

Collect garbage while ingest keeps running. With no subcommand, mark then
sweep.

  mark   condemn every object that no package (open, finalised or on hold)
         references, and bytes in the backend that no event names (orphans
         of crashed uploads), recording the time in the events.
  sweep  delete the bytes of objects still condemned and unreferenced at
         least --grace after their mark (default 24h), logging each
         deletion. A sweep that was killed is finished by the next one.

With --uploads-older-than D, mark first cancels the OCI upload sessions
(as-serve) started more than D ago and still open (v1.oci.upload.cancelled,
reason "abandoned") and removes their staged bytes from --upload-dir (the
directory as-serve was given; required with it): an abandoned upload no
longer keeps objects alive.

An ingest that needs a condemned object revives it; one that meets an
object being deleted waits and stores the bytes again: a committed
reference never names deleted bytes. Only one as-gc runs at a time.

Output: one record per upload cancelled and per object condemned or
deleted (with --dry-run: that would be), then a summary record (objects, bytes, orphans). JSON lines on a
terminal or with --json, else canonical CBOR records.

Exit status: 0 done, 1 failure, 2 usage, 5 another as-gc is running,
6 database or backend unavailable, 130 interrupted.

Examples:
    as-gc --dry-run                      # what would be condemned and swept
    as-gc                                # mark, then sweep what is 24h old
    as-gc mark && sleep 86400 && as-gc sweep
    as-gc --grace 0                      # tests: collect at once
    as-gc --now 2026-12-02T00:00:00Z mark
    as-gc --uploads-older-than 24h --upload-dir /srv/as/uploads
`

func main() { cli.Main("as-gc", run) }

// objectRecord is one condemned or deleted object.
type objectRecord struct {
	Phase          string `cbor:"phase" json:"phase"` // "mark" or "sweep"
	ContentAddress string `cbor:"content_address" json:"content_address"`
	BackendID      string `cbor:"backend_id" json:"backend_id"`
	Size           uint64 `cbor:"size" json:"size"`
	Orphan         bool   `cbor:"orphan" json:"orphan"`
	DryRun         bool   `cbor:"dry_run" json:"dry_run"`
}

// uploadRecord is one abandoned OCI upload session cancelled (or, with
// --dry-run, that would be).
type uploadRecord struct {
	Phase      string `cbor:"phase" json:"phase"` // "uploads"
	Upload     string `cbor:"upload" json:"upload"`
	Repository string `cbor:"repository" json:"repository"`
	Started    string `cbor:"started" json:"started"`
	DryRun     bool   `cbor:"dry_run" json:"dry_run"`
}

// summary is the last record of each phase.
type summary struct {
	Phase   string `cbor:"phase" json:"phase"`
	Summary bool   `cbor:"summary" json:"summary"`
	Objects uint64 `cbor:"objects" json:"objects"`
	Bytes   uint64 `cbor:"bytes" json:"bytes"`
	Orphans uint64 `cbor:"orphans" json:"orphans"`
	DryRun  bool   `cbor:"dry_run" json:"dry_run"`
}

func run(ctx context.Context, args []string, stdio cli.Stdio) error {
	fs := cli.FlagSet("as-gc", usage, stdio.Out)
	flags := cli.RegisterStoreFlags(fs)
	grace := fs.Duration("grace", 24*time.Hour, "sweep only objects condemned at least `D` ago")
	dry := fs.Bool("dry-run", false, "print what would be condemned and swept; change nothing")
	nowFlag := fs.String("now", "", "the time of this run (RFC 3339), recorded in its events (default: the clock)")
	noOrphans := fs.Bool("no-orphans", false, "do not list the backend for orphan bytes")
	uploadsOlder := fs.Duration("uploads-older-than", 0, "cancel OCI upload sessions started more than `D` ago (0: keep them)")
	uploadDir := fs.String("upload-dir", "", "`DIR` of as-serve's unfinished uploads (with --uploads-older-than)")
	asJSON := fs.Bool("json", false, "JSON lines instead of CBOR records")
	version := fs.Bool("version", false, "print the version and exit")
	pos, err := cli.Parse(fs, args)
	if err != nil {
		return err
	}
	if *version {
		fmt.Fprintln(stdio.Out, "as-gc", cli.Version())
		return nil
	}
	doMark, doSweep := true, true
	switch {
	case len(pos) == 0:
	case len(pos) == 1 && pos[0] == "mark":
		doSweep = false
	case len(pos) == 1 && pos[0] == "sweep":
		doMark = false
	default:
		return cli.Usagef("unexpected arguments %q (want mark, sweep or nothing)", pos)
	}
	if *grace < 0 {
		return cli.Usagef("--grace must not be negative")
	}
	switch {
	case *uploadsOlder < 0:
		return cli.Usagef("--uploads-older-than must not be negative")
	case *uploadsOlder > 0 && *uploadDir == "":
		return cli.Usagef("--uploads-older-than needs --upload-dir (the directory as-serve keeps unfinished uploads in)")
	case *uploadsOlder == 0 && *uploadDir != "":
		return cli.Usagef("--upload-dir is used only with --uploads-older-than")
	}
	if *nowFlag != "" {
		t, err := time.Parse(time.RFC3339Nano, *nowFlag)
		if err != nil {
			return cli.Usagef("--now: %v", err)
		}
		flags.Now = func() time.Time { return t }
	}
	st, err := flags.Open(ctx, "as-gc", store.Write)
	if err != nil {
		return err
	}
	defer st.Close()
	r := st.Registry
	if !*dry {
		unlock, err := r.LockGC(ctx)
		if err != nil {
			return err
		}
		defer unlock()
	}
	w := records.NewWriter(stdio.Out, cli.OutputFormat(stdio.Out, *asJSON))
	defer w.Flush()
	progress := cli.IsTerminal(stdio.Err)
	phase := func(name string, f func(context.Context, registry.GCOptions) (registry.GCResult, error)) error {
		var n int
		o := registry.GCOptions{Grace: *grace, DryRun: *dry, Orphans: !*noOrphans, OnObject: func(ob registry.GCObject) {
			w.Write(objectRecord{Phase: name, ContentAddress: ob.Address.String(), BackendID: ob.BackendID, Size: uint64(ob.Size), Orphan: ob.Orphan, DryRun: *dry})
			n++
			if progress && n%1000 == 0 {
				fmt.Fprintf(stdio.Err, "\ras-gc: %s: %d objects", name, n)
			}
		}}
		res, err := f(ctx, o)
		if progress && n >= 1000 {
			fmt.Fprintln(stdio.Err)
		}
		if err != nil {
			return err
		}
		return w.Write(summary{Phase: name, Summary: true, Objects: uint64(res.Objects), Bytes: uint64(res.Bytes), Orphans: uint64(res.Orphans), DryRun: *dry})
	}
	if doMark && *uploadsOlder > 0 {
		now := time.Now()
		if flags.Now != nil {
			now = flags.Now()
		}
		old, err := r.AbandonedOCIUploads(ctx, now.Add(-*uploadsOlder))
		if err != nil {
			return err
		}
		for _, u := range old {
			if !*dry {
				if err := r.CancelOCIUpload(ctx, u.Repository, u.ID, "abandoned"); err != nil && !errors.Is(err, registry.ErrNotFound) {
					return err // ErrNotFound: it finished or was cancelled meanwhile
				}
				if err := ociserve.RemoveStaged(*uploadDir, u.ID); err != nil {
					return err
				}
			}
			if err := w.Write(uploadRecord{Phase: "uploads", Upload: u.ID, Repository: u.Repository, Started: u.Started.UTC().Format(time.RFC3339Nano), DryRun: *dry}); err != nil {
				return err
			}
		}
	}
	if doMark {
		if err := phase("mark", r.Mark); err != nil {
			return err
		}
	}
	if doSweep {
		if err := phase("sweep", r.Sweep); err != nil {
			return err
		}
	}
	return w.Flush()
}
