// Command as-digest prints the dual digest (BLAKE3 and SHA-256) of files as
// file records: a canonical CBOR sequence on a pipe, JSON lines on a
// terminal or with --json.
package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"iter"
	"runtime"
	"strconv"

	"github.com/artifactstore/artifact-store/internal/cli"
	"github.com/artifactstore/artifact-store/pkg/identity"
	"github.com/artifactstore/artifact-store/pkg/records"
	"github.com/artifactstore/artifact-store/pkg/scan"
)

const usage = `Usage: as-digest [-0] [--json] [--jobs N] [PATH...]

Digest files with BLAKE3 and SHA-256 in one read of each file and write one
file record per regular file:

    {"path": "...", "size": N, "content_address": "blake3:...", "sha256": "sha256:..."}

as a canonical CBOR sequence, or as JSON lines when standard output is a
terminal or --json is given. Paths come from the arguments, or else from
standard input, one per line (-0: NUL-separated, as find -print0 writes).
The path "-" digests standard input's bytes. A directory named as an
argument is walked: its regular files, in lexical order, symbolic links not
followed (as 'find DIR -type f | sort'). Directories read from standard
input are skipped, so 'find DIR | as-digest' works. A missing or unreadable path is reported on
standard error and the rest are still digested; the exit status is then 1.
Records come out in input order; files are digested on all cores.

Examples:
    find dist -type f | as-digest | as-put --package app@1.2.3 --finalize
    find dist -print0 | as-digest -0 --json
    as-digest --json README.md go.mod
    as-digest dist | as-put --package app@1.2.3 --root dist --finalize
    curl -s https://example.com/x.tar | as-digest -
`

func main() { cli.Main("as-digest", run) }

func run(ctx context.Context, args []string, stdio cli.Stdio) error {
	fs := cli.FlagSet("as-digest", usage, stdio.Out)
	nul := fs.Bool("0", false, "read NUL-separated paths from standard input")
	asJSON := fs.Bool("json", false, "write JSON lines instead of CBOR")
	jobs := fs.Int("jobs", runtime.GOMAXPROCS(0), "files digested at once")
	version := fs.Bool("version", false, "print the version and exit")
	paths, err := cli.Parse(fs, args)
	if err != nil {
		return err
	}
	if *version {
		fmt.Fprintln(stdio.Out, "as-digest", cli.Version())
		return nil
	}
	if *jobs < 1 {
		return cli.Usagef("--jobs must be at least 1, got %d", *jobs)
	}
	if *nul && len(paths) > 0 {
		return cli.Usagef("-0 reads paths from standard input; do not also give PATH arguments")
	}
	stdinBytes := false
	for _, p := range paths {
		if p == "-" {
			if len(paths) > 1 {
				return cli.Usagef(`"-" (standard input's bytes) cannot be combined with other paths`)
			}
			stdinBytes = true
		}
	}

	format := records.CBOR
	if *asJSON || cli.IsTerminal(stdio.Out) {
		format = records.JSON
	}
	w := records.NewWriter(stdio.Out, format)

	if stdinBytes {
		sum, err := identity.SumReader(stdio.In)
		if err != nil {
			return fmt.Errorf("reading standard input: %w", err)
		}
		if err := w.Write(records.FileOf("-", sum)); err != nil {
			return err
		}
		return w.Flush()
	}

	var source iter.Seq[string]
	var readErr error
	failed := 0
	if len(paths) > 0 {
		source = scan.Expand(paths, func(err error) {
			failed++
			fmt.Fprintf(stdio.Err, "as-digest: %s\n", quotedPathErr(err))
		})
	} else {
		sep := byte('\n')
		if *nul {
			sep = 0
		}
		source = splitPaths(stdio.In, sep, &readErr)
	}

	err = scan.Files(ctx, source, *jobs, func(r scan.Result) error {
		switch {
		case r.Dir:
			return nil
		case r.Err != nil:
			failed++
			fmt.Fprintf(stdio.Err, "as-digest: %s\n", quotedPathErr(r.Err))
			return nil
		}
		return w.Write(records.FileOf(r.Path, r.Sum))
	})
	if ferr := w.Flush(); err == nil {
		err = ferr
	}
	switch {
	case err != nil:
		return err
	case readErr != nil:
		return fmt.Errorf("reading paths from standard input: %w", readErr)
	case failed > 0:
		fmt.Fprintf(stdio.Err, "as-digest: %d path(s) could not be digested\n", failed)
		return cli.ErrReported
	}
	return nil
}

// splitPaths yields the sep-terminated paths of r. A trailing '\r' is kept
// (it is part of the name); empty lines are skipped. A read error is stored
// in *errp and ends the sequence.
func splitPaths(r io.Reader, sep byte, errp *error) iter.Seq[string] {
	return func(yield func(string) bool) {
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		sc.Split(func(data []byte, atEOF bool) (int, []byte, error) {
			if i := bytes.IndexByte(data, sep); i >= 0 {
				return i + 1, data[:i], nil
			}
			if atEOF && len(data) > 0 {
				return len(data), data, nil
			}
			return 0, nil, nil
		})
		for sc.Scan() {
			if len(sc.Bytes()) == 0 {
				continue
			}
			if !yield(sc.Text()) {
				return
			}
		}
		if err := sc.Err(); err != nil && !errors.Is(err, context.Canceled) {
			*errp = err
		}
	}
}

// quotedPathErr is err with the path it names Go-quoted, so that a path
// with a trailing '\r' (a CRLF list), a newline or an escape sequence reads
// as what it is: open "a\r": no such file or directory.
func quotedPathErr(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Op + " " + strconv.Quote(pe.Path) + ": " + pe.Err.Error()
	}
	return err.Error()
}
