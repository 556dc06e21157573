package registry

import (
	"context"
	"fmt"
	"path"
	"slices"
	"strings"

	"github.com/artifactstore/artifact-store/pkg/ref"
)

// maxNearby is how many neighbours a not-found error names.
const maxNearby = 5

// packageNotFound is the ErrNotFound of a missing version, naming what
// exists nearby: the newest live versions of the name ("app has 1.2.3,
// 1.3.0"), or that no package has the name at all.
func packageNotFound(ctx context.Context, q queryRower, rf ref.Ref) error {
	hint := ""
	if qq, ok := q.(queryer); ok {
		hint = versionsHint(ctx, qq, rf.Name)
	}
	return fmt.Errorf("%w: no package %s%s", ErrNotFound, rf, hint)
}

func versionsHint(ctx context.Context, q queryer, name string) string {
	rows, err := q.QueryContext(ctx, `SELECT version FROM artifact_packages WHERE name = $1 AND lifecycle = $2`, name, Live)
	if err != nil {
		return ""
	}
	defer rows.Close()
	var vs []string
	for rows.Next() {
		var v string
		if rows.Scan(&v) == nil {
			vs = append(vs, v)
		}
	}
	if rows.Err() != nil {
		return ""
	}
	if len(vs) == 0 {
		return fmt.Sprintf("; no package is named %s", name)
	}
	slices.SortFunc(vs, ref.CompareVersions)
	if len(vs) > maxNearby {
		return fmt.Sprintf("; %s has %d versions, the newest %s", name, len(vs), strings.Join(vs[len(vs)-maxNearby:], ", "))
	}
	return fmt.Sprintf("; %s has %s", name, strings.Join(vs, ", "))
}

// fileNotFound is the ErrNotFound of a path missing from a package, naming
// the package's files in the same directory (else its first files), so a
// typo or a wrong --root shows at once.
func fileNotFound(ctx context.Context, q queryRower, rf ref.Ref, p string) error {
	hint := ""
	if qq, ok := q.(queryer); ok {
		hint = filesHint(ctx, qq, rf, p)
	}
	return fmt.Errorf("%w: no file %s in %s%s", ErrNotFound, p, rf, hint)
}

func filesHint(ctx context.Context, q queryer, rf ref.Ref, p string) string {
	rows, err := q.QueryContext(ctx, `SELECT path FROM artifact_files WHERE package_name = $1 AND package_version = $2 ORDER BY path`,
		rf.Name, rf.Version)
	if err != nil {
		return ""
	}
	defer rows.Close()
	var all, near []string
	dir := path.Dir(p)
	for rows.Next() {
		var f string
		if rows.Scan(&f) != nil {
			continue
		}
		all = append(all, f)
		if path.Dir(f) == dir {
			near = append(near, f)
		}
	}
	if rows.Err() != nil || len(all) == 0 {
		return ""
	}
	if len(near) == 0 {
		near = all
	}
	if len(near) > maxNearby {
		near = append(near[:maxNearby:maxNearby], "…")
	}
	return fmt.Sprintf("; it has %d files: %s", len(all), strings.Join(near, ", "))
}
