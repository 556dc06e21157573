// Command as-get writes stored bytes to standard output (or a file): an
// object by content address, a file of a package, or a package's manifest.
// Whole objects are re-hashed while they are written; bytes that do not
// match their address are an error.
package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"unicode/utf8"

	"github.com/artifactstore/artifact-store/internal/cli"
	"github.com/artifactstore/artifact-store/pkg/identity"
	"github.com/artifactstore/artifact-store/pkg/records"
	"github.com/artifactstore/artifact-store/pkg/ref"
	"github.com/artifactstore/artifact-store/pkg/registry"
	"github.com/artifactstore/artifact-store/pkg/store"
)

const usage = `Usage: as-get [flags] ADDRESS
       as-get [flags] --package REF PATH
       as-get [flags] --package REF --into DIR [--overwrite]
       as-get [flags] --manifest REF [--json]

Writes an object's bytes (by its blake3 content address, or by its sha256
digest as OCI tools name it), a package file's bytes, or a
finalised package's manifest (canonical CBOR, or JCS JSON with --json) to
standard output, or to -o FILE: a new or regular file is written to a
temporary file and renamed into place only once complete and verified,
keeping an existing file's mode and owner (a file with several hard links
is rewritten in place); a FIFO or character device is written through; a
symbolic link is followed; anything else is refused, never replaced.
--offset and --length select a byte
range. --into DIR writes every file of the package under DIR at its path,
each verified while written and published (mode 0644) only when whole;
existing files are refused (exit 5, nothing written) unless --overwrite,
and nothing is written outside DIR. A whole object is re-hashed as it is written: bytes that no longer
match their address are reported and the exit status is 4. Binary is never
written to a terminal unless --force is given.

Examples:
    as-get blake3:af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262 > empty
    as-get --package app@1.2.3 bin/app -o ./app
    as-get --package app@1.2.3 lib/libapp.so --offset 0 --length 512 | xxd | head
    as-get --package app:stable bin/app -o ./app
    as-get --package app@1.2.3 --into ./dist
    as-get --manifest app@1.2.3 --json | jq .files
`

func main() { cli.Main("as-get", run) }

func run(ctx context.Context, args []string, stdio cli.Stdio) error {
	fs := cli.FlagSet("as-get", usage, stdio.Out)
	flags := cli.RegisterStoreFlags(fs)
	pkgRef := fs.String("package", "", "read PATH from package `REF` (NAME@VERSION, NAME:TAG or NAME@blake3:…)")
	manifestRef := fs.String("manifest", "", "write the manifest of package `REF`")
	asJSON := fs.Bool("json", false, "with --manifest: its RFC 8785 JSON (JCS) instead of CBOR")
	fs.BoolVar(asJSON, "jcs", false, "the same as --json (kept for scripts)")
	offset := fs.Int64("offset", 0, "first byte to write")
	length := fs.Int64("length", -1, "number of bytes to write (-1: to the end)")
	out := fs.String("o", "", "write to FILE instead of standard output")
	force := fs.Bool("force", false, "write binary to a terminal anyway")
	into := fs.String("into", "", "with --package: write every file of the package under `DIR`")
	overwrite := fs.Bool("overwrite", false, "with --into: replace existing files")
	jobs := fs.Int("jobs", 4, "with --into: files written at once")
	version := fs.Bool("version", false, "print the version and exit")
	pos, err := cli.Parse(fs, args)
	if err != nil {
		return err
	}
	if *version {
		fmt.Fprintln(stdio.Out, "as-get", cli.Version())
		return nil
	}
	switch {
	case *into != "" && (*pkgRef == "" || len(pos) > 0 || *out != "" || *offset != 0 || *length != -1):
		return cli.Usagef("--into DIR takes --package REF and no PATH, -o, --offset or --length")
	case *overwrite && *into == "":
		return cli.Usagef("--overwrite applies to --into")
	case *jobs < 1:
		return cli.Usagef("--jobs must be at least 1, got %d", *jobs)
	case *manifestRef != "" && (*pkgRef != "" || len(pos) > 0):
		return cli.Usagef("--manifest takes no --package or arguments")
	case *manifestRef != "" && (*offset != 0 || *length != -1):
		return cli.Usagef("--offset/--length apply to objects and files, not manifests")
	case *asJSON && *manifestRef == "":
		return cli.Usagef("--json applies to --manifest")
	case *manifestRef == "" && *into == "" && len(pos) != 1:
		return cli.Usagef("want one ADDRESS, or --package REF PATH, or --manifest REF")
	case *offset < 0 || *length < -1:
		return cli.Usagef("--offset must be ≥ 0 and --length ≥ -1")
	}
	var addr identity.Digest
	var pkg ref.Ref
	switch {
	case *manifestRef != "":
		if pkg, err = ref.Parse(*manifestRef); err != nil {
			return cli.Usagef("--manifest: %v", err)
		}
	case *pkgRef != "":
		if pkg, err = ref.Parse(*pkgRef); err != nil {
			return cli.Usagef("--package: %v", err)
		}
	default:
		if addr, err = identity.Parse(pos[0]); err != nil {
			return cli.Usagef("%v", err)
		}
	}
	st, err := flags.Open(ctx, "as-get", store.Read)
	if err != nil {
		return err
	}
	defer st.Close()
	reg := st.Registry
	if *into != "" {
		res, err := reg.FetchPackage(ctx, pkg, *into, registry.FetchOptions{Overwrite: *overwrite, Workers: *jobs})
		if err != nil {
			return err
		}
		fmt.Fprintf(stdio.Err, "as-get: %s: %d files, %d bytes into %s\n", res.Ref, res.Files, res.Bytes, *into)
		return nil
	}

	var src io.Reader
	switch {
	case *manifestRef != "":
		f := records.CBOR
		if *asJSON {
			f = records.JSON
		}
		b, err := reg.GetManifestBytes(ctx, pkg, f)
		if err != nil {
			return err
		}
		if *asJSON && *out == "" && cli.IsTerminal(stdio.Out) {
			b = append(b, '\n') // a terminal gets a line; a pipe gets the exact JCS bytes
		}
		src = bytes.NewReader(b)
	case *pkgRef != "":
		rc, _, err := reg.GetFile(ctx, pkg, pos[0], *offset, *length)
		if err != nil {
			return err
		}
		defer rc.Close()
		src = rc
	default:
		rc, _, err := reg.OpenObject(ctx, addr, *offset, *length)
		if err != nil {
			return err
		}
		defer rc.Close()
		src = rc
	}
	return deliver(stdio, *out, *force, src)
}

// deliver copies src (which verifies itself: see registry.OpenObject) to
// standard output or to file out. A file is published only after the whole
// copy succeeded.
func deliver(stdio cli.Stdio, out string, force bool, src io.Reader) error {
	if out == "" {
		br := bufio.NewReaderSize(src, 64<<10)
		if cli.IsTerminal(stdio.Out) && !force {
			head, _ := br.Peek(8 << 10)
			if looksBinary(head) {
				return cli.Usagef("refusing to write binary to the terminal; redirect it, use -o FILE, or --force")
			}
		}
		_, err := io.Copy(stdio.Out, br)
		return err
	}
	// cli.OpenOutput never replaces a FIFO, device or symlink, and keeps
	// an existing file's mode, owner and hard links.
	o, err := cli.OpenOutput(out)
	if err != nil {
		return err
	}
	defer o.Abort() // no-op once committed
	if _, err := io.Copy(o, src); err != nil {
		return err
	}
	return o.Commit()
}

func looksBinary(b []byte) bool {
	if bytes.IndexByte(b, 0) >= 0 {
		return true
	}
	// Ignore a multi-byte character cut off at the end of the peek.
	for i := 0; i < utf8.UTFMax && len(b) > 0 && !utf8.Valid(b); i++ {
		b = b[:len(b)-1]
	}
	return !utf8.Valid(b)
}
