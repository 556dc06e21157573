package registry

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"

	"github.com/artifactstore/artifact-store/pkg/events"
)

// The bulk path of replay. A replay applies long runs of v1.file.ingested
// and v1.object.stored events (one per file of every package ever put),
// each of which the ordinary path turns into three statements. With bulk
// set, the view writer holds such a run back and writes it in a few
// multi-row statements when the run ends (at any other event, at
// bulkMaxRows held rows, or at Flush):
//
//   - one upsert of storage_locations per distinct (content_address,
//     backend_id): created_seq and the other columns from the first event
//     of the run that named it, updated_seq from the last, which is what
//     the run of single upserts leaves (an existing row only moves
//     updated_seq, to the last);
//   - the artifact_files rows, inserted as the single inserts would;
//   - one counter update per package: file_count and total_size moved by
//     the run's sum, updated_seq set to the run's last event, and the same
//     check that the package is open.
//
// Only ingests that replace nothing are held back: a replacement reads the
// row it replaces, so it flushes the run and takes the ordinary path. No
// statement of a run reads what another writes, so the result is the same
// views; a log that the ordinary path refuses is refused here too (at the
// flush, naming the run's sequence range). TestBulkReplayEqualsOrdinary
// compares the two on random logs.

// bulkMaxRows bounds how many rows a run holds back (memory: some 300
// bytes a row, and the size of the transaction's pending work between
// checks). A run is written in primary-key order, so the larger it is, the
// closer the tables' rows come to key order on disk, which makes the
// inserts and the state digest's ordered scans cheaper: 65,536 rows keep
// the files and locations of a 32,768-file put in one run.
const bulkMaxRows = 1 << 16

// bulkChunk is the number of rows one multi-row statement writes: few
// enough that its parameters stay under both dialects' limits (SQLite
// 32,766, PostgreSQL 65,535).
const bulkChunk = 256

type locKey struct{ addr, backend string }

type locRow struct {
	addr, backend, key, alg, primary, sha256 string
	size, created, updated                   int64
}

type fileRow struct {
	name, version, path, alg, primary, sha256, addr string
	size, seq                                       int64
}

type pkgKey struct{ name, version string }

type pkgDelta struct {
	files, size, last int64
}

// bulkRun is what a bulk view writer holds back.
type bulkRun struct {
	first, last uint64 // sequence range of the run
	locIdx      map[locKey]int
	locs        []locRow
	files       []fileRow
	pkgIdx      map[pkgKey]int
	pkgKeys     []pkgKey
	pkgs        []pkgDelta
}

func (b *bulkRun) rows() int { return len(b.locs) + len(b.files) }

func (b *bulkRun) reset() {
	b.first, b.last = 0, 0
	clear(b.locIdx)
	clear(b.pkgIdx)
	b.locs, b.files, b.pkgKeys, b.pkgs = b.locs[:0], b.files[:0], b.pkgKeys[:0], b.pkgs[:0]
}

// addLocation records that l was stored at seq and returns its row: the
// run's first for l's key, made from l if fresh.
func (b *bulkRun) addLocation(l location, seq uint64) (row *locRow, fresh bool) {
	if b.locIdx == nil {
		b.locIdx, b.pkgIdx = map[locKey]int{}, map[pkgKey]int{}
	}
	k := locKey{l.ContentAddress.String(), l.BackendID}
	if i, ok := b.locIdx[k]; ok {
		b.locs[i].updated = int64(seq)
		return &b.locs[i], false
	}
	b.locIdx[k] = len(b.locs)
	b.locs = append(b.locs, locRow{
		addr: k.addr, backend: l.BackendID, key: l.Key, alg: string(l.ContentAddress.Algorithm()),
		primary: l.ContentAddress.Hex(), sha256: l.SHA256.Hex(), size: int64(l.Size),
		created: int64(seq), updated: int64(seq),
	})
	return &b.locs[len(b.locs)-1], true
}

// hold takes ev into the run if it is one the bulk path writes, and
// reports whether it did.
func (w *viewWriter) hold(ev events.Event) (bool, error) {
	switch ev.Type {
	case TypeFileIngested:
		var f fileIngested
		if err := decodePayload(ev, &f); err != nil {
			return false, err
		}
		if f.Replace {
			return false, nil
		}
		r := &w.run
		l := f.Location
		// The file row's address columns are its location row's (the same
		// content address); its SHA-256 is the event's own, which is the
		// row's only if the row was made from this event.
		lr, fresh := r.addLocation(l, ev.Seq)
		sha := lr.sha256
		if !fresh {
			sha = l.SHA256.Hex()
		}
		r.files = append(r.files, fileRow{
			name: f.Name, version: f.Version, path: f.Path, alg: lr.alg,
			primary: lr.primary, sha256: sha, addr: lr.addr,
			size: int64(l.Size), seq: int64(ev.Seq),
		})
		k := pkgKey{f.Name, f.Version}
		i, ok := r.pkgIdx[k]
		if !ok {
			i = len(r.pkgs)
			r.pkgIdx[k] = i
			r.pkgKeys = append(r.pkgKeys, k)
			r.pkgs = append(r.pkgs, pkgDelta{})
		}
		d := &r.pkgs[i]
		d.files++
		d.size += int64(l.Size)
		d.last = int64(ev.Seq)
	case TypeObjectStored:
		var o objectStored
		if err := decodePayload(ev, &o); err != nil {
			return false, err
		}
		w.run.addLocation(o.Location, ev.Seq)
	default:
		return false, nil
	}
	if w.run.first == 0 {
		w.run.first = ev.Seq
	}
	w.run.last = ev.Seq
	return true, nil
}

// Flush writes what the bulk path holds back and creates the indexes that
// Reset dropped. Replay calls it after the last event; a view writer
// without bulk holds nothing.
func (w *viewWriter) Flush(ctx context.Context, tx *sql.Tx) error {
	if err := w.flush(ctx, tx); err != nil {
		return err
	}
	return w.createIndexes(ctx, tx)
}

// flush writes the run held back, if any.
func (w *viewWriter) flush(ctx context.Context, tx *sql.Tx) error {
	r := &w.run
	if r.first == 0 {
		return nil
	}
	if err := w.flushRun(ctx, tx); err != nil {
		return fmt.Errorf("registry: apply seq %d to %d: %w", r.first, r.last, err)
	}
	r.reset()
	return nil
}

func (w *viewWriter) flushRun(ctx context.Context, tx *sql.Tx) error {
	// In primary-key order (bytewise, as SQLite's BINARY compares): the
	// inserts then append to the key's B-tree instead of seeking, and on
	// SQLite the rowids follow the key, so that a scan in key order reads
	// the table in order. No two rows of a run share a key (locations are
	// merged; a second file at a path fails whichever comes first), so the
	// order changes nothing else.
	r := &w.run
	slices.SortFunc(r.locs, func(a, b locRow) int {
		return cmp.Or(strings.Compare(a.addr, b.addr), strings.Compare(a.backend, b.backend))
	})
	slices.SortFunc(r.files, func(a, b fileRow) int {
		return cmp.Or(strings.Compare(a.name, b.name), strings.Compare(a.version, b.version), strings.Compare(a.path, b.path))
	})
	if w.pg {
		if err := w.flushRunPG(ctx, tx); err != nil {
			return err
		}
	} else if err := w.flushRunSQLite(ctx, tx); err != nil {
		return err
	}
	for i, k := range r.pkgKeys {
		d := r.pkgs[i]
		res, err := w.exec(ctx, tx, `UPDATE artifact_packages SET file_count = file_count + $3,
		total_size = total_size + $4, updated_seq = $5 WHERE name = $1 AND version = $2 AND state = 'open'`,
			k.name, k.version, d.files, d.size, d.last)
		if err := mustAffectOne(res, err, "open package "+k.name+"@"+k.version); err != nil {
			return err
		}
	}
	return nil
}

// On SQLite, rows go in multi-row VALUES lists of bulkChunk rows.
func (w *viewWriter) flushRunSQLite(ctx context.Context, tx *sql.Tx) error {
	r := &w.run
	for c := range chunks(len(r.locs)) {
		rows := r.locs[c[0]:c[1]]
		args := make([]any, 0, 9*len(rows))
		for _, l := range rows {
			args = append(args, l.addr, l.backend, l.key, l.size, l.alg, l.primary, l.sha256, l.created, l.updated)
		}
		if _, err := w.exec(ctx, tx, `INSERT INTO storage_locations
		(content_address, backend_id, key, size, digest_algorithm, digest_primary, digest_sha256,
		 retrieval_tier, restore_status, created_seq, updated_seq)
		VALUES `+values(len(rows), 9, "'hot', 'none'")+`
		ON CONFLICT (content_address, backend_id) DO UPDATE SET updated_seq = excluded.updated_seq`, args...); err != nil {
			return err
		}
	}
	for c := range chunks(len(r.files)) {
		rows := r.files[c[0]:c[1]]
		args := make([]any, 0, 9*len(rows))
		for _, f := range rows {
			args = append(args, f.name, f.version, f.path, f.size, f.alg, f.primary, f.sha256, f.addr, f.seq)
		}
		if _, err := w.exec(ctx, tx, `INSERT INTO artifact_files
		(package_name, package_version, path, size, digest_algorithm, digest_primary, digest_sha256, content_address, created_seq)
		VALUES `+values(len(rows), 9, ""), args...); err != nil {
			return err
		}
	}
	return nil
}

// On PostgreSQL, each table's rows go in one statement whatever their
// number, as one array per column (unnest): a multi-row VALUES list costs
// the server a plan per distinct length and the client a parameter per
// value.
func (w *viewWriter) flushRunPG(ctx context.Context, tx *sql.Tx) error {
	r := &w.run
	if n := len(r.locs); n > 0 {
		var addr, backend, key, alg, primary, sha256 = make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		var size, created, updated = make([]int64, n), make([]int64, n), make([]int64, n)
		for i, l := range r.locs {
			addr[i], backend[i], key[i], alg[i], primary[i], sha256[i] = l.addr, l.backend, l.key, l.alg, l.primary, l.sha256
			size[i], created[i], updated[i] = l.size, l.created, l.updated
		}
		if _, err := w.exec(ctx, tx, `INSERT INTO storage_locations
		(content_address, backend_id, key, size, digest_algorithm, digest_primary, digest_sha256,
		 retrieval_tier, restore_status, created_seq, updated_seq)
		SELECT a, b, k, s, alg, p, h, 'hot', 'none', c, u FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[],
			$5::text[], $6::text[], $7::text[], $8::bigint[], $9::bigint[]) AS t(a, b, k, s, alg, p, h, c, u)
		ON CONFLICT (content_address, backend_id) DO UPDATE SET updated_seq = excluded.updated_seq`,
			addr, backend, key, size, alg, primary, sha256, created, updated); err != nil {
			return err
		}
	}
	if n := len(r.files); n > 0 {
		var name, version, path, alg, primary, sha256, addr = make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		var size, seq = make([]int64, n), make([]int64, n)
		for i, f := range r.files {
			name[i], version[i], path[i], alg[i], primary[i], sha256[i], addr[i] = f.name, f.version, f.path, f.alg, f.primary, f.sha256, f.addr
			size[i], seq[i] = f.size, f.seq
		}
		if _, err := w.exec(ctx, tx, `INSERT INTO artifact_files
		(package_name, package_version, path, size, digest_algorithm, digest_primary, digest_sha256, content_address, created_seq)
		SELECT n, v, p, s, alg, pr, h, a, q FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[],
			$5::text[], $6::text[], $7::text[], $8::text[], $9::bigint[]) AS t(n, v, p, s, alg, pr, h, a, q)`,
			name, version, path, size, alg, primary, sha256, addr, seq); err != nil {
			return err
		}
	}
	return nil
}

// bulkTables are the views the bulk path fills. No statement of a replay
// reads them through a secondary index (only through the primary key), so
// on SQLite a replay drops those indexes before it empties the tables and
// creates them once at the end: one sort per index instead of a B-tree
// insert per row, and a cheaper DELETE. Not on PostgreSQL: DROP INDEX
// locks the table (ACCESS EXCLUSIVE) until the transaction ends, so every
// reader of the views, a server's and a --check's alike, would wait for
// the whole replay instead of reading the last committed views.
var bulkTables = []string{"artifact_files", "storage_locations"}

// secondaryIndex is an index that Reset dropped: its name and the
// statement that creates it, as the database stores it.
type secondaryIndex struct{ name, create string }

// dropIndexes drops the secondary indexes of bulkTables on SQLite and
// remembers how to create them. The definitions come from the database's
// own catalogue (sqlite_master), so they are the schema the migrations
// made. Unique and partial indexes stay: they decide what the inserts
// refuse.
func (w *viewWriter) dropIndexes(ctx context.Context, tx *sql.Tx) error {
	w.dropped = w.dropped[:0]
	if w.pg {
		return nil
	}
	q := `SELECT m.name, m.sql FROM sqlite_master m JOIN pragma_index_list(m.tbl_name) l ON l.name = m.name
		WHERE m.type = 'index' AND m.tbl_name IN ('` + strings.Join(bulkTables, "', '") + `')
		AND m.sql IS NOT NULL AND l."unique" = 0 AND l.origin = 'c' AND l.partial = 0 ORDER BY m.name`
	rows, err := tx.QueryContext(ctx, q)
	if err != nil {
		return fmt.Errorf("registry: replay: list indexes: %w", err)
	}
	for rows.Next() {
		var ix secondaryIndex
		if err := rows.Scan(&ix.name, &ix.create); err != nil {
			rows.Close()
			return fmt.Errorf("registry: replay: list indexes: %w", err)
		}
		w.dropped = append(w.dropped, ix)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("registry: replay: list indexes: %w", err)
	}
	for _, ix := range w.dropped {
		if _, err := tx.ExecContext(ctx, `DROP INDEX "`+ix.name+`"`); err != nil {
			return fmt.Errorf("registry: replay: drop index %s: %w", ix.name, err)
		}
	}
	return nil
}

// createIndexes creates the indexes that dropIndexes dropped.
func (w *viewWriter) createIndexes(ctx context.Context, tx *sql.Tx) error {
	for _, ix := range w.dropped {
		if _, err := tx.ExecContext(ctx, ix.create); err != nil {
			return fmt.Errorf("registry: replay: create index %s: %w", ix.name, err)
		}
	}
	w.dropped = w.dropped[:0]
	return nil
}

// chunks yields the [start, end) bounds of n rows cut into bulkChunk-sized
// pieces.
func chunks(n int) func(yield func([2]int) bool) {
	return func(yield func([2]int) bool) {
		for s := 0; s < n; s += bulkChunk {
			if !yield([2]int{s, min(s+bulkChunk, n)}) {
				return
			}
		}
	}
}

// values returns the VALUES list of a multi-row insert on SQLite: rows
// tuples of cols anonymous parameters each, with the constant SQL fixed
// (if any) spliced in after the seventh parameter (storage_locations'
// retrieval tier and restore status). The SQLite driver looks up every
// parameter's name when it binds, and that look-up walks the list of named
// ones, so $N parameters would cost time quadratic in their number.
func values(rows, cols int, fixed string) string {
	var b strings.Builder
	for i := range rows {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteByte('(')
		for j := range cols {
			if j > 0 {
				b.WriteString(", ")
			}
			if j == 7 && fixed != "" {
				b.WriteString(fixed + ", ")
			}
			b.WriteByte('?')
		}
		b.WriteByte(')')
	}
	return b.String()
}
