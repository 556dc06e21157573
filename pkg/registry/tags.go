package registry

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/artifactstore/artifact-store/pkg/events"
	"github.com/artifactstore/artifact-store/pkg/ref"
)

// Tag is a tag of a package name and the version it points at.
type Tag struct {
	Name    string `cbor:"name" json:"name"`
	Tag     string `cbor:"tag" json:"tag"`
	Version string `cbor:"version" json:"version"`
	// Previous is the version the tag pointed at before SetTag moved it
	// ("" for a new tag). Tags doesn't fill it.
	Previous string `cbor:"previous,omitempty" json:"previous,omitempty"`
}

// TagResult reports what SetTag or DeleteTag did.
type TagResult struct {
	Tag
	Unchanged bool // the tag already pointed there: no event was appended
}

// SetTag points tag at the finalised package target names (any reference
// form; a tag is resolved first), creating or moving it with one
// v1.tag.set event that records the previous target. Moving a tag never
// changes a manifest. The tag must be valid (ref.CheckTag) and must not be
// the text of a version of the same name (tags and versions share one
// namespace per name: ErrConflict). An open target is ErrNotFinalized.
func (r *Registry) SetTag(ctx context.Context, target ref.Ref, tag string) (TagResult, error) {
	if err := ref.CheckTag(tag); err != nil {
		return TagResult{}, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	var res TagResult
	err := r.mutate(ctx, func(tx *sql.Tx, emit func(string, any) (events.Event, error)) error {
		p, err := resolvePackage(ctx, tx, target)
		if err != nil {
			return err
		}
		if !p.Finalized {
			return fmt.Errorf("%w: %s: a tag points only at a finalised package", ErrNotFinalized, p.Ref)
		}
		if exists, err := versionExists(ctx, tx, p.Name, tag); err != nil {
			return err
		} else if exists {
			return fmt.Errorf("%w: %s@%s is a version; a tag may not take its text", ErrConflict, p.Name, tag)
		}
		prev, err := tagTarget(ctx, tx, p.Name, tag)
		if err != nil {
			return err
		}
		res = TagResult{Tag: Tag{Name: p.Name, Tag: tag, Version: p.Version, Previous: prev}}
		if prev == p.Version {
			res.Unchanged = true
			return nil
		}
		_, err = emit(TypeTagSet, tagSet{Name: p.Name, Tag: tag, Version: p.Version, Previous: prev})
		return err
	})
	return res, err
}

// DeleteTag removes name:tag with one v1.tag.deleted event; ErrNotFound if
// there is no such tag.
func (r *Registry) DeleteTag(ctx context.Context, name, tag string) (TagResult, error) {
	if err := ref.CheckName(name); err != nil {
		return TagResult{}, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if err := ref.CheckTag(tag); err != nil {
		return TagResult{}, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	var res TagResult
	err := r.mutate(ctx, func(tx *sql.Tx, emit func(string, any) (events.Event, error)) error {
		v, err := tagTarget(ctx, tx, name, tag)
		if err != nil {
			return err
		}
		if v == "" {
			return fmt.Errorf("%w: tag %s:%s", ErrNotFound, name, tag)
		}
		res = TagResult{Tag: Tag{Name: name, Tag: tag, Version: v}}
		_, err = emit(TypeTagDeleted, tagDeleted{Name: name, Tag: tag, Version: v})
		return err
	})
	return res, err
}

// Tags returns the tags of name, sorted by tag (bytewise).
func (r *Registry) Tags(ctx context.Context, name string) ([]Tag, error) {
	if err := ref.CheckName(name); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	rows, err := r.db.SQL.QueryContext(ctx, `SELECT tag, package_version FROM package_tags WHERE package_name = $1`, name)
	if err != nil {
		return nil, fmt.Errorf("registry: tags of %s: %w", name, err)
	}
	defer rows.Close()
	var out []Tag
	for rows.Next() {
		t := Tag{Name: name}
		if err := rows.Scan(&t.Tag, &t.Version); err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	sortTags(out)
	return out, rows.Err()
}

// tagTarget returns the version name:tag points at, "" if there is none.
func tagTarget(ctx context.Context, q queryRower, name, tag string) (string, error) {
	var v string
	err := q.QueryRowContext(ctx, `SELECT package_version FROM package_tags WHERE package_name = $1 AND tag = $2`, name, tag).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("registry: read tag %s:%s: %w", name, tag, err)
	}
	return v, nil
}

// versionExists reports whether name@version has ever been created (in any
// lifecycle state: a version's text stays taken after it expires).
func versionExists(ctx context.Context, q queryRower, name, version string) (bool, error) {
	var one int
	err := q.QueryRowContext(ctx, `SELECT 1 FROM artifact_packages WHERE name = $1 AND version = $2`, name, version).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("registry: read package %s@%s: %w", name, version, err)
	}
	return true, nil
}

// checkVersionFree is CreatePackage's namespace check: a version that ever
// existed (an expired or deleted one too) is ErrExists — versions are
// immutable, and the old manifest stays in the log — and the text of an
// existing tag of the name is ErrConflict.
func checkVersionFree(ctx context.Context, q queryRower, rf ref.Ref) error {
	var lifecycle string
	err := q.QueryRowContext(ctx, `SELECT lifecycle FROM artifact_packages WHERE name = $1 AND version = $2`, rf.Name, rf.Version).Scan(&lifecycle)
	switch {
	case err == nil:
		return fmt.Errorf("%w: package %s (%s; a version is never reused)", ErrExists, rf, lifecycle)
	case !errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("registry: read package %s: %w", rf, err)
	}
	if v, err := tagTarget(ctx, q, rf.Name, rf.Version); err != nil {
		return err
	} else if v != "" {
		return fmt.Errorf("%w: %s:%s is a tag (of %s@%s); a version may not take its text", ErrConflict, rf.Name, rf.Version, rf.Name, v)
	}
	return nil
}
