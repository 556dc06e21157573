//go:build !unix

package registry

import "os"

// openFile is os.Open where there is no cheaper way to open a file.
func openFile(path string) (*os.File, error) { return os.Open(path) }

// openFileLimit is a limit no batch reaches where none is known.
func openFileLimit() int { return 1 << 30 }
