package registry

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/artifactstore/artifact-store/pkg/events"
)

// viewTimeLayout is how the views hold a time (created_at, finalized_at,
// retain_until, ended_at): UTC with nine fraction digits, fixed width, so
// that comparing the texts compares the times, in SQL on either dialect.
const viewTimeLayout = "2006-01-02T15:04:05.000000000Z"

// viewTime formats t for a view column.
func viewTime(t time.Time) string { return t.UTC().Format(viewTimeLayout) }

// parseViewTime reads a view column written by viewTime.
func parseViewTime(s string) (time.Time, error) {
	t, err := time.Parse(viewTimeLayout, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("registry: view time %q: %w", s, err)
	}
	return t, nil
}

// Lifecycle states of a package row (artifact_packages.lifecycle). A live
// package is open or finalised (its state); the others have ended and
// are gone from reads, their events kept.
const (
	Live      = "live"
	Expired   = "expired"
	Abandoned = "abandoned"
	Deleted   = "deleted"
)

// applyFinalizedTimes records when the package was finalised (the event's
// time) and computes its retain_until from it.
func (w *viewWriter) applyFinalizedTimes(ctx context.Context, tx *sql.Tx, name, version string, ev events.Event) error {
	if _, err := w.exec(ctx, tx, `UPDATE artifact_packages SET finalized_at = $3 WHERE name = $1 AND version = $2`,
		name, version, viewTime(ev.Time)); err != nil {
		return err
	}
	return w.recomputeRetainUntil(ctx, tx, name, version, ev.Seq)
}

// recomputeRetainUntil sets a finalised package's retain_until to its
// finalisation time plus its class's min_retention_days (ADR 0010,
// "Retention"); an open package has none. It reads only the views, which
// replay rebuilds in log order, so it gives the same result on replay.
func (w *viewWriter) recomputeRetainUntil(ctx context.Context, tx *sql.Tx, name, version string, seq uint64) error {
	var fin sql.NullString
	var days int64
	err := tx.QueryRowContext(ctx, `SELECT p.finalized_at, c.min_retention_days FROM artifact_packages p
		JOIN retention_classes c ON c.name = p.retention_class WHERE p.name = $1 AND p.version = $2`, name, version).Scan(&fin, &days)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("package %s@%s: no row (the log and the views disagree)", name, version)
	}
	if err != nil || !fin.Valid {
		return err
	}
	t, err := parseViewTime(fin.String)
	if err != nil {
		return err
	}
	until := t.AddDate(0, 0, int(days))
	_, err = w.exec(ctx, tx, `UPDATE retention_state SET retain_until = $3, updated_seq = $4 WHERE package_name = $1 AND package_version = $2`,
		name, version, viewTime(until), int64(seq))
	return err
}

func (w *viewWriter) applyTagSet(ctx context.Context, tx *sql.Tx, ev events.Event) error {
	var p tagSet
	if err := decodePayload(ev, &p); err != nil {
		return err
	}
	_, err := w.exec(ctx, tx, `INSERT INTO package_tags (package_name, tag, package_version, updated_seq) VALUES ($1, $2, $3, $4)
		ON CONFLICT (package_name, tag) DO UPDATE SET package_version = excluded.package_version, updated_seq = excluded.updated_seq`,
		p.Name, p.Tag, p.Version, int64(ev.Seq))
	return err
}

func (w *viewWriter) applyTagDeleted(ctx context.Context, tx *sql.Tx, ev events.Event) error {
	var p tagDeleted
	if err := decodePayload(ev, &p); err != nil {
		return err
	}
	res, err := w.exec(ctx, tx, `DELETE FROM package_tags WHERE package_name = $1 AND tag = $2`, p.Name, p.Tag)
	return mustAffectOne(res, err, "tag "+p.Name+":"+p.Tag)
}

// applyPackageEnded marks a live package expired, abandoned or deleted,
// with the time and reason its event carries, and removes its files and
// tags: from then on no artifact_files row of it references an object,
// which is what makes its objects candidates for garbage collection.
func (w *viewWriter) applyPackageEnded(ctx context.Context, tx *sql.Tx, ev events.Event, state string) error {
	var p packageEnded
	if err := decodePayload(ev, &p); err != nil {
		return err
	}
	at, err := time.Parse(time.RFC3339Nano, p.At)
	if err != nil {
		return fmt.Errorf("payload: at %q: %w", p.At, err)
	}
	seq := int64(ev.Seq)
	res, err := w.exec(ctx, tx, `UPDATE artifact_packages SET lifecycle = $3, ended_at = $4, ended_reason = $5, ended_seq = $6, updated_seq = $6
		WHERE name = $1 AND version = $2 AND lifecycle = 'live'`, p.Name, p.Version, state, viewTime(at), p.Reason, seq)
	if err := mustAffectOne(res, err, "live package "+p.Name+"@"+p.Version); err != nil {
		return err
	}
	if _, err := w.exec(ctx, tx, `DELETE FROM artifact_files WHERE package_name = $1 AND package_version = $2`, p.Name, p.Version); err != nil {
		return err
	}
	_, err = w.exec(ctx, tx, `DELETE FROM package_tags WHERE package_name = $1 AND package_version = $2`, p.Name, p.Version)
	return err
}
