// Command as-ls lists packages (with filters), the files of one package,
// the packages holding an object, or a package's history from the log
// (docs/adr/0010-tags-and-expiry.md).
package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/artifactstore/artifact-store/internal/cli"
	"github.com/artifactstore/artifact-store/pkg/audit"
	"github.com/artifactstore/artifact-store/pkg/events"
	"github.com/artifactstore/artifact-store/pkg/identity"
	"github.com/artifactstore/artifact-store/pkg/records"
	"github.com/artifactstore/artifact-store/pkg/ref"
	"github.com/artifactstore/artifact-store/pkg/registry"
	"github.com/artifactstore/artifact-store/pkg/store"
)

const usage = `Usage: as-ls [flags] [GLOB]
       as-ls [flags] REF
       as-ls [flags] --holding ADDRESS
       as-ls [flags] --history REF

Without a reference, lists packages as records: name, version, state,
manifest digest, retention class, hold, retain-until, labels, file count,
total size, tags, and when it was created and finalised (from its events).
GLOB matches the name ('*' does not cross '/'). Packages are sorted by name,
then version in natural order: digit runs compare as numbers (1.10.0 after
1.9.0), other text bytewise. Expired, abandoned and deleted packages are
left out unless --expired or --state names them.

With a REF (name@version, name:tag or name@blake3:<hex>), lists that
package's files as file records, paths relative to the package: the shape
as-digest writes, so as-manifest can rebuild the package's file list.

--holding lists every package file that references an object (its blake3
address or sha256 digest). --history lists what happened to a package, who
did it and when, read from the event log alone (also after it expired).

Records are canonical CBOR, or JSON lines on a terminal or with --json.
--older-than and --newer-than take a duration ago (7d, 36h), a date
(2026-12-01) or an RFC 3339 time, and compare the finalisation time.

Examples:
    as-ls
    as-ls 'tools/*' --label team=build --class release
    as-ls app --older-than 30d --json | jq -r '.name+"@"+.version'
    as-ls app:stable | as-manifest --package app@1.2.3 | as-manifest digest
    as-ls --holding sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
    as-ls --history app@1.2.3
`

func main() { cli.Main("as-ls", run) }

// keyValues is a repeatable KEY=VALUE flag.
type keyValues map[string]string

func (kv keyValues) String() string { return "" }

func (kv keyValues) Set(s string) error {
	k, v, err := registry.ParseLabel(s)
	if err != nil {
		return err
	}
	if _, dup := kv[k]; dup {
		return fmt.Errorf("label %q given twice", k)
	}
	kv[k] = v
	return nil
}

// historyRecord is one --history line.
type historyRecord struct {
	Seq    uint64 `cbor:"seq" json:"seq"`
	Time   string `cbor:"time" json:"time"`
	Actor  string `cbor:"actor" json:"actor"`
	Action string `cbor:"action" json:"action"`
	Path   string `cbor:"path,omitempty" json:"path,omitempty"`
	Detail string `cbor:"detail,omitempty" json:"detail,omitempty"`
}

func run(ctx context.Context, args []string, stdio cli.Stdio) error {
	fs := cli.FlagSet("as-ls", usage, stdio.Out)
	flags := cli.RegisterStoreFlags(fs)
	labels := keyValues{}
	fs.Var(labels, "label", "only packages with label `KEY=VALUE` (repeatable)")
	class := fs.String("class", "", "only packages of retention `CLASS`")
	state := fs.String("state", "", "only packages in `STATE`: open, finalized, expired, abandoned, deleted")
	tag := fs.String("tag", "", "only the package tagged `TAG`")
	expired := fs.Bool("expired", false, "include expired, abandoned and deleted packages")
	olderThan := fs.String("older-than", "", "only packages finalised before `WHEN` (7d, 36h, a date or RFC 3339)")
	newerThan := fs.String("newer-than", "", "only packages finalised after `WHEN`")
	holding := fs.String("holding", "", "list the package files that reference object `ADDRESS`")
	history := fs.String("history", "", "list the events of package `REF`")
	asJSON := fs.Bool("json", false, "write JSON lines instead of CBOR")
	version := fs.Bool("version", false, "print the version and exit")
	pos, err := cli.Parse(fs, args)
	if err != nil {
		return err
	}
	if *version {
		fmt.Fprintln(stdio.Out, "as-ls", cli.Version())
		return nil
	}
	filtering := len(labels) > 0 || *class != "" || *state != "" || *tag != "" || *expired || *olderThan != "" || *newerThan != ""
	if len(pos) > 1 {
		return cli.Usagef("want at most one GLOB or REF")
	}
	var f registry.Filter
	var pkg ref.Ref
	var addr identity.Digest
	mode := "list"
	switch {
	case *holding != "" && *history != "":
		return cli.Usagef("--holding and --history are separate listings")
	case *holding != "" || *history != "":
		if filtering || len(pos) > 0 {
			return cli.Usagef("--holding and --history take no GLOB, REF or filters")
		}
		if *holding != "" {
			mode = "holding"
			if addr, err = identity.Parse(*holding); err != nil {
				return cli.Usagef("--holding: %v", err)
			}
		} else {
			mode = "history"
			if pkg, err = ref.Parse(*history); err != nil {
				return cli.Usagef("--history: %v", err)
			}
		}
	case len(pos) == 1 && strings.ContainsAny(pos[0], "@:"):
		mode = "files"
		if filtering {
			return cli.Usagef("filters apply to package listings, not to the files of %s", pos[0])
		}
		if pkg, err = ref.Parse(pos[0]); err != nil {
			return err
		}
	default:
		f = registry.Filter{Labels: labels, Class: *class, State: *state, Tag: *tag, IncludeEnded: *expired}
		switch *state {
		case "", "open", "finalized", registry.Expired, registry.Abandoned, registry.Deleted:
		default:
			return cli.Usagef("--state %q: want open, finalized, expired, abandoned or deleted", *state)
		}
		if *tag != "" {
			if err := ref.CheckTag(*tag); err != nil {
				return cli.Usagef("--tag: %v", err)
			}
		}
		if len(pos) == 1 {
			f.Name = pos[0]
			if err := registry.CheckGlob(f.Name); err != nil {
				return cli.Usagef("%v", err)
			}
		}
		now := time.Now()
		if *olderThan != "" {
			if f.FinalizedBefore, err = registry.ParseTime(*olderThan, now); err != nil {
				return cli.Usagef("--older-than: %v", err)
			}
		}
		if *newerThan != "" {
			if f.FinalizedAfter, err = registry.ParseTime(*newerThan, now); err != nil {
				return cli.Usagef("--newer-than: %v", err)
			}
		}
	}

	st, err := flags.Open(ctx, "as-ls", store.Read)
	if err != nil {
		return err
	}
	defer st.Close()
	reg := st.Registry

	w := records.NewWriter(stdio.Out, cli.OutputFormat(stdio.Out, *asJSON))
	switch mode {
	case "files":
		files, err := reg.Files(ctx, pkg)
		if err != nil {
			return err
		}
		for _, file := range files {
			if err := w.Write(file); err != nil {
				return err
			}
		}
	case "holding":
		hs, err := reg.Holding(ctx, addr)
		if err != nil {
			return err
		}
		for _, h := range hs {
			if err := w.Write(h); err != nil {
				return err
			}
		}
	case "history":
		v, err := reg.ResolveVersion(ctx, pkg)
		if err != nil {
			return err
		}
		entries, err := audit.For(ctx, reg.Log(), v.Name, v.Version)
		if err != nil {
			return err
		}
		if len(entries) == 0 {
			return fmt.Errorf("%w: no events about package %s", registry.ErrNotFound, v)
		}
		for _, e := range entries {
			if err := w.Write(historyRecord{Seq: e.Seq, Time: events.FormatTime(e.Time), Actor: e.Actor, Action: e.Action, Path: e.Path, Detail: e.Detail}); err != nil {
				return err
			}
		}
	default:
		for l, err := range reg.List(ctx, f) {
			if err != nil {
				return err
			}
			if err := w.Write(l); err != nil {
				return err
			}
		}
	}
	return w.Flush()
}
