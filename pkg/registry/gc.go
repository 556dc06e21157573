package registry

// Online two-phase garbage collection (docs/adr/0011-garbage-collection.md).
//
// An object (a storage_locations row, or bytes in the backend that no event
// names) is live while any reference source names its content address. Mark
// condemns the others (v1.gc.condemned); sweep, at least a grace period
// later, re-checks each under the log's head lock and commits a tombstone
// (v1.gc.deleting), deletes the bytes, then commits v1.gc.deleted. Every
// transaction that would create a reference calls claimObject under the same
// lock: a condemned object is revived in that transaction (v1.gc.revived), a
// tombstoned one refuses the commit until the deletion is over, a deleted
// one is accepted only once its bytes are known to be stored again. The ADR
// gives the argument why a committed reference then never names deleted
// bytes.

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/artifactstore/artifact-store/pkg/dataplane"
	"github.com/artifactstore/artifact-store/pkg/db"
	"github.com/artifactstore/artifact-store/pkg/events"
	"github.com/artifactstore/artifact-store/pkg/identity"
	"github.com/artifactstore/artifact-store/pkg/ref"
)

// Event types of garbage collection.
const (
	TypeGCCondemned = "v1.gc.condemned" // payload gcBatch: a mark found no reference
	TypeGCRevived   = "v1.gc.revived"   // payload gcRevived: a reference revived it
	TypeGCDeleting  = "v1.gc.deleting"  // payload gcBatch: a sweep's tombstone
	TypeGCDeleted   = "v1.gc.deleted"   // payload gcBatch: the bytes are gone
)

// gcObject names one object in a GC event.
type gcObject struct {
	ContentAddress identity.Digest `cbor:"content_address"`
	BackendID      string          `cbor:"backend_id"`
	Size           uint64          `cbor:"size"`
	Orphan         bool            `cbor:"orphan"`

	at        time.Time // condemned_at, when read from the views
	seenAfter uint64    // orphans: the log head before the listing saw them
}

type gcBatch struct {
	Objects []gcObject `cbor:"objects"`
}

type gcRevived struct {
	ContentAddress identity.Digest `cbor:"content_address"`
	BackendID      string          `cbor:"backend_id"`
	From           string          `cbor:"from"` // the state it left: condemned or deleted
}

// referenceSource is one kind of row that keeps an object alive. cond is an
// SQL condition, true when the object whose content address is the SQL
// expression {ca} is referenced. This list is the one place liveness is
// defined: OCI manifests and unfinished uploads add their tables here.
type referenceSource struct {
	name string
	cond string
}

var referenceSources = []referenceSource{
	// Every package the views still hold: open, finalised or on hold.
	// Expiry and deletion remove a package's artifact_files rows.
	{"artifact_files", `EXISTS (SELECT 1 FROM artifact_files r WHERE r.content_address = {ca})`},
	// Blobs linked into an OCI repository and stored OCI manifests
	// (as-serve) until they are deleted.
	{"oci_blobs", `EXISTS (SELECT 1 FROM oci_blobs r WHERE r.content_address = {ca})`},
	{"oci_manifests", `EXISTS (SELECT 1 FROM oci_manifests r WHERE r.content_address = {ca})`},
}

// claimOCI claims addr for a new OCI reference in tx (see claimObject). An
// OCI push cannot re-read its body, so an object a sweep is deleting, or
// has deleted, is refused with ErrCollecting (and ErrConflict): the client
// retries the push, which then stores the bytes anew.
func (r *Registry) claimOCI(ctx context.Context, tx *sql.Tx, emit func(string, any) (events.Event, error), addr identity.Digest) error {
	c, err := r.claimObject(ctx, tx, emit, addr, r.dp.BackendID())
	if err != nil {
		return err
	}
	if c != claimLive {
		return fmt.Errorf("%w: %w: %s; retry the push", ErrConflict, ErrCollecting, addr)
	}
	return nil
}

// referencedSQL is the condition "some reference source names ca".
func referencedSQL(ca string) string {
	parts := make([]string, len(referenceSources))
	for i, s := range referenceSources {
		parts[i] = strings.ReplaceAll(s.cond, "{ca}", ca)
	}
	return "(" + strings.Join(parts, " OR ") + ")"
}

// gcHooks are test-only: at is called before each step of an ingest and of
// a sweep (see the interleaving test); naive turns the protocol off (no
// claim on ingest, no tombstone on sweep) to prove the test detects loss.
type gcHooks struct {
	at    func(point string)
	naive bool
}

func (r *Registry) hook(point string) {
	if r.gc != nil && r.gc.at != nil {
		r.gc.at(point)
	}
}

func (r *Registry) naive() bool { return r.gc != nil && r.gc.naive }

// claim is what claimObject found.
type claim int

const (
	claimLive     claim = iota // no GC state, or revived in this transaction
	claimDeleting              // a sweep's tombstone stands: do not commit
	claimGone                  // deleted and not stored since: store it again
)

// errClaim aborts a transaction whose claim failed; the caller retries.
var errClaim = errors.New("registry: object is being collected")

// claimObject is called, inside the transaction that is about to commit a
// reference to (addr, backend), by every operation that creates one. The
// log's head lock is held (every mutation takes it before reading), so no
// GC transition can happen between this check and the commit.
func (r *Registry) claimObject(ctx context.Context, tx *sql.Tx, emit func(string, any) (events.Event, error), addr identity.Digest, backend string) (claim, error) {
	if r.naive() {
		return claimLive, nil
	}
	var state string
	err := tx.QueryRowContext(ctx, `SELECT state FROM gc_objects WHERE content_address = $1 AND backend_id = $2`,
		addr.String(), backend).Scan(&state)
	if errors.Is(err, sql.ErrNoRows) {
		return claimLive, nil
	}
	if err != nil {
		return 0, fmt.Errorf("registry: read GC state of %s: %w", addr, err)
	}
	return r.claimState(ctx, emit, addr, backend, state)
}

// gcStates returns the GC state of those of addrs (on backend) that have
// one, read in one query (on PostgreSQL one per 500 addresses): what
// claimObject would read for each. An ingest batch reads them once instead
// of once per file.
func gcStates(ctx context.Context, q queryer, dialect db.Dialect, backend string, addrs []string) (map[string]string, error) {
	out := map[string]string{}
	if len(addrs) == 0 {
		return out, nil
	}
	chunk := len(addrs) // SQLite: one JSON list
	if dialect == db.Postgres {
		chunk = 500
	}
	for start := 0; start < len(addrs); start += chunk {
		args, in, err := inList(dialect, []any{backend}, addrs[start:min(start+chunk, len(addrs))])
		if err != nil {
			return nil, err
		}
		if err := scanStates(ctx, q, out, `SELECT content_address, state FROM gc_objects WHERE backend_id = $1 AND content_address IN (`+in+`)`, args...); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// scanStates adds the (address, state) pairs query returns to out.
func scanStates(ctx context.Context, q queryer, out map[string]string, query string, args ...any) error {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return fmt.Errorf("registry: read GC states: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var a, st string
		if err := rows.Scan(&a, &st); err != nil {
			return fmt.Errorf("registry: read GC states: %w", err)
		}
		out[a] = st
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("registry: read GC states: %w", err)
	}
	return nil
}

// claimState is claimObject for an object whose GC state (a gc_objects
// row) was read as state.
func (r *Registry) claimState(ctx context.Context, emit func(string, any) (events.Event, error), addr identity.Digest, backend, state string) (claim, error) {
	switch state {
	case "condemned":
		_, err := emit(TypeGCRevived, gcRevived{ContentAddress: addr, BackendID: backend, From: state})
		return claimLive, err
	case "deleting":
		return claimDeleting, nil
	case "deleted":
		// The bytes this ingest stored may have been discarded as
		// duplicates of bytes the sweep then deleted. No sweep can be
		// deleting them now (that needs a tombstone, which needs this
		// lock), so what the backend holds now is what it will hold at
		// commit.
		if _, err := r.dp.StatObject(ctx, addr); errors.Is(err, dataplane.ErrNotFound) {
			return claimGone, nil
		} else if err != nil {
			return 0, fmt.Errorf("registry: stat %s: %w", addr, err)
		}
		_, err := emit(TypeGCRevived, gcRevived{ContentAddress: addr, BackendID: backend, From: state})
		return claimLive, err
	}
	return 0, fmt.Errorf("registry: %s has unknown GC state %q", addr, state)
}

// GCWait bounds how long an ingest waits for a sweep to finish deleting an
// object it needs before failing with ErrConflict.
const GCWait = 30 * time.Second

// waitNotDeleting polls until (addr, backend) is no longer tombstoned.
func (r *Registry) waitNotDeleting(ctx context.Context, addr identity.Digest, backend string) error {
	deadline := time.Now().Add(GCWait)
	for {
		r.hook("ingest.wait")
		var state string
		err := r.db.SQL.QueryRowContext(ctx, `SELECT state FROM gc_objects WHERE content_address = $1 AND backend_id = $2`,
			addr.String(), backend).Scan(&state)
		if errors.Is(err, sql.ErrNoRows) || (err == nil && state != "deleting") {
			return nil
		}
		if err != nil {
			return fmt.Errorf("registry: read GC state of %s: %w", addr, err)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%w: %s is being deleted by a garbage-collection sweep that has not finished (run as-gc sweep, then retry)", ErrConflict, addr)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// maxClaimAttempts bounds the store-again loop of an ingest that keeps
// meeting sweeps of its objects.
const maxClaimAttempts = 8

// claimRetry is what a failed claim asks the caller to do.
type claimRetry struct {
	waitFor []identity.Digest // tombstoned: wait until deleted
	gone    []int             // input indexes whose bytes must be stored again
}

func (c *claimRetry) empty() bool { return len(c.waitFor) == 0 && len(c.gone) == 0 }

// settle performs a claimRetry's waits: until every tombstoned object it
// names is deleted (or revived).
func (r *Registry) settle(ctx context.Context, c *claimRetry, backend string) error {
	for _, a := range c.waitFor {
		if err := r.waitNotDeleting(ctx, a, backend); err != nil {
			return err
		}
	}
	return nil
}

func gcTime(s string) (time.Time, error) { return time.Parse(time.RFC3339Nano, s) }

// applyGC updates the views for GC and scrub events; handled is false for
// other types.
func (w *viewWriter) applyGC(ctx context.Context, tx *sql.Tx, ev events.Event) (handled bool, err error) {
	seq := int64(ev.Seq)
	at := events.FormatTime(ev.Time)
	switch ev.Type {
	case TypeGCCondemned:
		var b gcBatch
		if err := decodePayload(ev, &b); err != nil {
			return true, err
		}
		for _, o := range b.Objects {
			if _, err := w.exec(ctx, tx, `INSERT INTO gc_objects
				(content_address, backend_id, state, size, orphan, condemned_at, condemned_seq, updated_seq)
				VALUES ($1, $2, 'condemned', $3, $4, $5, $6, $6)
				ON CONFLICT (content_address, backend_id) DO UPDATE SET state = 'condemned', size = excluded.size,
				orphan = excluded.orphan, condemned_at = excluded.condemned_at, condemned_seq = excluded.condemned_seq,
				updated_seq = excluded.updated_seq`,
				o.ContentAddress.String(), o.BackendID, int64(o.Size), o.Orphan, at, seq); err != nil {
				return true, err
			}
		}
		return true, nil
	case TypeGCRevived:
		var v gcRevived
		if err := decodePayload(ev, &v); err != nil {
			return true, err
		}
		res, err := w.exec(ctx, tx, `DELETE FROM gc_objects WHERE content_address = $1 AND backend_id = $2 AND state = $3`,
			v.ContentAddress.String(), v.BackendID, v.From)
		return true, mustAffectOne(res, err, "GC state of "+v.ContentAddress.String())
	case TypeGCDeleting, TypeGCDeleted:
		var b gcBatch
		if err := decodePayload(ev, &b); err != nil {
			return true, err
		}
		from, to := "condemned", "deleting"
		if ev.Type == TypeGCDeleted {
			from, to = "deleting", "deleted"
		}
		for _, o := range b.Objects {
			res, err := w.exec(ctx, tx, `UPDATE gc_objects SET state = $3, updated_seq = $5
				WHERE content_address = $1 AND backend_id = $2 AND state = $4`,
				o.ContentAddress.String(), o.BackendID, to, from, seq)
			if err := mustAffectOne(res, err, "GC state of "+o.ContentAddress.String()); err != nil {
				return true, err
			}
			if to != "deleted" {
				continue
			}
			for _, t := range []string{"storage_locations", "object_checks"} {
				if _, err := w.exec(ctx, tx, `DELETE FROM `+t+` WHERE content_address = $1 AND backend_id = $2`,
					o.ContentAddress.String(), o.BackendID); err != nil {
					return true, err
				}
			}
		}
		return true, nil
	case TypeScrubVerified, TypeScrubCorrupt, TypeScrubRepaired:
		return true, w.applyScrub(ctx, tx, ev, at)
	}
	return false, nil
}

// recollect handles a claim that failed in IngestFiles' transaction: it
// waits for tombstoned objects to be deleted, then stores the inputs whose
// bytes are gone once more (Reopen), checked against the digest they had.
func (r *Registry) recollect(ctx context.Context, ref ref.Ref, in []Input, results []*dataplane.IngestResult, retry *claimRetry, attempt int, opts BatchOptions) error {
	if attempt >= maxClaimAttempts {
		return fmt.Errorf("%w: ingest into %s: its objects were garbage-collected %d times while it ran; retry", ErrConflict, ref, attempt)
	}
	if err := r.settle(ctx, retry, r.dp.BackendID()); err != nil {
		return err
	}
	if len(retry.gone) == 0 {
		return nil
	}
	for _, i := range retry.gone {
		if !in[i].Reopen {
			return fmt.Errorf("%w: %s: object %s was garbage-collected while this ingest stored it; store it again",
				ErrConflict, in[i].Path, results[i].Sum.BLAKE3)
		}
		s := results[i].Sum
		in[i].Expect = &s
	}
	r.hook("ingest.store")
	return r.storeAll(ctx, ref, in, retry.gone, max(opts.Workers, 1), results)
}

// commitObject is StoreObject's transaction: record the object, claiming
// it against a concurrent collection first.
func (r *Registry) commitObject(ctx context.Context, res dataplane.IngestResult) error {
	for attempt := 1; ; attempt++ {
		var c claim
		repaired, err := r.repairCandidates(ctx, []*dataplane.IngestResult{&res})
		if err != nil {
			return err
		}
		err = r.mutate(ctx, func(tx *sql.Tx, emit func(string, any) (events.Event, error)) error {
			var err error
			if c, err = r.claimObject(ctx, tx, emit, res.Sum.BLAKE3, res.Receipt.BackendID); err != nil {
				return err
			}
			if c != claimLive {
				return errClaim
			}
			if err := noteRepair(ctx, tx, emit, res.Sum.BLAKE3, res.Receipt.BackendID, repaired); err != nil {
				return err
			}
			_, err = emit(TypeObjectStored, objectStored{Location: locationOf(res)})
			return err
		})
		switch {
		case !errors.Is(err, errClaim):
			return err
		case c == claimGone || attempt >= maxClaimAttempts:
			return fmt.Errorf("%w: object %s was garbage-collected while it was stored; store it again", ErrConflict, res.Sum.BLAKE3)
		}
		if err := r.waitNotDeleting(ctx, res.Sum.BLAKE3, res.Receipt.BackendID); err != nil {
			return err
		}
	}
}
