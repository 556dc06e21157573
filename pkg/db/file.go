package db

import (
	"fmt"
	"os"
)

// CheckFile reports, for SQLite, whether the database file Open opened is
// still at its path: an error wrapping ErrUnavailable if it was removed or
// replaced by another file. An open connection keeps reading a removed
// file's inode forever, so a long-running reader (as-events tail --follow)
// asks this to notice that it is following a store nobody can write to any
// more. On PostgreSQL it returns nil.
func (d *DB) CheckFile() error {
	if d.dialect != SQLite || d.file == nil {
		return nil
	}
	path, err := SQLitePath(d.url)
	if err != nil {
		return err
	}
	fi, err := os.Stat(path)
	switch {
	case err != nil:
		return fmt.Errorf("%w: database file %s: %v", ErrUnavailable, path, err)
	case !os.SameFile(fi, d.file):
		return fmt.Errorf("%w: database file %s was replaced by another file since it was opened", ErrUnavailable, path)
	}
	return nil
}
