package registry

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/hex"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/artifactstore/artifact-store/internal/cborhead"
	"github.com/artifactstore/artifact-store/pkg/canonical"
	"github.com/artifactstore/artifact-store/pkg/db"
	"github.com/artifactstore/artifact-store/pkg/events"
	"github.com/artifactstore/artifact-store/pkg/identity"
	"github.com/artifactstore/artifact-store/pkg/manifest"
	"lukechampine.com/blake3"
)

// viewWriter is the only code that writes the view tables, for live
// operations and replay alike: one function per event type, each depending
// on nothing but the event and the views.
//
// Statements are prepared once per transaction (a replay applies thousands
// of events with the same few statements), so a viewWriter belongs to one
// transaction: make a new one with newViewWriter for each.
type viewWriter struct {
	tx    *sql.Tx
	stmts map[string]*sql.Stmt
	// bulk lets Apply hold back runs of ingests and write them in
	// multi-row statements (views_bulk.go); Flush must follow the last
	// Apply. Replay sets it; live mutations, which apply a few events and
	// read the views straight after, do not.
	bulk bool
	pg   bool // the bulk statements are for PostgreSQL
	run  bulkRun
	// dropped are the secondary indexes of the bulk tables that Reset
	// dropped and Flush creates again (views_bulk.go).
	dropped []secondaryIndex
}

var _ events.ViewWriter = (*viewWriter)(nil)

func newViewWriter() *viewWriter { return &viewWriter{stmts: map[string]*sql.Stmt{}} }

// newReplayWriter returns a view writer for a replay into a database of
// dialect d: newViewWriter with the bulk path on.
func newReplayWriter(d db.Dialect) *viewWriter {
	w := newViewWriter()
	w.bulk, w.pg = true, d == db.Postgres
	return w
}

// exec runs query in tx through a statement prepared once per transaction.
func (w *viewWriter) exec(ctx context.Context, tx *sql.Tx, query string, args ...any) (sql.Result, error) {
	if w.tx != tx {
		w.tx, w.stmts = tx, map[string]*sql.Stmt{}
	}
	st, ok := w.stmts[query]
	if !ok {
		var err error
		if st, err = tx.PrepareContext(ctx, query); err != nil {
			return nil, err
		}
		w.stmts[query] = st
	}
	return st.ExecContext(ctx, args...)
}

// eventViews are the tables rebuilt from events, children first so that
// deletes respect foreign keys. retention_classes and metadata_schemas are
// seeded by migrations, not by events, and are kept.
var eventViews = []string{"oci_uploads", "oci_tags", "oci_manifests", "oci_blobs", "package_tags", "gc_objects", "object_checks", "retention_state", "artifact_files", "storage_locations", "artifact_packages"}

// Reset empties every view that events build. With bulk, it first drops
// the secondary indexes of the tables the bulk path writes; Flush creates
// them again.
func (w *viewWriter) Reset(ctx context.Context, tx *sql.Tx) error {
	w.run.reset()
	if w.bulk {
		if err := w.dropIndexes(ctx, tx); err != nil {
			return err
		}
	}
	for _, t := range eventViews {
		if _, err := tx.ExecContext(ctx, "DELETE FROM "+t); err != nil {
			return fmt.Errorf("registry: reset %s: %w", t, err)
		}
	}
	return nil
}

// Apply updates the views for one event. Events outside the v1. namespace
// (producer events from as-events append) shape no view.
func (w *viewWriter) Apply(ctx context.Context, tx *sql.Tx, ev events.Event) error {
	if w.bulk && strings.HasPrefix(ev.Type, events.ReservedNamespace) && ev.Type != TypePackageProduced {
		held, err := w.hold(ev)
		if err != nil {
			return fmt.Errorf("registry: apply seq %d (%s): %w", ev.Seq, ev.Type, err)
		}
		if held {
			if w.run.rows() >= bulkMaxRows {
				return w.flush(ctx, tx)
			}
			return nil
		}
		// Every other registry event may read or write what the run
		// holds back: write the run first.
		if err := w.flush(ctx, tx); err != nil {
			return err
		}
	}
	var err error
	switch ev.Type {
	case TypePackageCreated:
		err = w.applyPackageCreated(ctx, tx, ev)
	case TypeFileIngested:
		err = w.applyFileIngested(ctx, tx, ev)
	case TypeObjectStored:
		err = w.applyObjectStored(ctx, tx, ev)
	case TypePackageFinalized:
		err = w.applyPackageFinalized(ctx, tx, ev)
	case TypeRetentionChanged:
		err = w.applyRetentionChanged(ctx, tx, ev)
	case TypeHoldPlaced:
		err = w.applyHold(ctx, tx, ev, true)
	case TypeHoldReleased:
		err = w.applyHold(ctx, tx, ev, false)
	case TypePackageProduced:
		return nil // recorded for audit; no view holds it
	case TypeTagSet:
		err = w.applyTagSet(ctx, tx, ev)
	case TypeTagDeleted:
		err = w.applyTagDeleted(ctx, tx, ev)
	case TypePackageExpired:
		err = w.applyPackageEnded(ctx, tx, ev, Expired)
	case TypePackageAbandoned:
		err = w.applyPackageEnded(ctx, tx, ev, Abandoned)
	case TypePackageDeleted:
		err = w.applyPackageEnded(ctx, tx, ev, Deleted)
	default:
		if strings.HasPrefix(ev.Type, ociEventPrefix) {
			err = w.applyOCI(ctx, tx, ev)
			break
		}
		if handled, gerr := w.applyGC(ctx, tx, ev); handled {
			err = gerr
			break
		}
		if len(ev.Type) >= 3 && ev.Type[:3] == events.ReservedNamespace {
			return fmt.Errorf("registry: seq %d: unknown registry event type %q (a newer version wrote this log?)", ev.Seq, ev.Type)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("registry: apply seq %d (%s): %w", ev.Seq, ev.Type, err)
	}
	return nil
}

func decodePayload(ev events.Event, v any) error {
	if err := canonical.Unmarshal(ev.Payload, v); err != nil {
		return fmt.Errorf("payload: %w", err)
	}
	return nil
}

func (w *viewWriter) applyPackageCreated(ctx context.Context, tx *sql.Tx, ev events.Event) error {
	var p packageCreated
	if err := decodePayload(ev, &p); err != nil {
		return err
	}
	labels, err := canonical.Marshal(p.Labels)
	if err != nil {
		return err
	}
	seq := int64(ev.Seq)
	if _, err := w.exec(ctx, tx, `INSERT INTO artifact_packages
		(name, version, retention_class, labels, state, manifest_digest, file_count, total_size, created_seq, updated_seq, finalized_seq, created_at)
		VALUES ($1, $2, $3, $4, 'open', NULL, 0, 0, $5, $5, NULL, $6)`,
		p.Name, p.Version, p.Retention, labels, seq, viewTime(ev.Time)); err != nil {
		return err
	}
	_, err = w.exec(ctx, tx, `INSERT INTO retention_state
		(package_name, package_version, retention_class, hold, hold_reason, retain_until, updated_seq)
		VALUES ($1, $2, $3, FALSE, NULL, NULL, $4)`, p.Name, p.Version, p.Retention, seq)
	return err
}

// upsertLocation records that a backend holds an object. The first event
// that stored it sets created_seq; later ones only move updated_seq.
func (w *viewWriter) upsertLocation(ctx context.Context, tx *sql.Tx, l location, seq uint64) error {
	_, err := w.exec(ctx, tx, `INSERT INTO storage_locations
		(content_address, backend_id, key, size, digest_algorithm, digest_primary, digest_sha256,
		 retrieval_tier, restore_status, created_seq, updated_seq)
		VALUES ($1, $2, $3, $4, $5, $6, $7, 'hot', 'none', $8, $8)
		ON CONFLICT (content_address, backend_id) DO UPDATE SET updated_seq = excluded.updated_seq`,
		l.ContentAddress.String(), l.BackendID, l.Key, int64(l.Size),
		string(l.ContentAddress.Algorithm()), l.ContentAddress.Hex(), l.SHA256.Hex(), int64(seq))
	return err
}

func (w *viewWriter) applyFileIngested(ctx context.Context, tx *sql.Tx, ev events.Event) error {
	var f fileIngested
	if err := decodePayload(ev, &f); err != nil {
		return err
	}
	if err := w.upsertLocation(ctx, tx, f.Location, ev.Seq); err != nil {
		return err
	}
	seq := int64(ev.Seq)
	l := f.Location
	if f.Replace {
		// A replaced path's old size leaves the package total.
		if _, err := w.exec(ctx, tx, `UPDATE artifact_packages SET
			file_count = file_count - 1,
			total_size = total_size - (SELECT size FROM artifact_files WHERE package_name = $1 AND package_version = $2 AND path = $3)
			WHERE name = $1 AND version = $2 AND EXISTS
			(SELECT 1 FROM artifact_files WHERE package_name = $1 AND package_version = $2 AND path = $3)`,
			f.Name, f.Version, f.Path); err != nil {
			return err
		}
		if _, err := w.exec(ctx, tx, `DELETE FROM artifact_files WHERE package_name = $1 AND package_version = $2 AND path = $3`,
			f.Name, f.Version, f.Path); err != nil {
			return err
		}
	}
	if _, err := w.exec(ctx, tx, `INSERT INTO artifact_files
		(package_name, package_version, path, size, digest_algorithm, digest_primary, digest_sha256, content_address, created_seq)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
		f.Name, f.Version, f.Path, int64(l.Size), string(l.ContentAddress.Algorithm()), l.ContentAddress.Hex(),
		l.SHA256.Hex(), l.ContentAddress.String(), seq); err != nil {
		return err
	}
	res, err := w.exec(ctx, tx, `UPDATE artifact_packages SET file_count = file_count + 1,
		total_size = total_size + $3, updated_seq = $4 WHERE name = $1 AND version = $2 AND state = 'open'`,
		f.Name, f.Version, int64(l.Size), seq)
	return mustAffectOne(res, err, "open package "+f.Name+"@"+f.Version)
}

func (w *viewWriter) applyObjectStored(ctx context.Context, tx *sql.Tx, ev events.Event) error {
	var o objectStored
	if err := decodePayload(ev, &o); err != nil {
		return err
	}
	return w.upsertLocation(ctx, tx, o.Location, ev.Seq)
}

func (w *viewWriter) applyPackageFinalized(ctx context.Context, tx *sql.Tx, ev events.Event) error {
	m, err := manifest.DecodeHeader(ev.Payload) // the files are artifact_files rows already
	if err != nil {
		return err
	}
	res, err := w.exec(ctx, tx, `UPDATE artifact_packages SET state = 'finalized', manifest_digest = $3,
		updated_seq = $4, finalized_seq = $4 WHERE name = $1 AND version = $2 AND state = 'open'`,
		m.Package.Name, m.Package.Version, manifest.DigestOf(ev.Payload).String(), int64(ev.Seq))
	if err := mustAffectOne(res, err, "open package "+m.Package.Ref()); err != nil {
		return err
	}
	return w.applyFinalizedTimes(ctx, tx, m.Package.Name, m.Package.Version, ev)
}

func (w *viewWriter) applyRetentionChanged(ctx context.Context, tx *sql.Tx, ev events.Event) error {
	var r retentionChanged
	if err := decodePayload(ev, &r); err != nil {
		return err
	}
	res, err := w.exec(ctx, tx, `UPDATE artifact_packages SET retention_class = $3, updated_seq = $4 WHERE name = $1 AND version = $2`,
		r.Name, r.Version, r.Class, int64(ev.Seq))
	if err := mustAffectOne(res, err, "package "+r.Name+"@"+r.Version); err != nil {
		return err
	}
	if _, err = w.exec(ctx, tx, `UPDATE retention_state SET retention_class = $3, updated_seq = $4 WHERE package_name = $1 AND package_version = $2`,
		r.Name, r.Version, r.Class, int64(ev.Seq)); err != nil {
		return err
	}
	return w.recomputeRetainUntil(ctx, tx, r.Name, r.Version, ev.Seq)
}

func (w *viewWriter) applyHold(ctx context.Context, tx *sql.Tx, ev events.Event, place bool) error {
	var name, version string
	var reason any // NULL when released
	if place {
		var h holdPlaced
		if err := decodePayload(ev, &h); err != nil {
			return err
		}
		name, version, reason = h.Name, h.Version, h.Reason
	} else {
		var h holdReleased
		if err := decodePayload(ev, &h); err != nil {
			return err
		}
		name, version = h.Name, h.Version
	}
	res, err := w.exec(ctx, tx, `UPDATE retention_state SET hold = $3, hold_reason = $4, updated_seq = $5
		WHERE package_name = $1 AND package_version = $2`, name, version, place, reason, int64(ev.Seq))
	return mustAffectOne(res, err, "package "+name+"@"+version)
}

func mustAffectOne(res sql.Result, err error, what string) error {
	if err != nil {
		return err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n != 1 {
		return fmt.Errorf("%s: %d rows changed, want 1 (the log and the views disagree)", what, n)
	}
	return nil
}

// stateTables lists every view with its columns and primary key, in the
// order the state digest covers them. A key column marked '#' is an integer
// (no collation applies to it).
var stateTables = []struct{ name, cols, key string }{
	{"retention_classes", "name, purpose, min_retention_days, default_retrieval_tier", "name"},
	{"metadata_schemas", "name, version, schema_cbor, digest, created_seq", "name, version#"},
	{"artifact_packages", "name, version, retention_class, labels, state, manifest_digest, file_count, total_size, created_seq, updated_seq, finalized_seq, created_at, finalized_at, lifecycle, ended_at, ended_reason, ended_seq", "name, version"},
	{"artifact_files", "package_name, package_version, path, size, digest_algorithm, digest_primary, digest_sha256, content_address, created_seq", "package_name, package_version, path"},
	{"storage_locations", "content_address, backend_id, key, size, digest_algorithm, digest_primary, digest_sha256, retrieval_tier, restore_status, created_seq, updated_seq", "content_address, backend_id"},
	{"retention_state", "package_name, package_version, retention_class, hold, hold_reason, retain_until, updated_seq", "package_name, package_version"},
	{"package_tags", "package_name, tag, package_version, updated_seq", "package_name, tag"},
	{"gc_objects", "content_address, backend_id, state, size, orphan, condemned_at, condemned_seq, updated_seq", "content_address, backend_id"},
	{"object_checks", "content_address, backend_id, state, detail, checked_at, updated_seq", "content_address, backend_id"},
	// The OCI views (views_oci.go).
	{"oci_blobs", "repository, digest, content_address, size, created_seq", "repository, digest"},
	{"oci_manifests", "repository, digest, media_type, artifact_type, subject, annotations, size, content_address, created_seq", "repository, digest"},
	{"oci_tags", "repository, tag, digest, updated_seq", "repository, tag"},
	{"oci_uploads", "id, repository, created_seq", "id"},
}

// queryer is what StateDigest reads through: a *sql.DB or a *sql.Tx.
type queryer interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// stateDigest is BLAKE3 over a canonical dump of every view: for each table
// in stateTables order, its name, then each row (in primary-key order,
// compared bytewise: COLLATE "C" on PostgreSQL, SQLite's default BINARY) as
// a canonical CBOR array of its values. Integers and booleans are
// normalised across dialects (a boolean is true/false whichever way the
// driver returns it), byte strings are written as hex text and NULL as null.
func stateDigest(ctx context.Context, q queryer, pg bool) (identity.Digest, error) {
	h := blake3.New(32, nil)
	// BLAKE3 hashes many chunks at once only when it is given them at
	// once: rows go to it in 64 KiB pieces, not one by one.
	w := bufio.NewWriterSize(h, 64<<10)
	for _, t := range stateTables {
		rows, err := q.QueryContext(ctx, "SELECT "+t.cols+" FROM "+t.name+" ORDER BY "+orderBy(t.key, pg))
		if err != nil {
			return identity.Digest{}, fmt.Errorf("registry: state digest: %s: %w", t.name, err)
		}
		name, _ := canonical.Marshal(t.name)
		w.Write(name)
		err = dumpRows(rows, w.Write)
		rows.Close()
		if err != nil {
			return identity.Digest{}, fmt.Errorf("registry: state digest: %s: %w", t.name, err)
		}
	}
	w.Flush() // a hash.Hash never fails a write
	return identity.NewDigest(identity.BLAKE3, h.Sum(nil))
}

// orderBy turns a stateTables key into an ORDER BY list: text columns
// compared bytewise (COLLATE "C" on PostgreSQL; SQLite's default BINARY
// already is), integer columns as numbers.
func orderBy(keys string, pg bool) string {
	parts := strings.Split(keys, ",")
	for i, k := range parts {
		k = strings.TrimSpace(k)
		switch {
		case strings.HasSuffix(k, "#"):
			k = strings.TrimSuffix(k, "#")
		case pg:
			k += ` COLLATE "C"`
		}
		parts[i] = k
	}
	return strings.Join(parts, ", ")
}

func dumpRows(rows *sql.Rows, write func([]byte) (int, error)) error {
	cols, err := rows.Columns()
	if err != nil {
		return err
	}
	vals := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	var buf []byte
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return err
		}
		if buf, err = appendRow(buf[:0], cols, vals); err != nil {
			return err
		}
		write(buf)
	}
	return rows.Err()
}

// appendRow appends the canonical CBOR array of one row's values, as
// canonical.Marshal encodes the normalised values (rowValue), without its
// reflection: the state digest encodes every row of every view twice per
// replay. What the encoder refuses or encodes otherwise (text that is not
// UTF-8, an integer past 2^53, 24 columns or more) goes to it as before.
func appendRow(b []byte, cols []string, vals []any) ([]byte, error) {
	start := len(b)
	if len(vals) >= 24 {
		return appendRowSlow(b, cols, vals)
	}
	b = append(b, 0x80|byte(len(vals)))
	for _, v := range vals {
		switch x := v.(type) {
		case nil:
			b = append(b, 0xf6)
		case bool:
			if x {
				b = append(b, 0xf5)
			} else {
				b = append(b, 0xf4)
			}
		case string:
			if !utf8.ValidString(x) {
				return appendRowSlow(b[:start], cols, vals)
			}
			b = appendCBORText(b, x)
		case int64:
			if x < 0 || x >= canonical.MaxSafeInteger {
				return appendRowSlow(b[:start], cols, vals)
			}
			b = cborhead.Append(b, 0, uint64(x))
		case []byte:
			b = cborhead.Append(b, 3, uint64(hex.EncodedLen(len(x))))
			b = hex.AppendEncode(b, x)
		default:
			return appendRowSlow(b[:start], cols, vals)
		}
	}
	return b, nil
}

func appendRowSlow(b []byte, cols []string, vals []any) ([]byte, error) {
	row := make([]any, len(vals))
	for i, v := range vals {
		var err error
		if row[i], err = rowValue(cols[i], v); err != nil {
			return nil, err
		}
	}
	enc, err := canonical.Marshal(row)
	if err != nil {
		return nil, err
	}
	return append(b, enc...), nil
}

// rowValue normalises a scanned value across dialects: integers unsigned,
// byte strings as hex text, anything else the driver returns as its text.
func rowValue(col string, v any) (any, error) {
	switch x := v.(type) {
	case nil, string, bool:
		return x, nil
	case int64:
		if x < 0 {
			return nil, fmt.Errorf("column %s: negative value %d", col, x)
		}
		return uint64(x), nil
	case []byte:
		return hex.EncodeToString(x), nil
	default:
		return fmt.Sprint(x), nil
	}
}

// appendCBORText appends s as a CBOR text string.
func appendCBORText(b []byte, s string) []byte {
	return append(cborhead.Append(b, 3, uint64(len(s))), s...)
}
