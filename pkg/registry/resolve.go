package registry

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/artifactstore/artifact-store/pkg/events"
	"github.com/artifactstore/artifact-store/pkg/ref"
)

// ResolveRef returns the version (name@version) that rf names: rf itself
// for a version, the version a tag points at, or the version whose
// manifest has the digest. Every read takes any of the three forms through
// it (docs/adr/0010-tags-and-expiry.md). A missing package or tag, and a
// package that has expired, been abandoned or been deleted, is ErrNotFound
// with a message saying when and why.
func (r *Registry) ResolveRef(ctx context.Context, rf ref.Ref) (ref.Ref, error) {
	p, err := resolvePackage(ctx, r.db.SQL, rf)
	if err != nil {
		return ref.Ref{}, err
	}
	return p.Ref, nil
}

// resolvePackage looks up the live package rf names (see ResolveRef).
func resolvePackage(ctx context.Context, q queryRower, rf ref.Ref) (Package, error) {
	v, err := resolveVersion(ctx, q, rf)
	if err != nil {
		return Package{}, err
	}
	return lookupPackage(ctx, q, v)
}

// resolveVersion turns a tag or digest reference into name@version without
// looking at the package's lifecycle; a version reference is returned as
// it is. History, which outlives a package, reads through it.
func resolveVersion(ctx context.Context, q queryRower, rf ref.Ref) (ref.Ref, error) {
	if err := ref.CheckName(rf.Name); err != nil {
		return ref.Ref{}, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	var version string
	var err error
	switch {
	case rf.IsVersion():
		return ref.Version(rf.Name, rf.Version), nil
	case rf.Tag != "":
		err = q.QueryRowContext(ctx, `SELECT package_version FROM package_tags WHERE package_name = $1 AND tag = $2`, rf.Name, rf.Tag).Scan(&version)
	case !rf.Digest.IsZero():
		err = q.QueryRowContext(ctx, `SELECT version FROM artifact_packages WHERE name = $1 AND manifest_digest = $2`, rf.Name, rf.Digest.String()).Scan(&version)
	default:
		return ref.Ref{}, fmt.Errorf("%w: %q names no version, tag or digest", ErrInvalid, rf.String())
	}
	if errors.Is(err, sql.ErrNoRows) {
		if rf.Tag != "" {
			return ref.Ref{}, fmt.Errorf("%w: tag %s", ErrNotFound, rf)
		}
		return ref.Ref{}, fmt.Errorf("%w: no package %s has manifest %s", ErrNotFound, rf.Name, rf.Digest)
	}
	if err != nil {
		return ref.Ref{}, fmt.Errorf("registry: resolve %s: %w", rf, err)
	}
	return ref.Version(rf.Name, version), nil
}

// endedError is the ErrNotFound of a package that has ended: when and why.
func endedError(rf ref.Ref, lifecycle string, at, reason sql.NullString) error {
	when := at.String
	if t, err := parseViewTime(at.String); err == nil {
		when = events.FormatTime(t)
	}
	what := "rule"
	if lifecycle == Deleted {
		what = "reason"
	}
	return fmt.Errorf("%w: package %s %s at %s (%s: %s)", ErrNotFound, rf, lifecycle, when, what, reason.String)
}

// viewTimeOf returns the time in a nullable view column (zero when NULL).
func viewTimeOf(s sql.NullString) (time.Time, error) {
	if !s.Valid {
		return time.Time{}, nil
	}
	return parseViewTime(s.String)
}

// ResolveVersion is ResolveRef for history: it returns the version rf
// names whether or not the package has ended (a tag resolves only while
// it exists; expiry and deletion remove a package's tags).
func (r *Registry) ResolveVersion(ctx context.Context, rf ref.Ref) (ref.Ref, error) {
	return resolveVersion(ctx, r.db.SQL, rf)
}
