package local

import (
	"os"
	"syscall"
)

// startWriteback asks the kernel to begin writing [off, off+n) of f to disk
// without waiting (sync_file_range(2) with SYNC_FILE_RANGE_WRITE). It is
// only a hint that lets the disk work while later bytes are still being
// hashed, so that the fsync in Commit has little left to do; durability
// still comes from that fsync alone. Errors are ignored for the same reason.
func startWriteback(f *os.File, off, n int64) {
	const syncFileRangeWrite = 2 // SYNC_FILE_RANGE_WRITE
	rc, err := f.SyscallConn()
	if err != nil {
		return
	}
	rc.Control(func(fd uintptr) {
		syscall.Syscall6(syscall.SYS_SYNC_FILE_RANGE, fd, uintptr(off), uintptr(n), syncFileRangeWrite, 0, 0)
	})
}
