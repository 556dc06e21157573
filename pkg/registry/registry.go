// Package registry is artifact-store's library surface: it creates packages,
// ingests files into them, finalises them into canonical manifests, serves
// them back, and manages their retention — with no HTTP server and no tool
// needed (DESIGN.md §5–§7).
//
// Every mutating operation is one database transaction that appends its
// event(s) to the log (package events) and updates the views through the
// one view writer that replay also uses; bytes are made durable in the data
// plane before that transaction commits. A finalised package is immutable.
// Replay rebuilds every view from the log, and StateDigest proves it did so
// byte for byte.
package registry

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"github.com/artifactstore/artifact-store/pkg/canonical"
	"github.com/artifactstore/artifact-store/pkg/dataplane"
	"github.com/artifactstore/artifact-store/pkg/db"
	"github.com/artifactstore/artifact-store/pkg/events"
	"github.com/artifactstore/artifact-store/pkg/identity"
	"github.com/artifactstore/artifact-store/pkg/manifest"
	"github.com/artifactstore/artifact-store/pkg/records"
	"github.com/artifactstore/artifact-store/pkg/ref"
)

// Errors callers branch on.
var (
	ErrNotFound         = errors.New("registry: not found")
	ErrExists           = errors.New("registry: already exists")
	ErrPackageFinalized = errors.New("registry: package is finalized and immutable")
	ErrPathExists       = errors.New("registry: path already in package")
	ErrUnknownClass     = errors.New("registry: unknown retention class")
	ErrInvalid          = errors.New("registry: invalid argument")
	ErrNotFinalized     = errors.New("registry: package is not finalized")
	// ErrConflict: the request contradicts what the store holds (other
	// declarations for a finished package, a hold, a writer that won).
	ErrConflict = errors.New("registry: conflict")
	// ErrIntegrity: stored state is not what it should be (replay drift,
	// a known-corrupt object, a verify difference).
	ErrIntegrity = errors.New("registry: integrity failure")
	// ErrCollecting: a push met its bytes under a sweep's deleting
	// tombstone and cannot re-read its body; the same push succeeds when
	// retried (it stores the bytes anew). Errors wrapping it wrap
	// ErrConflict as well.
	ErrCollecting = errors.New("registry: object is being garbage-collected")
)

// DefaultRetentionClass is the class of a package created without one.
const DefaultRetentionClass = "standard"

// Options configure a Registry.
type Options struct {
	// Actor is recorded in every event as who caused it (ADR 0002): taken
	// by the tools from --actor or ARTIFACTSTORE_ACTOR, else the user name.
	Actor string
	// Now gives each event's time; time.Now when nil. Views never read it:
	// they take time only from events.
	Now func() time.Time
	// Tool names the producer recorded in manifests' provenance (default
	// "artifact-store"); it is part of a package's identity.
	Tool string
	// Build is the producing tool's build version. It is recorded in the
	// log (a v1.package.produced event at finalisation), never in a
	// manifest, so that a new release gives the same package the same
	// digest (docs/adr/0003-manifest-canonicalisation.md).
	Build string
}

// Registry is the orchestrator over one database and one data plane. It is
// safe for concurrent use.
type Registry struct {
	db   *db.DB
	log  *events.Log
	dp   dataplane.DataPlane
	opts Options
	gc   *gcHooks // test-only (gc.go)
}

// New returns a Registry over d and dp.
func New(d *db.DB, dp dataplane.DataPlane, opts Options) *Registry {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Tool == "" {
		opts.Tool = "artifact-store"
	}
	return &Registry{db: d, log: events.New(d), dp: dp, opts: opts}
}

// Log returns the event log the registry appends to.
func (r *Registry) Log() *events.Log { return r.log }

// DataPlane returns the data plane the registry stores bytes through.
func (r *Registry) DataPlane() dataplane.DataPlane { return r.dp }

// checkVersionRef reports whether p names a version (name@version), the
// form every package mutation takes; tags and digests resolve to one first.
func checkVersionRef(p ref.Ref) error {
	if !p.IsVersion() {
		return fmt.Errorf("%w: %s is not a name@version reference", ErrInvalid, p)
	}
	if err := ref.CheckName(p.Name); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if err := ref.CheckVersion(p.Version); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return nil
}

// Package is a package's row in the views.
type Package struct {
	ref.Ref
	RetentionClass string
	Labels         map[string]string
	Finalized      bool
	ManifestDigest identity.Digest // zero while open
	FileCount      int64
	TotalSize      int64
	Hold           bool
}

// File is a file of a package, as the views hold it.
type File = records.File

// mutate runs fn in one transaction and commits it: the shape of every
// mutating operation. fn appends events through emit, which also applies
// them to the views.
func (r *Registry) mutate(ctx context.Context, fn func(tx *sql.Tx, emit func(typ string, payload any) (events.Event, error)) error) error {
	return r.mutateWith(ctx, false, fn)
}

// mutateWith is mutate; with bulk, the view writer holds back runs of
// plain file ingests and writes them in multi-row statements
// (views_bulk.go) before any other event and before the commit, so fn must
// not read artifact_files, storage_locations or the package counters after
// emitting an ingest. Either way the events are appended through one
// events.Appender (one head update, multi-row inserts), so fn must not
// read the log.
func (r *Registry) mutateWith(ctx context.Context, bulk bool, fn func(tx *sql.Tx, emit func(typ string, payload any) (events.Event, error)) error) error {
	// Queue on the log's head before fn reads the views: fn's checks then
	// see every mutation committed before this one. Otherwise (READ
	// COMMITTED) two writers of the same package or path both pass their
	// checks and the second fails on a view's unique constraint instead of
	// seeing ErrExists or an unchanged file.
	tx, err := events.Begin(ctx, r.db)
	if err != nil {
		return fmt.Errorf("registry: %w", err)
	}
	defer tx.Rollback()
	now := r.opts.Now()
	vw := newViewWriter()
	if bulk {
		vw.bulk, vw.pg = true, r.db.Dialect() == db.Postgres
	}
	app := events.NewAppender(tx, r.db.Dialect())
	emit := func(typ string, payload any) (events.Event, error) {
		var b []byte
		if raw, ok := payload.([]byte); ok {
			b = raw
		} else if b, err = canonical.Marshal(payload); err != nil {
			return events.Event{}, err
		}
		ev, err := app.Append(ctx, events.Event{Type: typ, Actor: r.opts.Actor, Time: now, Payload: b})
		if err != nil {
			return events.Event{}, err
		}
		if err := vw.Apply(ctx, tx, ev); err != nil {
			return events.Event{}, err
		}
		return ev, nil
	}
	if err := fn(tx, emit); err != nil {
		return err
	}
	if err := vw.Flush(ctx, tx); err != nil {
		return err
	}
	if app.HeldBytes() >= releaseManifest {
		// What fn and the views worked out is garbage now; the driver
		// and the database copy the payloads next (releaseManifest).
		debug.FreeOSMemory()
	}
	if err := app.Flush(ctx); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("registry: commit: %w", err)
	}
	return nil
}

// CreateOptions describe a new package.
type CreateOptions struct {
	RetentionClass string // DefaultRetentionClass when empty
	Labels         map[string]string
}

// CreatePackage creates an open package. It fails with ErrExists if the
// package exists and ErrUnknownClass for a class that is not defined.
func (r *Registry) CreatePackage(ctx context.Context, ref ref.Ref, opts CreateOptions) error {
	if err := checkVersionRef(ref); err != nil {
		return err
	}
	class := opts.RetentionClass
	if class == "" {
		class = DefaultRetentionClass
	}
	for k, v := range opts.Labels {
		if k == "" || !canonicalText(k) || !canonicalText(v) {
			return fmt.Errorf("%w: label %q=%q", ErrInvalid, k, v)
		}
	}
	return r.mutate(ctx, func(tx *sql.Tx, emit func(string, any) (events.Event, error)) error {
		if err := checkClass(ctx, tx, class); err != nil {
			return err
		}
		if _, err := lookupPackage(ctx, tx, ref); err == nil {
			return fmt.Errorf("%w: package %s", ErrExists, ref)
		} else if !errors.Is(err, ErrNotFound) {
			return err
		}
		if err := checkVersionFree(ctx, tx, ref); err != nil {
			return err
		}
		labels := opts.Labels
		if labels == nil {
			labels = map[string]string{}
		}
		_, err := emit(TypePackageCreated, packageCreated{Name: ref.Name, Version: ref.Version, Retention: class, Labels: labels})
		return err
	})
}

func canonicalText(s string) bool {
	_, err := canonical.Marshal(s)
	return err == nil
}

func checkClass(ctx context.Context, q queryRower, class string) error {
	var n string
	err := q.QueryRowContext(ctx, `SELECT name FROM retention_classes WHERE name = $1`, class).Scan(&n)
	if errors.Is(err, sql.ErrNoRows) {
		var known []string
		if rows, qerr := q.(queryer).QueryContext(ctx, `SELECT name FROM retention_classes ORDER BY name`); qerr == nil {
			for rows.Next() {
				var s string
				rows.Scan(&s)
				known = append(known, s)
			}
			rows.Close()
		}
		return fmt.Errorf("%w %q (known: %v)", ErrUnknownClass, class, known)
	}
	return err
}

type queryRower interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func lookupPackage(ctx context.Context, q queryRower, ref ref.Ref) (Package, error) {
	p := Package{Ref: ref}
	var labels []byte
	var state string
	var digest sql.NullString
	var hold sql.NullBool
	var lifecycle string
	var endedAt, endedReason sql.NullString
	err := q.QueryRowContext(ctx, `SELECT p.retention_class, p.labels, p.state, p.manifest_digest, p.file_count, p.total_size, s.hold,
		p.lifecycle, p.ended_at, p.ended_reason
		FROM artifact_packages p LEFT JOIN retention_state s ON s.package_name = p.name AND s.package_version = p.version
		WHERE p.name = $1 AND p.version = $2`, ref.Name, ref.Version).
		Scan(&p.RetentionClass, &labels, &state, &digest, &p.FileCount, &p.TotalSize, &hold, &lifecycle, &endedAt, &endedReason)
	if errors.Is(err, sql.ErrNoRows) {
		return Package{}, packageNotFound(ctx, q, ref)
	}
	if err != nil {
		return Package{}, fmt.Errorf("registry: read package %s: %w", ref, err)
	}
	if lifecycle != Live {
		return Package{}, endedError(ref, lifecycle, endedAt, endedReason)
	}
	if err := canonical.Unmarshal(labels, &p.Labels); err != nil {
		return Package{}, fmt.Errorf("registry: package %s labels: %w", ref, err)
	}
	p.Finalized = state == "finalized"
	p.Hold = hold.Bool
	if digest.Valid {
		if p.ManifestDigest, err = identity.Parse(digest.String); err != nil {
			return Package{}, fmt.Errorf("registry: package %s: %w", ref, err)
		}
	}
	return p, nil
}

// GetPackage returns the view row of the package ref names (a version, a
// tag or a manifest digest; see ResolveRef).
func (r *Registry) GetPackage(ctx context.Context, ref ref.Ref) (Package, error) {
	return resolvePackage(ctx, r.db.SQL, ref)
}

// lookupFile returns the record of path in the package, or ErrNotFound.
func lookupFile(ctx context.Context, q queryRower, ref ref.Ref, path string) (File, error) {
	f, err := scanFile(q.QueryRowContext(ctx, `SELECT path, size, content_address, digest_sha256 FROM artifact_files
		WHERE package_name = $1 AND package_version = $2 AND path = $3`, ref.Name, ref.Version, path))
	if errors.Is(err, sql.ErrNoRows) {
		return File{}, fileNotFound(ctx, q, ref, path)
	}
	if err != nil {
		return File{}, fmt.Errorf("registry: read %s in %s: %w", path, ref, err)
	}
	return f, nil
}

// Files returns a package's files sorted by path (bytewise).
func (r *Registry) Files(ctx context.Context, ref ref.Ref) ([]File, error) {
	p, err := r.GetPackage(ctx, ref)
	if err != nil {
		return nil, err
	}
	return r.packageFiles(ctx, p.Ref)
}

// packageFiles lists the files of the resolved version ref, sorted by path.
func (r *Registry) packageFiles(ctx context.Context, ref ref.Ref) ([]File, error) {
	rows, err := r.db.SQL.QueryContext(ctx, `SELECT path, size, content_address, digest_sha256 FROM artifact_files
		WHERE package_name = $1 AND package_version = $2`, ref.Name, ref.Version)
	if err != nil {
		return nil, fmt.Errorf("registry: list files of %s: %w", ref, err)
	}
	defer rows.Close()
	var out []File
	for rows.Next() {
		f, err := scanFile(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, f)
	}
	slices.SortFunc(out, byPath)
	return out, rows.Err()
}

// IngestOptions tune IngestFile.
type IngestOptions struct {
	// Expect, if set, is the file's declared digest (an as-digest record):
	// bytes that differ are refused and nothing is stored or recorded.
	Expect *identity.Sum
	// Replace allows a path already in the open package to get new bytes.
	Replace bool
}

// Ingested reports what IngestFile did.
type Ingested struct {
	File    File
	Receipt dataplane.Receipt
	// Unchanged is true when the path already held exactly these bytes:
	// nothing was stored twice and no event was appended.
	Unchanged bool
}

// IngestFile streams src into the open package at path: IngestFiles with
// one input.
func (r *Registry) IngestFile(ctx context.Context, ref ref.Ref, path string, src io.Reader, opts IngestOptions) (Ingested, error) {
	open := func() (io.ReadCloser, error) { return io.NopCloser(src), nil }
	res, err := r.IngestFiles(ctx, ref, []Input{{Path: path, Open: open, Expect: opts.Expect}}, BatchOptions{Replace: opts.Replace, Workers: 1})
	if err != nil {
		return Ingested{}, err
	}
	return res[0], nil
}

func locationOf(res dataplane.IngestResult) location {
	return location{
		ContentAddress: res.Sum.BLAKE3, SHA256: res.Sum.SHA256, Size: uint64(res.Sum.Size),
		BackendID: res.Receipt.BackendID, Key: res.Receipt.Key,
	}
}

// decide applies the rules for putting bytes at path in package p, given
// the file already there (nil if none). It returns that file, or an error:
// a finalised package takes no new or changed path, and a path with other
// bytes needs replace. known is the sum of the new bytes when it is known:
// before the ingest from an expected digest, inside the final transaction
// from the ingest itself; with known nil a present path is passed through
// to be decided once the bytes are hashed.
func decide(p Package, existing *File, path string, known *identity.Sum, replace bool) (*File, error) {
	switch {
	case existing == nil:
		if p.Finalized {
			return nil, fmt.Errorf("%w: %s (cannot add %s)", ErrPackageFinalized, p.Ref, path)
		}
		return nil, nil
	case known != nil && existing.Sum() == *known:
		return existing, nil
	case p.Finalized:
		return nil, fmt.Errorf("%w: %s (cannot change %s)", ErrPackageFinalized, p.Ref, path)
	case known != nil && !replace:
		return nil, fmt.Errorf("%w: %s is in %s with other bytes (%s); use --replace (IngestOptions.Replace) to change it", ErrPathExists, path, p.Ref, existing.ContentAddress)
	}
	return existing, nil
}

// lookupFiles returns the files of the package at the given paths (those
// that exist) in one query: on SQLite reading the paths as a JSON list
// (inList), on PostgreSQL joining them as an array: an IN list of 500
// parameters (or = ANY of the array) was planned, on the statistics of a
// package still being filled, as a scan of its files comparing each with
// every path, 0.2-0.75 s a query on the 20,000-file tree.
func lookupFiles(ctx context.Context, q queryer, dialect db.Dialect, ref ref.Ref, paths []string) (map[string]File, error) {
	out := make(map[string]File, len(paths))
	if len(paths) == 0 {
		return out, nil
	}
	if dialect == db.Postgres {
		return out, scanFiles(ctx, q, ref, out, `SELECT f.path, f.size, f.content_address, f.digest_sha256
			FROM unnest($3::text[]) AS t(p) JOIN artifact_files f
			ON f.package_name = $1 AND f.package_version = $2 AND f.path = t.p`, ref.Name, ref.Version, paths)
	}
	args, in, err := inList(dialect, []any{ref.Name, ref.Version}, paths)
	if err != nil {
		return nil, err
	}
	if err := scanFiles(ctx, q, ref, out, `SELECT path, size, content_address, digest_sha256 FROM artifact_files
		WHERE package_name = $1 AND package_version = $2 AND path IN (`+in+`)`, args...); err != nil {
		return nil, err
	}
	return out, nil
}

// scanFiles adds the files query returns to out, by path.
func scanFiles(ctx context.Context, q queryer, ref ref.Ref, out map[string]File, query string, args ...any) error {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return fmt.Errorf("registry: read files of %s: %w", ref, err)
	}
	defer rows.Close()
	for rows.Next() {
		f, err := scanFile(rows)
		if err != nil {
			return err
		}
		out[f.Path] = f
	}
	return rows.Err()
}

// byPath orders files bytewise by path, as manifests list them.
func byPath(a, b File) int { return strings.Compare(a.Path, b.Path) }

// scanFile reads a (path, size, content_address, digest_sha256) row.
// It takes a *sql.Row or a *sql.Rows.
func scanFile(rows interface{ Scan(dest ...any) error }) (File, error) {
	var f File
	var size int64
	var ca, s2 string
	if err := rows.Scan(&f.Path, &size, &ca, &s2); err != nil {
		return File{}, err
	}
	f.Size = uint64(size)
	var err error
	if f.ContentAddress, err = identity.Parse(ca); err != nil {
		return File{}, err
	}
	if f.SHA256, err = identity.Parse("sha256:" + s2); err != nil {
		return File{}, err
	}
	return f, nil
}

// StoreObject stores r as a bare object (no package) and records where.
func (r *Registry) StoreObject(ctx context.Context, src io.Reader, expect *identity.Sum) (dataplane.IngestResult, error) {
	var dopts dataplane.IngestOptions
	if expect != nil {
		dopts.Expect = dataplane.ExpectedOf(*expect)
	}
	res, err := r.dp.IngestStream(ctx, src, dopts)
	if err != nil {
		return dataplane.IngestResult{}, fmt.Errorf("registry: store object: %w", err)
	}
	return res, r.commitObject(ctx, res)
}

// FinalizeOptions are the producer's declarations for the manifest.
type FinalizeOptions struct {
	CreatedAt string            // "" or manifest.TimeLayout; never the wall clock
	Facts     map[string]string // provenance facts (CI, source)
}

// FinalizePackage seals an open package: it builds the canonical manifest
// from the views (files, storage receipts, retention), appends it as the
// payload of a v1.package.finalized event and stamps the package's
// manifest_digest, all in one transaction. It returns the manifest's
// canonical CBOR bytes. Finalising an already finalised package returns
// ErrPackageFinalized.
func (r *Registry) FinalizePackage(ctx context.Context, ref ref.Ref, opts FinalizeOptions) ([]byte, error) {
	var out []byte
	err := r.mutate(ctx, func(tx *sql.Tx, emit func(string, any) (events.Event, error)) error {
		p, err := lookupPackage(ctx, tx, ref)
		if err != nil {
			return err
		}
		if p.Finalized {
			return fmt.Errorf("%w: %s (manifest %s)", ErrPackageFinalized, ref, p.ManifestDigest)
		}
		m, err := r.buildManifest(ctx, tx, p, opts)
		if err != nil {
			return err
		}
		b, err := manifest.Encode(m)
		if err != nil {
			return err
		}
		if len(b) >= releaseManifest {
			// m is dead here: free its lists for the views' work to
			// reuse (the mutation returns them before its commit).
			runtime.GC()
		}
		if r.opts.Build != "" {
			if _, err := emit(TypePackageProduced, packageProduced{Name: p.Name, Version: p.Version, Tool: r.opts.Tool, Build: r.opts.Build}); err != nil {
				return err
			}
		}
		if _, err := emit(TypePackageFinalized, b); err != nil {
			return err
		}
		out = b
		return nil
	})
	return out, err
}

// releaseManifest is the size of a manifest (or of the event payloads a
// mutation has yet to write at its end) from which memory that is garbage
// by then is collected early.
// FinalizePackage collects once the manifest is encoded, so that its lists
// and what reading them cost are reused by the views' work that follows.
// A mutation returns the free memory to the operating system before it
// writes its events, since the SQLite driver and SQLite then each copy the
// payloads outside what Go's collector sees. Those copies then come on
// top of the payloads alone instead of on top of everything the collector
// had not yet freed (ADR 0015, round seven: as-put of 200,000 files peaks
// at 296 MiB instead of 462 MiB, in the same time). A forced collection
// costs a few milliseconds per 100 MB of live heap; a 16 MiB manifest lists
// about 40,000 files.
const releaseManifest = 16 << 20

func (r *Registry) buildManifest(ctx context.Context, tx *sql.Tx, p Package, opts FinalizeOptions) (manifest.Manifest, error) {
	rows, err := tx.QueryContext(ctx, `SELECT f.path, f.size, f.content_address, f.digest_sha256, l.backend_id, l.key
		FROM artifact_files f LEFT JOIN storage_locations l ON l.content_address = f.content_address
		WHERE f.package_name = $1 AND f.package_version = $2`, p.Name, p.Version)
	if err != nil {
		return manifest.Manifest{}, err
	}
	defer rows.Close()
	m := manifest.Manifest{
		Package:    manifest.Package{Name: p.Name, Version: p.Version, CreatedAt: opts.CreatedAt, Labels: p.Labels},
		Retention:  manifest.Retention{Class: p.RetentionClass, Hold: p.Hold},
		Provenance: manifest.Provenance{Producer: manifest.Producer{Tool: r.opts.Tool}, Facts: opts.Facts},
	}
	// The join gives a file once per location and a path once per file;
	// receipts are sorted and deduplicated after the scan, as a map of
	// 200,000 of them cost more than the manifest's own bytes. Both lists
	// start at the package's file count (one row per file and location
	// there is, nearly always one): growing them by appending costs a
	// transient copy up to twice that, beside the encoding Encode builds
	// next.
	m.Files = make([]File, 0, p.FileCount)
	m.StorageReceipts = make([]manifest.Receipt, 0, p.FileCount)
	for rows.Next() {
		var f File
		var size int64
		var ca, s2 string
		var backend, key sql.NullString
		if err := rows.Scan(&f.Path, &size, &ca, &s2, &backend, &key); err != nil {
			return manifest.Manifest{}, err
		}
		if f.ContentAddress, err = identity.Parse(ca); err != nil {
			return manifest.Manifest{}, err
		}
		if f.SHA256, err = identity.Parse("sha256:" + s2); err != nil {
			return manifest.Manifest{}, err
		}
		f.Size = uint64(size)
		m.Files = append(m.Files, f)
		if backend.Valid {
			m.StorageReceipts = append(m.StorageReceipts, manifest.Receipt{ContentAddress: f.ContentAddress, BackendID: backend.String, Key: key.String})
		}
	}
	if err := rows.Err(); err != nil {
		return manifest.Manifest{}, err
	}
	slices.SortFunc(m.Files, byPath)
	m.Files = slices.CompactFunc(m.Files, func(a, b File) bool { return a.Path == b.Path })
	manifest.SortReceipts(m.StorageReceipts)
	m.StorageReceipts = slices.Compact(m.StorageReceipts)
	return m, nil
}

// GetManifestBytes returns a finalised package's manifest: exactly the
// canonical bytes of its finalisation event (records.CBOR), or their RFC
// 8785 JCS projection (records.JSON). ref may be a version, tag or digest.
func (r *Registry) GetManifestBytes(ctx context.Context, ref ref.Ref, f records.Format) ([]byte, error) {
	p, err := r.GetPackage(ctx, ref)
	if err != nil {
		return nil, err
	}
	ref = p.Ref
	var seq sql.NullInt64
	err = r.db.SQL.QueryRowContext(ctx, `SELECT finalized_seq FROM artifact_packages WHERE name = $1 AND version = $2`,
		ref.Name, ref.Version).Scan(&seq)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("%w: package %s", ErrNotFound, ref)
	}
	if err != nil {
		return nil, err
	}
	if !seq.Valid {
		return nil, fmt.Errorf("%w: %s", ErrNotFinalized, ref)
	}
	evs, err := r.log.Range(ctx, uint64(seq.Int64)-1, 1)
	if err != nil {
		return nil, err
	}
	if len(evs) != 1 || evs[0].Type != TypePackageFinalized {
		return nil, fmt.Errorf("registry: %s: finalisation event %d missing from the log", ref, seq.Int64)
	}
	b := evs[0].Payload
	if f == records.JSON {
		m, err := manifest.Decode(b)
		if err != nil {
			return nil, err
		}
		return manifest.JCS(m)
	}
	return b, nil
}

// GetFile returns length bytes (-1: to the end) from offset of the file at
// path in the package, and its record. A whole read is verified as
// OpenObject says.
func (r *Registry) GetFile(ctx context.Context, ref ref.Ref, path string, offset, length int64) (io.ReadCloser, File, error) {
	p, err := r.GetPackage(ctx, ref)
	if err != nil {
		return nil, File{}, err
	}
	ref = p.Ref
	f, err := lookupFile(ctx, r.db.SQL, ref, path)
	if err != nil {
		return nil, File{}, err
	}
	rc, _, err := r.OpenObject(ctx, f.ContentAddress, offset, length)
	if err != nil {
		return nil, File{}, fmt.Errorf("registry: %s in %s: %w", path, ref, err)
	}
	return rc, f, nil
}

// SetRetentionClass changes a package's retention class (allowed on open
// and finalised packages: retention is policy, not content).
func (r *Registry) SetRetentionClass(ctx context.Context, ref ref.Ref, class string) error {
	return r.mutate(ctx, func(tx *sql.Tx, emit func(string, any) (events.Event, error)) error {
		p, err := resolvePackage(ctx, tx, ref)
		if err != nil {
			return err
		}
		ref := p.Ref
		if err := checkClass(ctx, tx, class); err != nil {
			return err
		}
		_, err = emit(TypeRetentionChanged, retentionChanged{Name: ref.Name, Version: ref.Version, Class: class})
		return err
	})
}

// PlaceHold places a hold on a package (reason required); a package on hold
// must not expire. Placing a hold on a held package updates the reason.
func (r *Registry) PlaceHold(ctx context.Context, ref ref.Ref, reason string) error {
	if reason == "" || !canonicalText(reason) {
		return fmt.Errorf("%w: a hold needs a reason", ErrInvalid)
	}
	return r.mutate(ctx, func(tx *sql.Tx, emit func(string, any) (events.Event, error)) error {
		p, err := resolvePackage(ctx, tx, ref)
		if err != nil {
			return err
		}
		ref := p.Ref
		_, err = emit(TypeHoldPlaced, holdPlaced{Name: ref.Name, Version: ref.Version, Reason: reason})
		return err
	})
}

// ReleaseHold releases a package's hold; ErrNotFound if it has none.
func (r *Registry) ReleaseHold(ctx context.Context, ref ref.Ref) error {
	return r.mutate(ctx, func(tx *sql.Tx, emit func(string, any) (events.Event, error)) error {
		p, err := resolvePackage(ctx, tx, ref)
		if err != nil {
			return err
		}
		ref := p.Ref
		if !p.Hold {
			return fmt.Errorf("%w: %s has no hold", ErrNotFound, ref)
		}
		_, err = emit(TypeHoldReleased, holdReleased{Name: ref.Name, Version: ref.Version})
		return err
	})
}

// StateDigest is BLAKE3 over a canonical dump of every view (see
// stateDigest). Equal digests mean equal views.
func (r *Registry) StateDigest(ctx context.Context) (identity.Digest, error) {
	return stateDigest(ctx, r.db.SQL, r.db.Dialect() == db.Postgres)
}

// ReplayResult reports a replay.
type ReplayResult struct {
	Events uint64          // events applied (the last sequence)
	Before identity.Digest // state digest before
	After  identity.Digest // state digest after
}

// Replay rebuilds every view from sequence 1 in one transaction. With
// check, the rebuild happens in that transaction and is rolled back, so the
// live views are untouched and the result only says whether they equal a
// rebuild. Either way Before and After are the state digests around it.
func (r *Registry) Replay(ctx context.Context, check bool) (ReplayResult, error) {
	if check && r.db.ReadOnly() {
		return r.checkReplayScratch(ctx, newReplayWriter(db.SQLite))
	}
	return r.replay(ctx, check, newReplayWriter(r.db.Dialect()))
}

// replay is Replay in the store's own transaction through the view writer
// vw (tests compare the bulk path with the ordinary one).
func (r *Registry) replay(ctx context.Context, check bool, vw *viewWriter) (ReplayResult, error) {
	var res ReplayResult
	// The head lock comes first: the "before" digest and the rebuild then
	// see the same log, whatever writers do meanwhile.
	tx, err := events.Begin(ctx, r.db)
	if err != nil {
		return res, fmt.Errorf("registry: replay: %w", err)
	}
	defer tx.Rollback()
	if err := r.db.GrowCache(ctx, tx); err != nil {
		return res, fmt.Errorf("registry: replay: %w", err)
	}
	pg := r.db.Dialect() == db.Postgres
	if err := digestMemory(ctx, tx, pg); err != nil {
		return res, err
	}
	// The views before the rebuild are digested on a connection of their
	// own while tx rebuilds them. That read sees what tx saw at the start:
	// tx holds the head lock, and every writer of the views takes it first.
	before, err := r.digestAside(ctx, tx)
	if err != nil {
		return res, err
	}
	defer before.stop()
	src, err := r.replaySource(ctx, tx)
	if err != nil {
		return res, err
	}
	if src != tx {
		defer src.Rollback() // also if a view panics; a no-op after the one below
	}
	res.Events, err = events.ReplayFrom(ctx, src, tx, vw)
	if src != tx {
		src.Rollback() // read only: ends its snapshot
	}
	if err != nil {
		return res, err
	}
	if res.After, err = stateDigest(ctx, tx, pg); err != nil {
		return res, err
	}
	var same bool
	if res.Before, same, err = before.wait(); err != nil {
		return res, err
	}
	if !same {
		// Impossible while writers honour the head lock.
		return res, fmt.Errorf("registry: replay: the log moved while the head was locked")
	}
	if check {
		return res, nil // the deferred rollback discards the scratch rebuild
	}
	if err := tx.Commit(); err != nil {
		return res, fmt.Errorf("registry: replay: commit: %w", err)
	}
	return res, nil
}

// checkReplayScratch is Replay(check) for a database opened read-only (a
// restored backup on a read-only mount): it reads one snapshot of the log
// and the views, rebuilds the views in a scratch SQLite database in a
// temporary directory, and compares the state digests. Nothing is written
// where the store is.
func (r *Registry) checkReplayScratch(ctx context.Context, vw *viewWriter) (ReplayResult, error) {
	var res ReplayResult
	dir, err := os.MkdirTemp("", "as-replay-check-")
	if err != nil {
		return res, fmt.Errorf("registry: replay check: scratch: %w", err)
	}
	defer os.RemoveAll(dir)
	// Thrown away below whatever happens: no journal, no fsync (ADR 0014).
	scratch, err := db.OpenWith(ctx, "sqlite:"+filepath.Join(dir, "scratch.db"), db.Options{Create: true, Scratch: true})
	if err != nil {
		return res, fmt.Errorf("registry: replay check: scratch: %w", err)
	}
	defer scratch.Close()
	src, err := events.BeginRead(ctx, r.db)
	if err != nil {
		return res, fmt.Errorf("registry: replay check: %w", err)
	}
	defer src.Rollback()
	dst, err := events.Begin(ctx, scratch)
	if err != nil {
		return res, fmt.Errorf("registry: replay check: scratch: %w", err)
	}
	defer dst.Rollback()
	if err := scratch.GrowCache(ctx, dst); err != nil {
		return res, fmt.Errorf("registry: replay check: scratch: %w", err)
	}
	pg := r.db.Dialect() == db.Postgres
	if err := digestMemory(ctx, src, pg); err != nil {
		return res, err
	}
	before, err := r.digestAside(ctx, src)
	if err != nil {
		return res, err
	}
	defer before.stop()
	if res.Events, err = events.ReplayFrom(ctx, src, dst, vw); err != nil {
		return res, err
	}
	if res.After, err = stateDigest(ctx, dst, false); err != nil {
		return res, err
	}
	var same bool
	if res.Before, same, err = before.wait(); err != nil {
		return res, err
	}
	if !same {
		// A writer committed between the two snapshots (nothing locks a
		// read-only store's writers out): digest src's own.
		if res.Before, err = stateDigest(ctx, src, pg); err != nil {
			return res, err
		}
	}
	return res, nil
}

// asideDigest is a state digest computed in the background by digestAside.
type asideDigest struct {
	cancel context.CancelFunc
	done   chan struct{}
	d      identity.Digest
	same   bool // the digest is of the snapshot of the caller's transaction
	err    error
}

// digestAside starts computing the state digest of the views in a read
// transaction of its own (BeginRead), concurrently with whatever the
// caller does next in tx, which must not have written the views yet. The
// digest is of tx's snapshot if the read transaction finds the same log
// head as tx: every change to the views appends to the log in the same
// transaction. wait reports whether it did (same); if not, the digest is
// zero and the caller must take one in a snapshot it knows. A database
// limited to one connection gets the digest in tx before digestAside
// returns.
func (r *Registry) digestAside(ctx context.Context, tx *sql.Tx) (*asideDigest, error) {
	want, err := readHeadRow(ctx, tx)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	a := &asideDigest{cancel: cancel, done: make(chan struct{})}
	if r.db.SQL.Stats().MaxOpenConnections == 1 {
		// No second connection to read on: digest in tx, before the
		// caller changes anything.
		defer close(a.done)
		a.same = true
		a.d, a.err = stateDigest(ctx, tx, r.db.Dialect() == db.Postgres)
		return a, nil
	}
	go func() {
		defer close(a.done)
		r.hook("replay.aside")
		rtx, err := events.BeginRead(ctx, r.db)
		if err != nil {
			a.err = fmt.Errorf("registry: state digest: %w", err)
			return
		}
		defer rtx.Rollback()
		pg := r.db.Dialect() == db.Postgres
		if a.err = digestMemory(ctx, rtx, pg); a.err != nil {
			return
		}
		got, err := readHeadRow(ctx, rtx)
		if err != nil {
			a.err = err
			return
		}
		if a.same = got == want; a.same {
			a.d, a.err = stateDigest(ctx, rtx, pg)
		}
	}()
	return a, nil
}

// replaySource returns the transaction a replay in tx reads the log
// through: a read transaction of its own, which sees the log tx sees (tx
// holds the head lock, so the heads agree; if they somehow do not, tx
// itself), so that the log is read beside the rebuild
// (events.ReplayFrom); tx itself when the pool has no third connection
// (tx and the "before" digest have one each).
func (r *Registry) replaySource(ctx context.Context, tx *sql.Tx) (*sql.Tx, error) {
	if n := r.db.SQL.Stats().MaxOpenConnections; n != 0 && n < 3 {
		return tx, nil
	}
	want, err := readHeadRow(ctx, tx)
	if err != nil {
		return nil, err
	}
	rtx, err := events.BeginRead(ctx, r.db)
	if err != nil {
		return nil, fmt.Errorf("registry: replay: %w", err)
	}
	got, err := readHeadRow(ctx, rtx)
	if err != nil {
		rtx.Rollback()
		return nil, err
	}
	if got != want {
		rtx.Rollback()
		return tx, nil
	}
	return rtx, nil
}

// wait returns the digest once it is done.
func (a *asideDigest) wait() (identity.Digest, bool, error) {
	<-a.done
	return a.d, a.same, a.err
}

// stop cancels the digest if it still runs and waits for its transaction
// to end.
func (a *asideDigest) stop() {
	a.cancel()
	<-a.done
}

// digestMemory lets PostgreSQL sort the views for a state digest in
// memory for the rest of tx: ORDER BY ... COLLATE "C" cannot use a primary
// key's index (the database's collation), and with the default work_mem
// (4 MB) the sort of a 20,000-file view spills to disk.
func digestMemory(ctx context.Context, tx *sql.Tx, pg bool) error {
	if !pg {
		return nil
	}
	if _, err := tx.ExecContext(ctx, "SET LOCAL work_mem = '64MB'"); err != nil {
		return fmt.Errorf("registry: state digest: %w", err)
	}
	return nil
}

// headRow is the log head as stored: what two snapshots compare to tell
// whether they hold the same log.
type headRow struct {
	seq  int64
	hash string
}

func readHeadRow(ctx context.Context, q queryRower) (headRow, error) {
	var h headRow
	var hash []byte
	if err := q.QueryRowContext(ctx, `SELECT seq, hash FROM event_head WHERE id = 1`).Scan(&h.seq, &hash); err != nil {
		return h, fmt.Errorf("registry: read the log head: %w", err)
	}
	h.hash = string(hash)
	return h, nil
}

// Resolve returns the BLAKE3 content address that names the object d
// denotes: d itself for a blake3 address, or, for a sha256 digest (how OCI
// tools name objects), the address of the stored object with that SHA-256.
// ErrNotFound if no stored object has it.
func (r *Registry) Resolve(ctx context.Context, d identity.Digest) (identity.Digest, error) {
	if d.Algorithm() != identity.SHA256 {
		return d, nil
	}
	var ca string
	err := r.db.SQL.QueryRowContext(ctx, `SELECT content_address FROM storage_locations WHERE digest_sha256 = $1 LIMIT 1`, d.Hex()).Scan(&ca)
	if errors.Is(err, sql.ErrNoRows) {
		return identity.Digest{}, fmt.Errorf("%w: no stored object has %s", ErrNotFound, d)
	}
	if err != nil {
		return identity.Digest{}, fmt.Errorf("registry: resolve %s: %w", d, err)
	}
	return identity.Parse(ca)
}
