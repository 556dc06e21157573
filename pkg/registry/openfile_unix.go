//go:build unix

package registry

import (
	"os"
	"syscall"
)

// openFile opens path for reading as os.Open does, as a file the runtime
// does not try to register with its poller: a regular file never is
// pollable, and os.Open pays four fcntl and a failed epoll_ctl finding
// that out, for every file of a tree.
func openFile(path string) (*os.File, error) {
	for {
		fd, err := syscall.Open(path, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
		switch {
		case err == syscall.EINTR:
			continue
		case err != nil:
			return nil, &os.PathError{Op: "open", Path: path, Err: err}
		}
		return os.NewFile(uintptr(fd), path), nil
	}
}

// openFileLimit returns the process's soft limit on open descriptors (the
// Go runtime raises it to the hard limit at start-up).
func openFileLimit() int {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil || l.Cur > 1<<30 {
		return 1 << 30
	}
	return int(l.Cur)
}
