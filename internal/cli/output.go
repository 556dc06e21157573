package cli

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// Output is a file a tool writes its result to (as-get -o FILE). What is
// already at the path decides how it is written, and nothing is ever
// replaced by a file of another kind:
//
//   - nothing, or a regular file with one link that this process may own:
//     the bytes go to a temporary file beside it, which Commit renames over
//     the path, so a failure leaves the old file (or no file) behind. A
//     new file gets mode 0644; an existing one keeps its permission bits
//     and owner.
//   - a regular file with more than one hard link, or owned by another
//     user (and the process is not root): the bytes are staged in a
//     temporary file beside it and Commit copies them into the file in
//     place, so every link sees them and the owner stays; a failure before
//     Commit leaves it untouched, a crash during the copy may leave it part
//     written.
//   - a FIFO or a character device (/dev/null, /dev/stdout, a terminal):
//     written through, as a shell redirection does; it is opened at once,
//     and bytes written before a failure have been delivered.
//   - a symbolic link: resolved, and its target treated by these rules (the
//     link stays); a link to nothing is refused.
//   - a directory, a block device or a socket: refused.
//
// The caller writes, then calls Commit, and defers Abort (a no-op after
// Commit).
type Output struct {
	path    string   // the resolved destination
	f       *os.File // the temporary file, or the destination when writing through
	tmp     string   // the temporary file's name; "" when writing through
	inPlace bool     // Commit copies tmp into path instead of renaming it
	done    bool
}

// OpenOutput prepares path for writing by the rules of [Output].
func OpenOutput(path string) (*Output, error) {
	fi, err := os.Lstat(path)
	if err == nil && fi.Mode()&fs.ModeSymlink != 0 {
		target, rerr := filepath.EvalSymlinks(path)
		if rerr != nil {
			return nil, fmt.Errorf("output %s: a symbolic link whose target cannot be resolved (%w); refusing to replace the link", path, rerr)
		}
		path = target
		fi, err = os.Lstat(path)
	}
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return stage(path, nil)
	case err != nil:
		return nil, fmt.Errorf("output: %w", err)
	}
	switch m := fi.Mode(); {
	case m.IsRegular():
		return stage(path, fi)
	case m&fs.ModeNamedPipe != 0, m&fs.ModeCharDevice != 0:
		f, err := os.OpenFile(path, os.O_WRONLY, 0)
		if err != nil {
			return nil, fmt.Errorf("output: %w", err)
		}
		// Check that what was opened is what was inspected.
		if ofi, err := f.Stat(); err != nil || ofi.Mode().Type() != m.Type() {
			f.Close()
			return nil, fmt.Errorf("output %s: changed while it was opened; refusing it", path)
		}
		return &Output{path: path, f: f}, nil
	default:
		return nil, fmt.Errorf("output %s: %s; refusing to write to it or replace it (give a regular file, a FIFO or a character device)", path, kind(m))
	}
}

func kind(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&fs.ModeDevice != 0:
		return "a block device"
	case m&fs.ModeSocket != 0:
		return "a socket"
	}
	return "not a regular file (" + m.Type().String() + ")"
}

// stage opens a temporary file beside path; fi describes the regular file
// already there, nil if none.
func stage(path string, fi fs.FileInfo) (*Output, error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".as-*")
	if err != nil {
		return nil, fmt.Errorf("output: %w", err)
	}
	o := &Output{path: path, f: tmp, tmp: tmp.Name()}
	mode := fs.FileMode(0o644) // as a shell would create it under umask 022
	if fi != nil {
		mode = fi.Mode().Perm()
		st, _ := fi.Sys().(*syscall.Stat_t)
		switch {
		case st == nil:
		case st.Nlink > 1:
			o.inPlace = true
		case int(st.Uid) != os.Geteuid() || int(st.Gid) != os.Getegid():
			// A renamed file would belong to us: keep the owner by
			// chown (root) or else by writing in place.
			if tmp.Chown(int(st.Uid), int(st.Gid)) != nil {
				o.inPlace = true
			}
		}
	}
	if !o.inPlace {
		if err := tmp.Chmod(mode); err != nil {
			o.Abort()
			return nil, fmt.Errorf("output: %w", err)
		}
	}
	return o, nil
}

// Write implements io.Writer.
func (o *Output) Write(p []byte) (int, error) {
	if o.done {
		return 0, errors.New("output: write after Commit or Abort")
	}
	return o.f.Write(p)
}

// Commit publishes what was written: it renames the temporary file over
// the path, copies it into the file in place, or (writing through) closes
// the destination.
func (o *Output) Commit() error {
	if o.done {
		return errors.New("output: Commit after Commit or Abort")
	}
	o.done = true
	if o.tmp == "" {
		return o.f.Close()
	}
	defer os.Remove(o.tmp) // no-op once renamed
	if !o.inPlace {
		if err := errors.Join(o.f.Sync(), o.f.Close()); err != nil {
			return fmt.Errorf("output: %w", err)
		}
		if err := os.Rename(o.tmp, o.path); err != nil {
			return fmt.Errorf("output: %w", err)
		}
		return nil
	}
	defer o.f.Close()
	if _, err := o.f.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("output: %w", err)
	}
	dst, err := os.OpenFile(o.path, os.O_WRONLY|os.O_TRUNC|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return fmt.Errorf("output: %w", err)
	}
	_, err = io.Copy(dst, o.f)
	if err = errors.Join(err, dst.Sync(), dst.Close()); err != nil {
		return fmt.Errorf("output: writing %s in place: %w", o.path, err)
	}
	return nil
}

// Abort discards a temporary file; the path is left as it was (a FIFO or
// device written through keeps what it received). It does nothing after
// Commit.
func (o *Output) Abort() {
	if o.done {
		return
	}
	o.done = true
	o.f.Close()
	if o.tmp != "" {
		os.Remove(o.tmp)
	}
}
