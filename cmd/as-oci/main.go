// Command as-oci moves packages between the store and OCI image layouts:
// export writes a finalised package as an OCI artifact (a directory or a
// tar stream), import stores an artifact from a layout as a new package
// (docs/adr/0006-oci-compatibility.md).
package main

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strings"

	"github.com/artifactstore/artifact-store/internal/cli"
	"github.com/artifactstore/artifact-store/pkg/manifest"
	"github.com/artifactstore/artifact-store/pkg/oci"
	"github.com/artifactstore/artifact-store/pkg/ref"
	"github.com/artifactstore/artifact-store/pkg/store"
)

const usage = `Usage: as-oci export [--tar] [--ref-name NAME] REF DIR|-
       as-oci import [--json] --package NAME@VERSION LAYOUT[:REF]

export writes the finalised package REF (NAME@VERSION, NAME:TAG or
NAME@blake3:…) as an OCI image layout: oci-layout, index.json naming the
manifest by its version (or the tag given) in
org.opencontainers.image.ref.name, and blobs/sha256/…. The manifest is
RFC 8785 JSON with no time in it: the same package always has the same OCI
manifest digest. Its config blob is the package's canonical CBOR manifest;
each file is one layer titled with its path (the ORAS convention, so
'oras pull --oci-layout DIR:REF' writes the files where they belong). Into a
directory that already holds a layout the artifact is added. With --tar, or
DIR "-", the layout is written to standard output as a tar stream instead.
Every byte comes through the data plane and is verified while written.

import stores the artifact that REF names in a layout (a directory, or a tar
file; "-" reads a tar from standard input) as the finalised package
NAME@VERSION: every layer must be a file titled with a valid package path
(no "..", no absolute paths); an image, or a layer without a title, is
refused. Every blob is verified against its descriptor while stored; on any
failure nothing is recorded. It prints the new package's manifest digest
(--json: a summary record).

Exit status: 0 done, 1 a malformed or unsupported layout or another
failure, 2 usage, 3 package or layout entry not found, 4 bytes that do not
match their digest, 5 the version exists, 6 store unavailable, 130
interrupted.

Examples:
    as-oci export app@1.2.3 ./app-layout
    as-oci export app:stable - | gzip > app.oci.tar.gz
    oras pull --oci-layout ./app-layout:1.2.3 -o out/
    oras push --oci-layout ./pushed:1.0 README.md bin/app
    as-oci import --package app@1.0 ./pushed:1.0
    as-oci export app@1.2.3 - | as-oci import --package app@1.2.3-copy -
`

func main() { cli.Main("as-oci", run) }

func run(ctx context.Context, args []string, stdio cli.Stdio) error {
	if len(args) > 0 {
		switch args[0] {
		case "export":
			return export(ctx, args[1:], stdio)
		case "import":
			return importLayout(ctx, args[1:], stdio)
		case "--version", "-version":
			fmt.Fprintln(stdio.Out, "as-oci", cli.Version())
			return nil
		case "-h", "--help", "-help", "help":
			fmt.Fprint(stdio.Out, usage)
			return nil
		}
		return cli.Usagef("unknown command %q (export, import)", args[0])
	}
	return cli.Usagef("no command given (export, import)")
}

func export(ctx context.Context, args []string, stdio cli.Stdio) error {
	fs := cli.FlagSet("as-oci export", usage, stdio.Out)
	flags := cli.RegisterStoreFlags(fs)
	asTar := fs.Bool("tar", false, "write the layout as a tar stream on standard output")
	refName := fs.String("ref-name", "", "org.opencontainers.image.ref.name of the manifest (default: the tag given, else the version)")
	jobs := fs.Int("jobs", runtime.GOMAXPROCS(0), "blobs written at once (into a directory)")
	pos, err := cli.Parse(fs, args)
	if err != nil {
		return err
	}
	if *asTar && len(pos) == 1 {
		pos = append(pos, "-")
	}
	if len(pos) != 2 {
		return cli.Usagef("export wants REF and DIR (or - / --tar for a tar stream)")
	}
	if *jobs < 1 {
		return cli.Usagef("--jobs must be at least 1, got %d", *jobs)
	}
	rf, err := ref.Parse(pos[0])
	if err != nil {
		return cli.Usagef("%v", err)
	}
	toTar := pos[1] == "-"
	if toTar && cli.IsTerminal(stdio.Out) {
		return cli.Usagef("refusing to write a tar stream to the terminal; redirect it or give DIR")
	}
	name := *refName
	if name == "" && rf.Tag != "" {
		name = rf.Tag
	}
	st, err := flags.Open(ctx, "as-oci", store.Read)
	if err != nil {
		return err
	}
	defer st.Close()
	version, err := st.Registry.ResolveRef(ctx, rf)
	if err != nil {
		return err
	}
	var w oci.LayoutWriter
	workers := *jobs
	if toTar {
		w, workers = oci.NewTarWriter(stdio.Out), 1
	} else if w, err = oci.NewDirWriter(pos[1]); err != nil {
		return err
	}
	a, err := oci.Export(ctx, st.Registry, version, w, oci.ExportOptions{RefName: name, Workers: workers})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdio.Err, "as-oci: exported %s as %s (%d files)\n", version, a.Descriptor.Digest, len(a.Manifest.Layers))
	return nil
}

// importRecord is what import --json prints.
type importRecord struct {
	Package        string `cbor:"package" json:"package"`
	ManifestDigest string `cbor:"manifest_digest" json:"manifest_digest"`
	OCIManifest    string `cbor:"oci_manifest" json:"oci_manifest"`
	Files          int    `cbor:"files" json:"files"`
}

func importLayout(ctx context.Context, args []string, stdio cli.Stdio) error {
	fs := cli.FlagSet("as-oci import", usage, stdio.Out)
	flags := cli.RegisterStoreFlags(fs)
	pkgRef := fs.String("package", "", "store the artifact as package `NAME@VERSION` (required)")
	asJSON := fs.Bool("json", false, "print a summary record instead of the manifest digest")
	jobs := fs.Int("jobs", 4, "files stored at once")
	pos, err := cli.Parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return cli.Usagef("import wants one LAYOUT[:REF] (a directory, a tar file, or - for a tar on standard input)")
	}
	if *pkgRef == "" {
		return cli.Usagef("import needs --package NAME@VERSION")
	}
	if *jobs < 1 {
		return cli.Usagef("--jobs must be at least 1, got %d", *jobs)
	}
	pkg, err := ref.ParseVersion(*pkgRef)
	if err != nil {
		return cli.Usagef("--package: %v", err)
	}
	l, name, closeFn, err := openLayout(pos[0], stdio)
	if err != nil {
		return err
	}
	defer closeFn()
	st, err := flags.Open(ctx, "as-oci", store.Write)
	if err != nil {
		return err
	}
	defer st.Close()
	p, mb, err := oci.Import(ctx, st.Registry, l, pkg, oci.ImportOptions{RefName: name, Workers: *jobs})
	if err != nil {
		return err
	}
	rec := importRecord{Package: pkg.String(), ManifestDigest: manifest.DigestOf(mb).String(),
		OCIManifest: p.Descriptor.Digest.String(), Files: len(p.Files)}
	if !*asJSON {
		fmt.Fprintln(stdio.Out, rec.ManifestDigest)
		fmt.Fprintf(stdio.Err, "as-oci: imported %s (%d files) as %s\n", rec.OCIManifest, rec.Files, rec.Package)
		return nil
	}
	return cli.WriteRecords(stdio.Out, true, rec)
}

// openLayout opens LAYOUT[:REF]: a directory, a tar file, or "-" (a tar on
// standard input, spooled to a temporary file since a tar is read at
// random). A ":REF" suffix is split off only when what precedes it exists
// (a directory name may hold a colon).
func openLayout(arg string, stdio cli.Stdio) (*oci.Layout, string, func(), error) {
	path, name := arg, ""
	switch i := strings.LastIndexByte(arg, ':'); {
	case arg == "-":
	case strings.HasPrefix(arg, "-:"):
		path, name = "-", arg[2:]
	case i == 0:
		return nil, "", nil, cli.Usagef("LAYOUT %q has no path before the colon", arg)
	case i > 0:
		if _, err := os.Stat(arg); err != nil {
			path, name = arg[:i], arg[i+1:]
		}
	}
	noop := func() {}
	if path == "-" {
		f, err := os.CreateTemp("", "as-oci-*.tar")
		if err != nil {
			return nil, "", nil, err
		}
		cleanup := func() { f.Close(); os.Remove(f.Name()) }
		if _, err := f.ReadFrom(stdio.In); err != nil {
			cleanup()
			return nil, "", nil, fmt.Errorf("reading the tar on standard input: %w", err)
		}
		l, err := tarLayout(f)
		if err != nil {
			cleanup()
			return nil, "", nil, err
		}
		return l, name, cleanup, nil
	}
	fi, err := os.Stat(path)
	if err != nil {
		return nil, "", nil, fmt.Errorf("%w: layout %s: %w", oci.ErrNotFound, path, err)
	}
	if fi.IsDir() {
		l, err := oci.OpenLayout(os.DirFS(path))
		return l, name, noop, err
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, "", nil, err
	}
	l, err := tarLayout(f)
	if err != nil {
		f.Close()
		return nil, "", nil, err
	}
	return l, name, func() { f.Close() }, nil
}

func tarLayout(f *os.File) (*oci.Layout, error) {
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	fsys, err := oci.TarFS(f, fi.Size())
	if err != nil {
		return nil, err
	}
	return oci.OpenLayout(fsys)
}
