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
	"github.com/artifactstore/artifact-store/pkg/ref"
	"io"
	"unicode/utf8"

	"github.com/artifactstore/artifact-store/internal/cli"
	"github.com/artifactstore/artifact-store/internal/store"
	"github.com/artifactstore/artifact-store/pkg/identity"
	"github.com/artifactstore/artifact-store/pkg/registry"
)

const usage = `Usage: as-get [flags] ADDRESS
       as-get [flags] --package NAME@VERSION PATH
       as-get [flags] --manifest NAME@VERSION [--jcs]

Writes an object's bytes (by its blake3 content address, or by its sha256
digest as OCI tools name it), a package file's bytes, or a
finalised package's manifest (canonical CBOR, or JCS JSON with --jcs) to
standard output, or to -o FILE: a new or regular file is written to a
temporary file and renamed into place only once complete and verified,
keeping an existing file's mode and owner (a file with several hard links
is rewritten in place); a FIFO or character device is written through; a
symbolic link is followed; anything else is refused, never replaced. --offset and --length select a byte
range. A whole object is re-hashed as it is written: bytes that no longer
match their address are reported and the exit status is 1. Binary is never
written to a terminal unless --force is given.

Examples:
    as-get blake3:af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262 > empty
    as-get --package app@1.2.3 bin/app -o ./app
    as-get --package app@1.2.3 lib/libapp.so --offset 0 --length 512 | xxd | head
    as-get --manifest app@1.2.3 --jcs | jq .files
`

func main() { cli.Main("as-get", run) }

func run(ctx context.Context, args []string, stdio cli.Stdio) error {
	fs := cli.FlagSet("as-get", usage, stdio.Out)
	flags := store.RegisterFlags(fs)
	pkgRef := fs.String("package", "", "read PATH from package NAME@VERSION")
	manifestRef := fs.String("manifest", "", "write the manifest of package NAME@VERSION")
	jcs := fs.Bool("jcs", false, "with --manifest: JCS JSON instead of CBOR")
	offset := fs.Int64("offset", 0, "first byte to write")
	length := fs.Int64("length", -1, "number of bytes to write (-1: to the end)")
	out := fs.String("o", "", "write to FILE instead of standard output")
	force := fs.Bool("force", false, "write binary to a terminal anyway")
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
	case *manifestRef != "" && (*pkgRef != "" || len(pos) > 0):
		return cli.Usagef("--manifest takes no --package or arguments")
	case *manifestRef != "" && (*offset != 0 || *length != -1):
		return cli.Usagef("--offset/--length apply to objects and files, not manifests")
	case *jcs && *manifestRef == "":
		return cli.Usagef("--jcs applies to --manifest")
	case *manifestRef == "" && len(pos) != 1:
		return cli.Usagef("want one ADDRESS, or --package NAME@VERSION PATH, or --manifest NAME@VERSION")
	case *offset < 0 || *length < -1:
		return cli.Usagef("--offset must be ≥ 0 and --length ≥ -1")
	}
	var addr identity.Digest
	var pref ref.Ref
	switch {
	case *manifestRef != "":
		if pref, err = ref.Parse(*manifestRef); err != nil {
			return cli.Usagef("--manifest: %v", err)
		}
	case *pkgRef != "":
		if pref, err = ref.Parse(*pkgRef); err != nil {
			return cli.Usagef("--package: %v", err)
		}
	default:
		if addr, err = identity.Parse(pos[0]); err != nil {
			return cli.Usagef("%v", err)
		}
	}
	opts, err := flags.Options("as-get")
	if err != nil {
		return err
	}
	st, err := store.Open(ctx, opts)
	if err != nil {
		return err
	}
	defer st.Close()
	reg := st.Registry

	var src io.Reader
	verify := identity.Digest{} // what a whole read must hash to
	switch {
	case *manifestRef != "":
		f := registry.CBOR
		if *jcs {
			f = registry.JCS
		}
		b, err := reg.GetManifestBytes(ctx, pref, f)
		if err != nil {
			return err
		}
		src = bytes.NewReader(b)
	case *pkgRef != "":
		rc, rec, err := reg.GetFile(ctx, pref, pos[0], *offset, *length)
		if err != nil {
			return err
		}
		defer rc.Close()
		src, addr = rc, rec.ContentAddress
	default:
		if addr, err = reg.Resolve(ctx, addr); err != nil {
			return err
		}
		rc, err := reg.DataPlane().ServeObject(ctx, addr, *offset, *length)
		if err != nil {
			return err
		}
		defer rc.Close()
		src = rc
	}
	if !addr.IsZero() && *offset == 0 && *length == -1 {
		verify = addr
	}
	return deliver(stdio, *out, *force, src, verify)
}

// deliver copies src to standard output or to file out, hashing it when
// verify is set. A file is published only after the copy and the check
// succeed.
func deliver(stdio cli.Stdio, out string, force bool, src io.Reader, verify identity.Digest) error {
	h := identity.NewHasher()
	if !verify.IsZero() {
		src = io.TeeReader(src, h)
	}
	check := func() error {
		if verify.IsZero() {
			return nil
		}
		got := h.Sum().BLAKE3
		if verify.Algorithm() == identity.SHA256 {
			got = h.Sum().SHA256
		}
		if got != verify {
			return fmt.Errorf("stored object %s is corrupt: its bytes hash to %s", verify, got)
		}
		return nil
	}
	if out == "" {
		br := bufio.NewReaderSize(src, 64<<10)
		if cli.IsTerminal(stdio.Out) && !force {
			head, _ := br.Peek(8 << 10)
			if looksBinary(head) {
				return cli.Usagef("refusing to write binary to the terminal; redirect it, use -o FILE, or --force")
			}
		}
		if _, err := io.Copy(stdio.Out, br); err != nil {
			return err
		}
		return check()
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
	if err := check(); err != nil {
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
