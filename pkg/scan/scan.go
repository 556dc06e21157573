// Package scan digests many files in parallel and hands back the results in
// the order the paths were given, with bounded memory: at most a few results
// per worker wait to be emitted, and each worker owns one read buffer.
package scan

import (
	"context"
	"errors"
	"fmt"
	"io"
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

// batch is how many paths a worker takes at once: handing paths over one
// by one cost about a fifth of the CPU of digesting a tree of small files.
const batch = 16

// Files digests the files named by paths using jobs workers (at least 1)
// and calls emit for each path, in input order. Directories are reported
// with Dir set, unreadable or odd paths with Err set; neither stops the
// scan. Files returns the first error from emit, or ctx's error if it is
// cancelled.
func Files(ctx context.Context, paths iter.Seq[string], jobs int, emit func(Result) error) error {
	jobs = max(jobs, 1)
	type job struct {
		paths []string
		out   chan []Result
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	work := make(chan job)
	order := make(chan chan []Result, 2*jobs)
	for range jobs {
		go func() {
			sum := identity.NewSummer()
			for j := range work {
				rs := make([]Result, len(j.paths))
				for i, p := range j.paths {
					rs[i] = digestPath(ctx, p, sum)
				}
				j.out <- rs
			}
		}()
	}
	go func() {
		defer close(order)
		defer close(work)
		send := func(ps []string) bool {
			out := make(chan []Result, 1)
			select {
			case order <- out:
			case <-ctx.Done():
				return false
			}
			select {
			case work <- job{ps, out}:
				return true
			case <-ctx.Done():
				return false
			}
		}
		ps := make([]string, 0, batch)
		for p := range paths {
			if ps = append(ps, p); len(ps) == batch {
				if !send(ps) {
					return
				}
				ps = make([]string, 0, batch)
			}
		}
		if len(ps) > 0 {
			send(ps)
		}
	}()
	for out := range order {
		var rs []Result
		select {
		case rs = <-out:
		case <-ctx.Done():
			return ctx.Err()
		}
		for _, r := range rs {
			if err := emit(r); err != nil {
				return err
			}
		}
	}
	return ctx.Err()
}

// fdReader reads a file descriptor directly, failing once ctx is done so
// that a huge file stops promptly. Digesting small files through *os.File
// cost a poller registration attempt, a finalizer and an allocation each.
type fdReader struct {
	ctx context.Context
	fd  int
}

func (r fdReader) Read(p []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	for {
		n, err := syscall.Read(r.fd, p)
		switch {
		case err == syscall.EINTR:
			continue
		case err != nil:
			return 0, err
		case n == 0 && len(p) > 0:
			return 0, io.EOF
		}
		return n, nil
	}
}

func digestPath(ctx context.Context, path string, sum *identity.Summer) Result {
	res := Result{Path: path}
	if err := CheckPath(path); err != nil {
		res.Err = err
		return res
	}
	// O_NONBLOCK: opening a FIFO must not wait for a writer; it is refused
	// below. On regular files and directories the flag changes nothing.
	fd, err := openRead(path)
	if err != nil {
		res.Err = &fs.PathError{Op: "open", Path: path, Err: err}
		return res
	}
	defer syscall.Close(fd)
	var st syscall.Stat_t
	if err := syscall.Fstat(fd, &st); err != nil {
		res.Err = &fs.PathError{Op: "stat", Path: path, Err: err}
		return res
	}
	switch st.Mode & syscall.S_IFMT {
	case syscall.S_IFREG:
	case syscall.S_IFDIR:
		res.Dir = true
		return res
	default:
		res.Err = &fs.PathError{Op: "digest", Path: path, Err: fmt.Errorf("%w (%s)", ErrNotRegular, modeType(st.Mode))}
		return res
	}
	s, err := sum.Sum(fdReader{ctx, fd})
	if err != nil {
		res.Err = &fs.PathError{Op: "read", Path: path, Err: err}
		return res
	}
	res.Sum = s
	return res
}

// openRead opens path read-only and non-blocking, retrying on EINTR.
func openRead(path string) (int, error) {
	for {
		fd, err := syscall.Open(path, syscall.O_RDONLY|syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
		if err != syscall.EINTR {
			return fd, err
		}
	}
}

// modeType names the file type of a stat mode as fs.FileMode prints it.
func modeType(m uint32) fs.FileMode {
	switch m & syscall.S_IFMT {
	case syscall.S_IFIFO:
		return fs.ModeNamedPipe
	case syscall.S_IFCHR:
		return fs.ModeDevice | fs.ModeCharDevice
	case syscall.S_IFBLK:
		return fs.ModeDevice
	case syscall.S_IFSOCK:
		return fs.ModeSocket
	case syscall.S_IFLNK:
		return fs.ModeSymlink
	}
	return fs.ModeIrregular
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
