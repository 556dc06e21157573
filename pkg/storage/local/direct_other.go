//go:build !linux

package local

import "os"

// direct is a no-op where O_DIRECT is not used.
type direct struct{ on, failed bool }

func (d *direct) prepare(f *os.File, p []byte, off int64) bool { return false }
func (d *direct) disable(f *os.File) bool                      { return false }
