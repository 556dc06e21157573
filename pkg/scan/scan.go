// Package scan digests many files in parallel and hands back the results in
// the order the paths were given, with bounded memory: at most a few results
// per worker wait to be emitted, and each worker owns one read buffer.
package scan

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"iter"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"unicode/utf8"

	"github.com/artifactstore/artifact-store/pkg/identity"
)

// ErrNotRegular is wrapped by a Result's error for a path that is neither a
// regular file nor a directory (a FIFO, a device, a socket).
var ErrNotRegular = errors.New("not a regular file")

// ErrBadPath is wrapped by a Result's error for a path that cannot be
// recorded faithfully: not valid UTF-8, or containing a newline or NUL.
var ErrBadPath = errors.New("path cannot be recorded")

// Result is the outcome for one input path. Exactly one of Dir, Err and a
// valid Sum describes it.
type Result struct {
	Path string
	Sum  identity.Sum
	Dir  bool  // the path is a directory and was skipped
	Err  error // the path could not be digested; it names the path
}

// Files digests the files named by paths using jobs workers (at least 1)
// and calls emit for each path, in input order. Directories are reported
// with Dir set, unreadable or odd paths with Err set; neither stops the
// scan. Files returns the first error from emit, or ctx's error if it is
// cancelled.
func Files(ctx context.Context, paths iter.Seq[string], jobs int, emit func(Result) error) error {
	jobs = max(jobs, 1)
	type job struct {
		path string
		out  chan Result
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	work := make(chan job)
	order := make(chan chan Result, 2*jobs)
	for range jobs {
		go func() {
			buf := make([]byte, identity.BufferSize)
			for j := range work {
				j.out <- digestPath(ctx, j.path, buf)
			}
		}()
	}
	go func() {
		defer close(order)
		defer close(work)
		for p := range paths {
			out := make(chan Result, 1)
			select {
			case order <- out:
			case <-ctx.Done():
				return
			}
			select {
			case work <- job{p, out}:
			case <-ctx.Done():
				return
			}
		}
	}()
	for out := range order {
		var r Result
		select {
		case r = <-out:
		case <-ctx.Done():
			return ctx.Err()
		}
		if err := emit(r); err != nil {
			return err
		}
	}
	return ctx.Err()
}

// ctxReader fails reads once ctx is done, so a huge file stops promptly.
type ctxReader struct {
	ctx context.Context
	f   *os.File
}

func (r ctxReader) Read(p []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	return r.f.Read(p)
}

func digestPath(ctx context.Context, path string, buf []byte) Result {
	res := Result{Path: path}
	if err := CheckPath(path); err != nil {
		res.Err = err
		return res
	}
	// O_NONBLOCK: opening a FIFO must not wait for a writer; it is refused
	// below. On regular files and directories the flag changes nothing.
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		res.Err = err
		return res
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		res.Err = err
		return res
	}
	switch {
	case st.IsDir():
		res.Dir = true
		return res
	case !st.Mode().IsRegular():
		res.Err = &fs.PathError{Op: "digest", Path: path, Err: fmt.Errorf("%w (%s)", ErrNotRegular, st.Mode().Type())}
		return res
	}
	sum, err := identity.SumReaderBuffer(ctxReader{ctx, f}, buf)
	if err != nil {
		res.Err = &fs.PathError{Op: "read", Path: path, Err: err}
		return res
	}
	res.Sum = sum
	return res
}

// CheckPath reports whether a path as read can be carried in a record
// unchanged: valid UTF-8, no newline, no NUL.
func CheckPath(path string) error {
	switch {
	case path == "":
		return fmt.Errorf("empty path: %w", ErrBadPath)
	case !utf8.ValidString(path):
		return fmt.Errorf("%q: %w: not valid UTF-8", path, ErrBadPath)
	case strings.ContainsAny(path, "\n\x00"):
		return fmt.Errorf("%q: %w: contains a newline or NUL", path, ErrBadPath)
	}
	return nil
}

// Expand yields paths with every directory among them replaced by the
// regular files beneath it, in lexical order (as `find DIR -type f | sort`
// lists them): a named directory is walked, never silently skipped.
// Symbolic links below a directory are not followed and are left out, like
// find -type f; a path that is not a directory is yielded as given, so
// that Files reports a missing or special file. An error while walking (a
// directory that cannot be read) goes to onErr, with the path it names,
// and the walk goes on with the rest.
func Expand(paths []string, onErr func(error)) iter.Seq[string] {
	return func(yield func(string) bool) {
		for _, p := range paths {
			if fi, err := os.Stat(p); err != nil || !fi.IsDir() {
				if !yield(p) {
					return
				}
				continue
			}
			stop := false
			filepath.WalkDir(p, func(path string, d fs.DirEntry, err error) error {
				switch {
				case err != nil:
					onErr(err)
					if d != nil && d.IsDir() {
						return fs.SkipDir
					}
					return nil
				case !d.Type().IsRegular():
					return nil
				case !yield(path):
					stop = true
					return fs.SkipAll
				}
				return nil
			})
			if stop {
				return
			}
		}
	}
}
