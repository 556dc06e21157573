//go:build unix

package registry

import (
	"errors"
	"fmt"
	"os"
	"syscall"
)

func flockGC(path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("registry: GC lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w: another garbage collection is running (%s)", ErrConflict, path)
		}
		return nil, fmt.Errorf("registry: GC lock: %w", err)
	}
	return func() { f.Close() }, nil
}
