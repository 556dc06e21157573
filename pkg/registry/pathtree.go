package registry

import (
	"context"
	"database/sql"
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
	files, err := lookupFiles(ctx, q, dialect, pkg, anc)
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
	// Files below p: bytewise between p+"/" and p+"0" ('0' follows '/'),
	// for many paths per statement (a range lookup in the primary key each;
	// on PostgreSQL through the COLLATE "C" index of migration 00007).
	below, err := filesBelow(ctx, q, dialect, pkg, fresh)
	if err != nil {
		return err
	}
	for _, p := range fresh {
		if b, ok := below[p]; ok {
			return fmt.Errorf("%w: %s already holds %q, so %q cannot be added as a file (it is a directory there); nothing stored", ErrConflict, pkg, b, p)
		}
	}
	return nil
}

// filesBelow returns, for those of paths that have files of pkg below them
// (path/…), one such file: on PostgreSQL 256 paths per query, on SQLite all
// of them in one (a JSON list, sqliteList).
func filesBelow(ctx context.Context, q rowQueryer, dialect db.Dialect, pkg ref.Ref, paths []string) (map[string]string, error) {
	out := map[string]string{}
	if dialect != db.Postgres {
		list, err := sqliteList(paths)
		if err != nil {
			return nil, err
		}
		if err := scanBelow(ctx, q, pkg, out, `SELECT t.value, (SELECT f.path FROM artifact_files f
			WHERE f.package_name = ? AND f.package_version = ? AND f.path >= t.value || '/' AND f.path < t.value || '0' LIMIT 1)
			FROM json_each(?) t`, pkg.Name, pkg.Version, list); err != nil {
			return nil, err
		}
		return out, nil
	}
	const chunk = 256
	for start := 0; start < len(paths); start += chunk {
		part := paths[start:min(start+chunk, len(paths))]
		lo, hi := make([]string, len(part)), make([]string, len(part))
		for i, p := range part {
			lo[i], hi[i] = p+"/", p+"0"
		}
		if err := scanBelow(ctx, q, pkg, out, `SELECT t.p, (SELECT f.path FROM artifact_files f WHERE f.package_name = $1 AND f.package_version = $2
			AND f.path COLLATE "C" >= t.lo COLLATE "C" AND f.path COLLATE "C" < t.hi COLLATE "C" LIMIT 1)
			FROM unnest($3::text[], $4::text[], $5::text[]) AS t(p, lo, hi)`, pkg.Name, pkg.Version, part, lo, hi); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// scanBelow adds to out the (path, file below it) pairs query returns, for
// the paths with a file below them.
func scanBelow(ctx context.Context, q queryer, pkg ref.Ref, out map[string]string, query string, args ...any) error {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return fmt.Errorf("registry: read files of %s: %w", pkg, err)
	}
	defer rows.Close()
	for rows.Next() {
		var p string
		var b sql.NullString
		if err := rows.Scan(&p, &b); err != nil {
			return fmt.Errorf("registry: read files of %s: %w", pkg, err)
		}
		if b.Valid {
			out[p] = b.String
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("registry: read files of %s: %w", pkg, err)
	}
	return nil
}

// rowQueryer is a *sql.DB or *sql.Tx.
type rowQueryer interface {
	queryer
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}
