// Command as-put stores files into a package: it reads file records (from
// as-digest) and the files they name, verifies each against its record while
// storing it, and with --finalize writes the package's canonical manifest.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/artifactstore/artifact-store/internal/cli"
	"github.com/artifactstore/artifact-store/pkg/manifest"
	"github.com/artifactstore/artifact-store/pkg/records"
	"github.com/artifactstore/artifact-store/pkg/ref"
	"github.com/artifactstore/artifact-store/pkg/registry"
	"github.com/artifactstore/artifact-store/pkg/store"
)

const usage = `Usage: as-put --package NAME@VERSION [flags] < records
       as-put -                      (store standard input as a bare object)

Reads file records (as as-digest writes them) from standard input, stores each
named file into the package, verifying its bytes against the record while
storing them (a file changed since it was digested is an error), and writes
one storage receipt per file:

    {"path": "bin/app", "content_address": "blake3:…", "backend_id": "local", "key": "…", "stored": true}

With --finalize it seals the package and writes its canonical CBOR manifest
instead (JCS JSON on a terminal or with --json). The package is created if it
does not exist. Record paths are made relative to --root (default: the deepest
directory containing every file). A failure leaves the package open and
consistent; running the same command again completes it without storing
anything twice. Progress goes to standard error when it is a terminal.

Examples:
    find dist -type f | as-digest | as-put --package app@1.2.3 --finalize > app.manifest
    find dist -type f | as-digest | as-put --package app@1.2.3 --retention release --label team=ci
    as-put - < build.log
`

func main() { cli.Main("as-put", run) }

func run(ctx context.Context, args []string, stdio cli.Stdio) error {
	fs := cli.FlagSet("as-put", usage, stdio.Out)
	flags := cli.RegisterStoreFlags(fs)
	pkgRef := fs.String("package", "", "the package, NAME@VERSION")
	retention := fs.String("retention", "", "retention class of a new package (default standard)")
	labels := cli.KeyValues{}
	fs.Var(labels, "label", "KEY=VALUE label of a new package (repeatable)")
	facts := cli.KeyValues{}
	fs.Var(facts, "fact", "KEY=VALUE provenance fact recorded by --finalize (repeatable)")
	jobs := fs.Int("jobs", 16, "files checked, then stored, at once (their stat calls and fsyncs overlap)")
	replace := fs.Bool("replace", false, "let a path already in the open package get new bytes")
	finalize := fs.Bool("finalize", false, "seal the package and write its manifest")
	root := fs.String("root", "", "directory the record paths are relative to")
	createdAt := fs.String("created-at", "", "creation time for the manifest, RFC 3339 (default $SOURCE_DATE_EPOCH; none if unset)")
	asJSON := fs.Bool("json", false, "write JSON (receipts as JSON lines, the manifest as JCS)")
	version := fs.Bool("version", false, "print the version and exit")
	pos, err := cli.Parse(fs, args)
	if err != nil {
		return err
	}
	if *version {
		fmt.Fprintln(stdio.Out, "as-put", cli.Version())
		return nil
	}
	bare := len(pos) == 1 && pos[0] == "-"
	switch {
	case len(pos) > 0 && !bare:
		return cli.Usagef("unexpected arguments %q (records come on standard input; '-' stores standard input as a bare object)", pos)
	case bare && (*pkgRef != "" || *finalize):
		return cli.Usagef("'-' stores a bare object; it takes no --package or --finalize")
	case !bare && *pkgRef == "":
		return cli.Usagef("--package NAME@VERSION is required")
	}
	if *jobs < 1 {
		return cli.Usagef("--jobs must be at least 1, got %d", *jobs)
	}
	created, err := manifest.DeclaredTime(*createdAt, os.Getenv)
	if err != nil {
		return cli.Usagef("%v", err)
	}
	format := cli.OutputFormat(stdio.Out, *asJSON)
	w := records.NewWriter(stdio.Out, format)

	if bare {
		st, err := flags.Open(ctx, "as-put", store.Write)
		if err != nil {
			return err
		}
		defer st.Close()
		res, err := st.Registry.StoreObject(ctx, stdio.In, nil)
		if err != nil {
			return err
		}
		w.Write(objectReceipt{ContentAddress: res.Sum.BLAKE3.String(), SHA256: res.Sum.SHA256.String(), Size: uint64(res.Sum.Size), BackendID: res.Receipt.BackendID, Key: res.Receipt.Key})
		return w.Flush()
	}

	pkg, err := ref.ParseVersion(*pkgRef)
	if err != nil {
		return cli.Usagef("--package: %v", err)
	}
	if cli.IsTerminal(stdio.In) {
		fmt.Fprintln(stdio.Err, "as-put: reading file records from standard input… (try: find DIR -type f | as-digest | as-put --package NAME@VERSION)")
	}
	// Read every record before touching the store: bad input changes nothing.
	recs, err := records.ReadFiles(stdio.In)
	if err != nil {
		return err
	}
	if len(recs) == 0 {
		return errors.New("no file records on standard input; nothing stored (try: find DIR -type f | as-digest | as-put --package NAME@VERSION)")
	}
	st, err := flags.Open(ctx, "as-put", store.Write)
	if err != nil {
		return err
	}
	defer st.Close()
	prog := cli.NewProgress(stdio.Err, "as-put", len(recs))
	defer prog.Done()
	res, err := st.Registry.Put(ctx, pkg, recs, registry.PutOptions{
		Root:     *root,
		Create:   registry.CreateOptions{RetentionClass: *retention, Labels: labels},
		Replace:  *replace,
		Workers:  *jobs,
		Finalize: *finalize,
		Declared: registry.FinalizeOptions{CreatedAt: created, Facts: facts},
		OnBatch: func(done []registry.Ingested) error {
			for _, d := range done {
				prog.Add(int64(d.File.Size))
				if !*finalize {
					if err := w.Write(fileReceipt{Path: d.File.Path, ContentAddress: d.File.ContentAddress.String(), BackendID: d.Receipt.BackendID, Key: d.Receipt.Key, Stored: !d.Unchanged}); err != nil {
						return err
					}
				}
			}
			return nil
		},
	})
	if err != nil {
		return err
	}
	if !*finalize {
		return w.Flush()
	}
	return cli.WriteManifest(stdio.Out, res.Manifest, format)
}

type fileReceipt struct {
	Path           string `cbor:"path" json:"path"`
	ContentAddress string `cbor:"content_address" json:"content_address"`
	BackendID      string `cbor:"backend_id" json:"backend_id"`
	Key            string `cbor:"key" json:"key"`
	Stored         bool   `cbor:"stored" json:"stored"` // false: already there, nothing stored
}

type objectReceipt struct {
	ContentAddress string `cbor:"content_address" json:"content_address"`
	SHA256         string `cbor:"sha256" json:"sha256"`
	Size           uint64 `cbor:"size" json:"size"`
	BackendID      string `cbor:"backend_id" json:"backend_id"`
	Key            string `cbor:"key" json:"key"`
}
