package local

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/artifactstore/artifact-store/pkg/storage"
)

// batchDirs holds open descriptors of the directories one CommitBatch
// renames into: the temporary directory and every fan-out directory the
// batch has reached. Each new object then costs a stat and a rename
// relative to its fan-out directory, where os.Root walked every path from
// the root (about 14 openat per object for a tree of small files).
//
// The descriptors are opened level by level with O_NOFOLLOW|O_DIRECTORY,
// each relative to the one above it, starting from the root opened
// through os.Root: a symbolic link or file planted at any level is
// refused, never followed, exactly as the checks of the one-by-one path.
type batchDirs struct {
	root   *os.File
	rootFD int
	tmp    int            // the backend's temporary directory (not closed here)
	fds    map[string]int // relative directory path → descriptor
}

// openBatchDirs opens the root for one batch; the temporary directory is
// the backend's, held open by it.
func openBatchDirs(b *Backend) (*batchDirs, error) {
	root, err := b.root.Open(".")
	if err != nil {
		return nil, err
	}
	if b.tmp == nil {
		root.Close()
		return nil, errors.New("the backend is open read-only")
	}
	return &batchDirs{root: root, rootFD: int(root.Fd()), tmp: int(b.tmp.Fd()), fds: map[string]int{}}, nil
}

func (d *batchDirs) close() {
	for _, fd := range d.fds {
		unix.Close(fd)
	}
	d.root.Close()
}

// openDir opens the directory name in parent (rel is its path from the
// root, for messages), creating it first if it is missing.
func (d *batchDirs) openDir(parent int, name, rel string) (int, error) {
	if err := unix.Mkdirat(parent, name, 0o755); err != nil && !errors.Is(err, unix.EEXIST) {
		return -1, &os.PathError{Op: "mkdirat", Path: rel, Err: err}
	}
	fd, err := unix.Openat(parent, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	switch {
	case errors.Is(err, unix.ELOOP) || errors.Is(err, unix.ENOTDIR):
		return -1, fmt.Errorf("%w: %s in the root is not a directory (a symlink or file was planted there); refusing it", storage.ErrInvalidKey, rel)
	case err != nil:
		return -1, &os.PathError{Op: "openat", Path: rel, Err: err}
	}
	return fd, nil
}

// dir returns a descriptor of the fan-out directory rel ("blake3/ab/cd"),
// creating the levels that are missing.
func (d *batchDirs) dir(rel string) (int, error) {
	if fd, ok := d.fds[rel]; ok {
		return fd, nil
	}
	parent, name := d.rootFD, rel
	if i := strings.LastIndexByte(rel, filepath.Separator); i >= 0 {
		var err error
		if parent, err = d.dir(rel[:i]); err != nil {
			return -1, err
		}
		name = rel[i+1:]
	}
	fd, err := d.openDir(parent, name, rel)
	if err != nil {
		return -1, err
	}
	d.fds[rel] = fd
	return fd, nil
}

// exists reports whether anything (a file, a symlink) has the name in the
// directory dir.
func (d *batchDirs) exists(dir int, name string) (bool, error) {
	var st unix.Stat_t
	err := unix.Fstatat(dir, name, &st, unix.AT_SYMLINK_NOFOLLOW)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, unix.ENOENT):
		return false, nil
	}
	return false, &os.PathError{Op: "fstatat", Path: name, Err: err}
}

// rename moves the temporary file tmpName (a path under tmpDir) to name
// in the directory dir.
func (d *batchDirs) rename(tmpName string, dir int, name string) error {
	if err := unix.Renameat(d.tmp, filepath.Base(tmpName), dir, name); err != nil {
		return &os.LinkError{Op: "renameat", Old: tmpName, New: name, Err: err}
	}
	return nil
}
