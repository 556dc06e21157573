package local

import (
	"os"

	"golang.org/x/sys/unix"
)

// fsBarrier returns a function that makes every completed write on the
// filesystem holding the backend's root durable: syncfs(2), which since
// Linux 5.8 also reports writeback errors. One call serves a whole batch
// (CommitBatch).
func fsBarrier(b *Backend) func() error {
	return func() error {
		d, err := b.root.Open(".")
		if err != nil {
			return err
		}
		defer d.Close()
		if err := unix.Syncfs(int(d.Fd())); err != nil {
			return &os.PathError{Op: "syncfs", Path: b.dir, Err: err}
		}
		return nil
	}
}
