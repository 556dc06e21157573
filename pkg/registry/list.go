package registry

import (
	"context"
	"database/sql"
	"fmt"
	"iter"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/artifactstore/artifact-store/pkg/canonical"
	"github.com/artifactstore/artifact-store/pkg/db"
	"github.com/artifactstore/artifact-store/pkg/events"
	"github.com/artifactstore/artifact-store/pkg/identity"
	"github.com/artifactstore/artifact-store/pkg/ref"
)

// Listing is one package as List reports it (an as-ls record). Times are
// RFC 3339 UTC text taken from the package's events; empty when the event
// has not happened.
type Listing struct {
	Name           string            `cbor:"name" json:"name"`
	Version        string            `cbor:"version" json:"version"`
	State          string            `cbor:"state" json:"state"` // open, finalized, expired, abandoned, deleted
	ManifestDigest string            `cbor:"manifest_digest,omitempty" json:"manifest_digest,omitempty"`
	RetentionClass string            `cbor:"retention_class" json:"retention_class"`
	Hold           bool              `cbor:"hold" json:"hold"`
	HoldReason     string            `cbor:"hold_reason,omitempty" json:"hold_reason,omitempty"`
	RetainUntil    string            `cbor:"retain_until,omitempty" json:"retain_until,omitempty"`
	Labels         map[string]string `cbor:"labels" json:"labels"`
	FileCount      uint64            `cbor:"file_count" json:"file_count"`
	TotalSize      uint64            `cbor:"total_size" json:"total_size"`
	Tags           []string          `cbor:"tags" json:"tags"`
	CreatedAt      string            `cbor:"created_at,omitempty" json:"created_at,omitempty"`
	FinalizedAt    string            `cbor:"finalized_at,omitempty" json:"finalized_at,omitempty"`
	EndedAt        string            `cbor:"ended_at,omitempty" json:"ended_at,omitempty"`
	EndedReason    string            `cbor:"ended_reason,omitempty" json:"ended_reason,omitempty"`
}

// Filter selects packages for List. The zero Filter selects every live
// package.
type Filter struct {
	Name   string            // a path.Match glob over the name ("" or "*" for all; '*' does not cross '/')
	Labels map[string]string // every label must be present with this value
	Class  string            // retention class
	State  string            // open, finalized, expired, abandoned or deleted ("" any live)
	Tag    string            // has this tag
	// IncludeEnded lists expired, abandoned and deleted packages too
	// (a State of one of them implies it).
	IncludeEnded bool
	// FinalizedBefore/After keep packages finalised before (older than)
	// or after (newer than) the time; an open package has no such time
	// and is left out when either is set.
	FinalizedBefore, FinalizedAfter time.Time
}

// States a Filter may name.
var listStates = []string{"open", "finalized", Expired, Abandoned, Deleted}

// List yields the packages f selects, sorted by name (bytewise), then
// version in natural order (ref.CompareVersions). It streams: rows are
// read in name order and each name's versions are sorted as that name
// ends, so the first record comes before the whole table is read.
func (r *Registry) List(ctx context.Context, f Filter) iter.Seq2[Listing, error] {
	return func(yield func(Listing, error) bool) {
		if err := CheckGlob(f.Name); err != nil {
			yield(Listing{}, err)
			return
		}
		if f.State != "" && !slices.Contains(listStates, f.State) {
			yield(Listing{}, fmt.Errorf("%w: state %q (want one of %s)", ErrInvalid, f.State, strings.Join(listStates, ", ")))
			return
		}
		pg := r.db.Dialect() == db.Postgres
		query, args := listQuery(f, pg)
		prefix := literalPrefix(f.Name)
		tagName := ""
		if prefix == f.Name {
			tagName = f.Name
		}
		tags, err := tagsByVersion(ctx, r.db.SQL, tagName)
		if err != nil {
			yield(Listing{}, err)
			return
		}
		rows, err := r.db.SQL.QueryContext(ctx, query, args...)
		if err != nil {
			yield(Listing{}, fmt.Errorf("registry: list: %w", err))
			return
		}
		defer rows.Close()
		var group []Listing
		flush := func() bool {
			slices.SortFunc(group, func(a, b Listing) int { return ref.CompareVersions(a.Version, b.Version) })
			for _, l := range group {
				if !yield(l, nil) {
					return false
				}
			}
			group = group[:0]
			return true
		}
		for rows.Next() {
			l, err := scanListing(rows)
			if err != nil {
				yield(Listing{}, err)
				return
			}
			if f.Name != "" && prefix != f.Name {
				if ok, _ := path.Match(f.Name, l.Name); !ok {
					continue
				}
			}
			if !hasLabels(l.Labels, f.Labels) {
				continue
			}
			l.Tags = nonNil(tags[ref.Version(l.Name, l.Version)])
			if len(group) > 0 && group[0].Name != l.Name && !flush() {
				return
			}
			group = append(group, l)
		}
		if err := rows.Err(); err != nil {
			yield(Listing{}, fmt.Errorf("registry: list: %w", err))
			return
		}
		flush()
	}
}

// listQuery builds List's SELECT: every condition that SQL can decide is
// in the WHERE clause; globs beyond a literal prefix and labels (canonical
// CBOR) are matched as rows arrive.
func listQuery(f Filter, pg bool) (string, []any) {
	var where []string
	var args []any
	arg := func(v any) string { args = append(args, v); return fmt.Sprintf("$%d", len(args)) }
	switch f.State {
	case "":
		if !f.IncludeEnded {
			where = append(where, "p.lifecycle = 'live'")
		}
	case "open", "finalized":
		where = append(where, "p.state = "+arg(f.State))
		if !f.IncludeEnded {
			where = append(where, "p.lifecycle = 'live'")
		}
	default:
		where = append(where, "p.lifecycle = "+arg(f.State))
	}
	if prefix := literalPrefix(f.Name); prefix == f.Name && f.Name != "" {
		where = append(where, "p.name = "+arg(f.Name))
	} else if prefix != "" {
		where = append(where, fmt.Sprintf("substr(p.name, 1, %d) = %s", len(prefix), arg(prefix)))
	}
	if f.Class != "" {
		where = append(where, "p.retention_class = "+arg(f.Class))
	}
	if f.Tag != "" {
		where = append(where, "EXISTS (SELECT 1 FROM package_tags t WHERE t.package_name = p.name AND t.package_version = p.version AND t.tag = "+arg(f.Tag)+")")
	}
	if !f.FinalizedBefore.IsZero() {
		where = append(where, "p.finalized_at < "+arg(viewTime(f.FinalizedBefore)))
	}
	if !f.FinalizedAfter.IsZero() {
		where = append(where, "p.finalized_at > "+arg(viewTime(f.FinalizedAfter)))
	}
	q := `SELECT p.name, p.version, p.state, p.lifecycle, p.manifest_digest, p.retention_class, s.hold, s.hold_reason, s.retain_until,
		p.labels, p.file_count, p.total_size, p.created_at, p.finalized_at, p.ended_at, p.ended_reason
		FROM artifact_packages p LEFT JOIN retention_state s ON s.package_name = p.name AND s.package_version = p.version`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY p.name"
	if pg {
		q += ` COLLATE "C"`
	}
	return q, args
}

func scanListing(rows *sql.Rows) (Listing, error) {
	var l Listing
	var state, lifecycle string
	var digest, holdReason, until, created, finalized, endedAt, endedReason sql.NullString
	var hold sql.NullBool
	var labels []byte
	var files, size int64
	if err := rows.Scan(&l.Name, &l.Version, &state, &lifecycle, &digest, &l.RetentionClass, &hold, &holdReason, &until,
		&labels, &files, &size, &created, &finalized, &endedAt, &endedReason); err != nil {
		return Listing{}, fmt.Errorf("registry: list: %w", err)
	}
	l.State = state
	if lifecycle != Live {
		l.State = lifecycle
	}
	l.ManifestDigest, l.Hold, l.HoldReason, l.EndedReason = digest.String, hold.Bool, holdReason.String, endedReason.String
	l.FileCount, l.TotalSize = uint64(files), uint64(size)
	if err := canonical.Unmarshal(labels, &l.Labels); err != nil {
		return Listing{}, fmt.Errorf("registry: list: %s@%s labels: %w", l.Name, l.Version, err)
	}
	for _, c := range []struct {
		dst *string
		src sql.NullString
	}{{&l.RetainUntil, until}, {&l.CreatedAt, created}, {&l.FinalizedAt, finalized}, {&l.EndedAt, endedAt}} {
		t, err := viewTimeOf(c.src)
		if err != nil {
			return Listing{}, err
		}
		if !t.IsZero() {
			*c.dst = events.FormatTime(t)
		}
	}
	return l, nil
}

func hasLabels(have, want map[string]string) bool {
	for k, v := range want {
		if got, ok := have[k]; !ok || got != v {
			return false
		}
	}
	return true
}

// literalPrefix returns the part of a glob before its first special
// character (all of it when it has none).
func literalPrefix(glob string) string {
	if i := strings.IndexAny(glob, `*?[\`); i >= 0 {
		return glob[:i]
	}
	return glob
}

func sortTags(ts []Tag) {
	slices.SortFunc(ts, func(a, b Tag) int { return strings.Compare(a.Tag, b.Tag) })
}

// Holder is a package file that references an object.
type Holder struct {
	Name    string `cbor:"name" json:"name"`
	Version string `cbor:"version" json:"version"`
	Path    string `cbor:"path" json:"path"`
}

// Holding returns every file of a package that references the object with
// address addr (its blake3 content address, or its sha256 digest), sorted
// by name, natural version order, then path. Expired, abandoned and
// deleted packages hold nothing: their files are gone from the views.
func (r *Registry) Holding(ctx context.Context, addr identity.Digest) ([]Holder, error) {
	var q string
	var arg any
	switch addr.Algorithm() {
	case identity.BLAKE3:
		q, arg = `SELECT package_name, package_version, path FROM artifact_files WHERE content_address = $1`, addr.String()
	case identity.SHA256:
		// Through the object's row (migration 00008): no index on the files' own column.
		q, arg = `SELECT package_name, package_version, path FROM artifact_files
			WHERE content_address IN (SELECT content_address FROM storage_locations WHERE digest_sha256 = $1)`, addr.Hex()
	default:
		return nil, fmt.Errorf("%w: holding: want a blake3 or sha256 address, not %q", ErrInvalid, addr.String())
	}
	rows, err := r.db.SQL.QueryContext(ctx, q, arg)
	if err != nil {
		return nil, fmt.Errorf("registry: holding %s: %w", addr, err)
	}
	defer rows.Close()
	var out []Holder
	for rows.Next() {
		var h Holder
		if err := rows.Scan(&h.Name, &h.Version, &h.Path); err != nil {
			return nil, err
		}
		out = append(out, h)
	}
	slices.SortFunc(out, func(a, b Holder) int {
		if c := strings.Compare(a.Name, b.Name); c != 0 {
			return c
		}
		if c := ref.CompareVersions(a.Version, b.Version); c != 0 {
			return c
		}
		return strings.Compare(a.Path, b.Path)
	})
	return out, rows.Err()
}
