package local

import (
	"os"
	"syscall"
	"unsafe"
)

// directAlign is the alignment O_DIRECT needs of buffers, sizes and file
// offsets; 4096 covers every common logical block size.
const directAlign = 4096

// direct toggles O_DIRECT on a temporary file so that large, aligned writes
// go from the caller's buffer straight to the device: no copy into the page
// cache (the dominant CPU cost of writing a big object) and no dirty pages
// for the final fsync to flush. Anything unaligned (the tail of an object,
// small objects, a filesystem without O_DIRECT) falls back to ordinary
// buffered writes, for the rest of the file. Durability still comes from the
// fsync in Commit, and the digest is checked on the same bytes either way.
type direct struct {
	on     bool // O_DIRECT currently set on the fd
	failed bool // O_DIRECT refused once: never try again for this file
}

// prepare sets or clears O_DIRECT on f for a write of p at offset off and
// reports whether the write goes direct.
func (d *direct) prepare(f *os.File, p []byte, off int64) bool {
	want := !d.failed && len(p) >= parallelWrite && len(p)%directAlign == 0 && off%directAlign == 0 &&
		uintptr(unsafe.Pointer(unsafe.SliceData(p)))%directAlign == 0
	if want == d.on {
		return want
	}
	if err := setDirect(f, want); err != nil {
		d.failed = true
		if d.on {
			return true // could not clear it: leave it, the write is aligned or will fail
		}
		return false
	}
	d.on = want
	return want
}

// disable clears O_DIRECT after a direct write failed, so that the caller
// can retry buffered.
func (d *direct) disable(f *os.File) bool {
	d.failed = true
	if !d.on {
		return false
	}
	if setDirect(f, false) != nil {
		return false
	}
	d.on = false
	return true
}

func setDirect(f *os.File, on bool) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	err = rc.Control(func(fd uintptr) {
		fl, _, e := syscall.Syscall(syscall.SYS_FCNTL, fd, syscall.F_GETFL, 0)
		if e != 0 {
			serr = e
			return
		}
		if on {
			fl |= syscall.O_DIRECT
		} else {
			fl &^= syscall.O_DIRECT
		}
		if _, _, e := syscall.Syscall(syscall.SYS_FCNTL, fd, syscall.F_SETFL, fl); e != 0 {
			serr = e
		}
	})
	if err != nil {
		return err
	}
	return serr
}
