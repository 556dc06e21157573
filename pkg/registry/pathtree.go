package registry

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/artifactstore/artifact-store/pkg/db"
	"github.com/artifactstore/artifact-store/pkg/records"
	"github.com/artifactstore/artifact-store/pkg/ref"
)

// checkTree refuses paths that could not all be files of the package ref
// together with the files it already holds: a path that is a directory
// prefix of another ("x" and "x/y"), within paths or against the package
// (issue 14 item 6). Such a package could never be written out or verified.
// It is ErrConflict (exit 5): two files contradict each other, as a path
// that exists with other bytes does. Paths the package already holds as
// files are skipped (the package itself never holds such a pair).
//
// Cost: one indexed lookup of every new path's ancestors, and one range
// query per new path for files below it; none when the package is empty.
func checkTree(ctx context.Context, q rowQueryer, dialect db.Dialect, pkg ref.Ref, paths []string, have map[string]File) error {
	if file, under, bad := records.FileUnderFile(paths); bad {
		return fmt.Errorf("%w: %q and %q cannot both be files of %s (%q would have to be a directory); nothing stored", ErrConflict, file, under, pkg, file)
	}
	var fresh []string
	for _, p := range paths {
		if _, ok := have[p]; !ok {
			fresh = append(fresh, p)
		}
	}
	if len(fresh) == 0 {
		return nil
	}
	var n int
	err := q.QueryRowContext(ctx, `SELECT COUNT(*) FROM (SELECT 1 FROM artifact_files WHERE package_name = $1 AND package_version = $2 LIMIT 1) t`, pkg.Name, pkg.Version).Scan(&n)
	if err != nil {
		return fmt.Errorf("registry: read files of %s: %w", pkg, err)
	}
	if n == 0 {
		return nil
	}
	seen := map[string]bool{}
	var anc []string
	for _, p := range fresh {
		for _, a := range records.Ancestors(p) {
			if !seen[a] {
				seen[a] = true
				anc = append(anc, a)
			}
		}
	}
	files, err := lookupFiles(ctx, q, pkg, anc)
	if err != nil {
		return err
	}
	for _, p := range fresh {
		for _, a := range records.Ancestors(p) {
			if _, hit := files[a]; hit {
				return fmt.Errorf("%w: %s already holds the file %q, so %q cannot be added below it; nothing stored", ErrConflict, pkg, a, p)
			}
		}
	}
	// Files below p: bytewise between p+"/" and p+"0" ('0' follows '/').
	col := "path"
	if dialect == db.Postgres {
		col = `path COLLATE "C"`
	}
	query := `SELECT path FROM artifact_files WHERE package_name = $1 AND package_version = $2 AND ` +
		col + ` >= $3 AND ` + col + ` < $4 LIMIT 1`
	for _, p := range fresh {
		var below string
		switch err := q.QueryRowContext(ctx, query, pkg.Name, pkg.Version, p+"/", p+"0").Scan(&below); {
		case err == nil:
			return fmt.Errorf("%w: %s already holds %q, so %q cannot be added as a file (it is a directory there); nothing stored", ErrConflict, pkg, below, p)
		case !errors.Is(err, sql.ErrNoRows):
			return fmt.Errorf("registry: read files of %s: %w", pkg, err)
		}
	}
	return nil
}

// rowQueryer is a *sql.DB or *sql.Tx.
type rowQueryer interface {
	queryer
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}
