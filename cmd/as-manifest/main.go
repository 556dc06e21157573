// Command as-manifest builds a package manifest from file records and
// converts, digests, summarises and verifies manifests (DESIGN.md §4-5,
// ADR 0003).
package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/artifactstore/artifact-store/internal/cli"
	"github.com/artifactstore/artifact-store/pkg/manifest"
	"github.com/artifactstore/artifact-store/pkg/records"
	"github.com/artifactstore/artifact-store/pkg/ref"
)

const usage = `Usage: as-manifest [build flags]          (build: file records -> manifest)
       as-manifest jcs    [MANIFEST]       canonical CBOR -> RFC 8785 JSON
       as-manifest cbor   [MANIFEST.json]  RFC 8785 JSON -> canonical CBOR
       as-manifest digest [MANIFEST]       print the manifest's content address
       as-manifest show   [MANIFEST]       package, file count, total size, digest
       as-manifest verify --root DIR [MANIFEST]
                                           re-digest DIR's files against the manifest

Build (the default action) reads file records, as as-digest writes them, from
standard input and writes the package's canonical CBOR manifest (Manifest v1)
to standard output. Paths are made relative to --root, or else to the deepest
directory containing every file (for 'find dist -type f' that is dist; give
--root in scripts to be exact). The manifest holds only what is declared: no
clock time, host name or randomness, so the same files and flags give the same
digest anywhere. created_at comes only from --created-at or SOURCE_DATE_EPOCH.

Manifests are read from MANIFEST or standard input ("-"), at most 256 MiB;
digest, show and verify also accept the JSON form. Binary output is refused
on a terminal unless --force is given. On bad input nothing is written to
standard output and the exit status is 1 (2 for a usage error); verify
exits 4 on any difference. Exit codes are listed in the README.

Examples:
    find dist -type f | as-digest | as-manifest | as-manifest jcs
    find dist -type f | as-digest | as-manifest --root dist --package app@1.4.2 \
        --label team=core --retention standard --fact git_commit=$GIT_COMMIT > app.cbor
    SOURCE_DATE_EPOCH=$(git log -1 --format=%ct) as-manifest --root dist < records.cbor > m.cbor
    as-manifest digest m.cbor
    as-manifest show m.cbor
    as-manifest jcs m.cbor | jq .files
    as-manifest jcs m.cbor | as-manifest cbor | cmp - m.cbor
    as-manifest verify --root dist m.cbor
`

func main() { cli.Main("as-manifest", run) }

func run(ctx context.Context, args []string, stdio cli.Stdio) error {
	if len(args) > 0 {
		switch args[0] {
		case "build":
			return build(args[1:], stdio)
		case "jcs", "cbor", "digest", "show":
			return convert(args[0], args[1:], stdio)
		case "verify":
			return verify(ctx, args[1:], stdio)
		}
	}
	return build(args, stdio)
}

func build(args []string, stdio cli.Stdio) error {
	fs := cli.FlagSet("as-manifest", usage, stdio.Out)
	root := fs.String("root", "", "make paths relative to `DIR` (default: the deepest directory holding every file)")
	pkg := fs.String("package", "", "package `NAME@VERSION`")
	labels := cli.KeyValues{}
	fs.Var(labels, "label", "package label `KEY=VALUE` (repeatable)")
	facts := cli.KeyValues{}
	fs.Var(facts, "fact", "provenance fact `KEY=VALUE`, e.g. git_commit=... (repeatable)")
	retention := fs.String("retention", "", "retention `CLASS`")
	hold := fs.Bool("hold", false, "declare a retention hold")
	createdAt := fs.String("created-at", "", "declared creation `TIME`, RFC 3339 (default: SOURCE_DATE_EPOCH, else none)")
	producer := fs.String("producer", "as-manifest", "producer `TOOL` recorded in provenance (its name only: a new build gives the same digest)")
	force := fs.Bool("force", false, "write binary CBOR even to a terminal")
	version := fs.Bool("version", false, "print the version and exit")
	pos, err := cli.Parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return cli.Usagef("build reads file records from standard input; unexpected argument %q (subcommands: jcs, cbor, digest, show, verify)", pos[0])
	}
	if *version {
		fmt.Fprintln(stdio.Out, "as-manifest", cli.Version())
		return nil
	}
	b := manifest.Builder{Root: *root}
	if *pkg != "" {
		r, err := ref.ParseVersion(*pkg)
		if err != nil {
			return cli.Usagef("--package: %v", err)
		}
		b.Package.Name, b.Package.Version = r.Name, r.Version
	}
	if b.Package.CreatedAt, err = manifest.DeclaredTime(*createdAt, os.Getenv); err != nil {
		return cli.Usagef("%v", err)
	}
	b.Package.Labels = labels.Map()
	b.Retention = manifest.Retention{Class: *retention, Hold: *hold}
	b.Provenance = manifest.Provenance{Producer: manifest.Producer{Tool: *producer}, Facts: facts.Map()}
	// Check the declarations before reading anything.
	if err := (manifest.Manifest{Package: b.Package, Retention: b.Retention, Provenance: b.Provenance}).Validate(); err != nil {
		return cli.Usagef("%v", err)
	}
	if cli.IsTerminal(stdio.Out) && !*force {
		return refuseTerminal()
	}
	recs, err := records.ReadFiles(stdio.In)
	if err != nil {
		return err
	}
	for _, f := range recs {
		if err := b.Add(f); err != nil {
			return err
		}
	}
	if b.Len() == 0 {
		return errors.New("no file records on standard input (try: find DIR -type f | as-digest | as-manifest)")
	}
	m, err := b.Manifest()
	if err != nil {
		return err
	}
	out, err := manifest.Encode(m)
	if err != nil {
		return err
	}
	_, err = stdio.Out.Write(out)
	return err
}

func refuseTerminal() error {
	return errors.New("refusing to write binary CBOR to the terminal; did you mean '| as-manifest jcs'? (--force writes it anyway)")
}

// readManifestBytes reads the manifest named by the positional arguments
// (none or "-": standard input).
func readManifestBytes(pos []string, stdio cli.Stdio) ([]byte, error) {
	if len(pos) > 1 {
		return nil, cli.Usagef("at most one MANIFEST argument, got %d", len(pos))
	}
	if len(pos) == 0 || pos[0] == "-" {
		return manifest.ReadBytes(stdio.In, "standard input")
	}
	f, err := os.Open(pos[0])
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return manifest.ReadBytes(f, pos[0])
}

// readManifest reads a manifest in CBOR, or, if allowJSON, in either form.
func readManifest(pos []string, stdio cli.Stdio, allowJSON bool) (manifest.Manifest, []byte, error) {
	b, err := readManifestBytes(pos, stdio)
	if err != nil {
		return manifest.Manifest{}, nil, err
	}
	return manifest.Parse(b, allowJSON)
}

func convert(cmd string, args []string, stdio cli.Stdio) error {
	fs := cli.FlagSet("as-manifest "+cmd, usage, stdio.Out)
	force := fs.Bool("force", false, "write binary CBOR even to a terminal (cbor)")
	pos, err := cli.Parse(fs, args)
	if err != nil {
		return err
	}
	term := cli.IsTerminal(stdio.Out)
	var out []byte
	switch cmd {
	case "jcs":
		m, _, err := readManifest(pos, stdio, false)
		if err != nil {
			return err
		}
		if out, err = manifest.JCS(m); err != nil {
			return err
		}
		if term {
			out = append(out, '\n')
		}
	case "cbor":
		if term && !*force {
			return refuseTerminal()
		}
		b, err := readManifestBytes(pos, stdio)
		if err != nil {
			return err
		}
		m, err := manifest.ParseJCS(b)
		if err != nil {
			return err
		}
		if out, err = manifest.Encode(m); err != nil {
			return err
		}
	case "digest":
		_, c, err := readManifest(pos, stdio, true)
		if err != nil {
			return err
		}
		out = []byte(manifest.DigestOf(c).String() + "\n")
	case "show":
		m, c, err := readManifest(pos, stdio, true)
		if err != nil {
			return err
		}
		out = manifest.Summary(m, c)
	}
	_, err = stdio.Out.Write(out)
	return err
}

func verify(ctx context.Context, args []string, stdio cli.Stdio) error {
	flags := cli.FlagSet("as-manifest verify", usage, stdio.Out)
	root := flags.String("root", "", "the package's root `DIR` (required)")
	jobs := flags.Int("jobs", 4, "files digested at once")
	pos, err := cli.Parse(flags, args)
	if err != nil {
		return err
	}
	if *root == "" {
		return cli.Usagef("verify needs --root DIR")
	}
	if *jobs < 1 {
		return cli.Usagef("--jobs must be at least 1, got %d", *jobs)
	}
	m, _, err := readManifest(pos, stdio, true)
	if err != nil {
		return err
	}
	diffs, err := manifest.Verify(ctx, m, *root, *jobs)
	if err != nil {
		return err
	}
	var report bytes.Buffer
	for _, d := range diffs {
		fmt.Fprintln(&report, d)
	}
	if _, err := stdio.Out.Write(report.Bytes()); err != nil {
		return err
	}
	if len(diffs) > 0 {
		fmt.Fprintf(stdio.Err, "as-manifest: %d difference(s) between %s and the manifest of %d file(s)\n", len(diffs), *root, len(m.Files))
		return fmt.Errorf("%w: %w", cli.ErrReported, manifest.ErrMismatch)
	}
	fmt.Fprintf(stdio.Out, "ok  %d files match\n", len(m.Files))
	return nil
}
