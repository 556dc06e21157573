package registry

// Scrubbing (DESIGN.md §14, docs/adr/0011-garbage-collection.md "Scrub"):
// re-read stored objects through the data plane, check both digests and the
// size against what the log recorded, and record each result as an event.
// object_checks (the view of v1.scrub.* events) is what as-get and as-health
// consult: a known-corrupt object is never served as good.

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync"
	"time"

	"github.com/artifactstore/artifact-store/pkg/dataplane"
	"github.com/artifactstore/artifact-store/pkg/db"
	"github.com/artifactstore/artifact-store/pkg/events"
	"github.com/artifactstore/artifact-store/pkg/identity"
	"github.com/artifactstore/artifact-store/pkg/ref"
)

// ScrubOptions select and pace the objects Scrub re-reads.
type ScrubOptions struct {
	// Sample, if in (0, 100), scrubs about that percentage of the selected
	// objects, chosen at random each run; 0 or 100 scrubs all of them.
	Sample float64
	// OlderThan, if positive, selects only objects not verified within
	// that duration before Now (never-checked and corrupt objects whose
	// last check is older are included).
	OlderThan time.Duration
	// Limit, if positive, stops after that many objects.
	Limit int
	// Workers is how many objects are read at once (default: half the
	// CPUs, at least 1: each object's two digests already keep two cores
	// busy).
	Workers int
	// Batch is how many verified objects one v1.scrub.verified event
	// carries (default 1000).
	Batch int
	// OnObject, if set, is called once per scrubbed object with its
	// result, from one goroutine at a time.
	OnObject func(ScrubObject)
	// Presence checks only that each object exists with its recorded size
	// (a stat, no read): a fast check of a restored copy. A missing or
	// wrong-sized object is recorded corrupt as in a full scrub; present
	// objects count as Verified in the result but are not recorded as
	// verified, since their bytes were not re-hashed.
	Presence bool
}

// ScrubObject is the result of re-reading one object.
type ScrubObject struct {
	Address   identity.Digest
	BackendID string
	Size      int64 // as recorded
	Corrupt   bool
	Detail    string // what differed, for a corrupt object
}

// ScrubResult counts what Scrub did.
type ScrubResult struct {
	Objects  int64 // scrubbed
	Bytes    int64 // recorded size of the scrubbed objects
	Verified int64
	Corrupt  int64
}

// ScrubSummary is the record that ends a scrub's output (as-scrub): the
// result and how long it took in whole milliseconds. Every field is in the
// canonical CBOR data model (no floats), so the record can be written as
// CBOR as well as JSON.
type ScrubSummary struct {
	Summary      bool   `cbor:"summary" json:"summary"`
	Objects      uint64 `cbor:"objects" json:"objects"`
	Bytes        uint64 `cbor:"bytes" json:"bytes"`
	Verified     uint64 `cbor:"verified" json:"verified"`
	Corrupt      uint64 `cbor:"corrupt" json:"corrupt"`
	Milliseconds uint64 `cbor:"milliseconds" json:"milliseconds"`
}

// Summary is the summary record of res for a scrub that took elapsed.
func (res ScrubResult) Summary(elapsed time.Duration) ScrubSummary {
	return ScrubSummary{Summary: true, Objects: uint64(res.Objects), Bytes: uint64(res.Bytes),
		Verified: uint64(res.Verified), Corrupt: uint64(res.Corrupt), Milliseconds: uint64(max(elapsed.Milliseconds(), 0))}
}

// scrubTarget is one object selected for scrubbing, as storage_locations
// records it.
type scrubTarget struct {
	addr   identity.Digest
	sha256 string // hex
	size   int64
}

// Scrub re-reads the registry backend's stored objects that opts selects,
// re-digests each (BLAKE3 and SHA-256) and compares both digests and the
// size with its storage location. Verified objects are recorded in
// v1.scrub.verified events of up to Batch objects; each corrupt or missing
// object gets its own v1.scrub.corrupt event naming what differed. Objects
// a sweep is deleting or has deleted are skipped, and a result is recorded
// only if the object's location still exists when its event commits, so a
// concurrent GC never makes a deleted object look corrupt. A failure to read
// that is neither a mismatch nor a missing object (the backend is
// unreachable) stops the scrub with that error; what was recorded stays.
func (r *Registry) Scrub(ctx context.Context, opts ScrubOptions) (ScrubResult, error) {
	var res ScrubResult
	targets, err := r.scrubTargets(ctx, opts)
	if err != nil {
		return res, err
	}
	workers := opts.Workers
	if workers < 1 {
		workers = max(1, runtime.GOMAXPROCS(0)/2)
	}
	batch := opts.Batch
	if batch < 1 {
		batch = 1000
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type outcome struct {
		t      scrubTarget
		detail string // "" = verified
		err    error
	}
	next := make(chan scrubTarget)
	out := make(chan outcome)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for t := range next {
				check := r.scrubOne
				if opts.Presence {
					check = r.presenceOne
				}
				detail, err := check(ctx, t)
				select {
				case out <- outcome{t, detail, err}:
				case <-ctx.Done():
					return
				}
			}
		}()
	}
	go func() {
		defer close(next)
		for _, t := range targets {
			select {
			case next <- t:
			case <-ctx.Done():
				return
			}
		}
	}()
	go func() { wg.Wait(); close(out) }()

	backend := r.dp.BackendID()
	var pending []scrubObject
	flush := func() error {
		if len(pending) == 0 {
			return nil
		}
		err := r.recordVerified(ctx, pending)
		pending = pending[:0]
		return err
	}
	var first error
	for o := range out {
		if first != nil {
			continue // drain
		}
		if o.err != nil {
			first = o.err
			cancel()
			continue
		}
		so := ScrubObject{Address: o.t.addr, BackendID: backend, Size: o.t.size, Corrupt: o.detail != "", Detail: o.detail}
		if so.Corrupt {
			if err := r.recordCorrupt(ctx, scrubCorrupt{ContentAddress: o.t.addr, BackendID: backend, Detail: o.detail}); err != nil {
				first = err
				cancel()
				continue
			}
			res.Corrupt++
		} else if opts.Presence {
			res.Verified++
		} else {
			pending = append(pending, scrubObject{ContentAddress: o.t.addr, BackendID: backend, Size: uint64(o.t.size)})
			res.Verified++
			if len(pending) >= batch {
				if err := flush(); err != nil {
					first = err
					cancel()
					continue
				}
			}
		}
		res.Objects++
		res.Bytes += o.t.size
		if opts.OnObject != nil {
			opts.OnObject(so)
		}
	}
	if first == nil {
		first = flush()
	}
	if first == nil && ctx.Err() != nil {
		first = ctx.Err()
	}
	return res, first
}

// scrubTargets selects the objects to scrub, in content-address order.
func (r *Registry) scrubTargets(ctx context.Context, opts ScrubOptions) ([]scrubTarget, error) {
	if opts.Sample < 0 || opts.Sample > 100 {
		return nil, fmt.Errorf("%w: scrub sample %v%% is not between 0 and 100", ErrInvalid, opts.Sample)
	}
	// Times are compared in Go: their text form (RFC 3339, trailing zeros
	// dropped) does not sort as the times do within a second.
	q := `SELECT l.content_address, l.digest_sha256, l.size, c.checked_at FROM storage_locations l
		LEFT JOIN object_checks c ON c.content_address = l.content_address AND c.backend_id = l.backend_id
		WHERE l.backend_id = $1
		AND NOT EXISTS (SELECT 1 FROM gc_objects g WHERE g.content_address = l.content_address
			AND g.backend_id = l.backend_id AND g.state IN ('deleting', 'deleted'))
		ORDER BY l.content_address`
	var cutoff time.Time
	if opts.OlderThan > 0 {
		cutoff = r.opts.Now().Add(-opts.OlderThan)
	}
	rows, err := r.db.SQL.QueryContext(ctx, q, r.dp.BackendID())
	if err != nil {
		return nil, fmt.Errorf("registry: scrub: select objects: %w", err)
	}
	defer rows.Close()
	var out []scrubTarget
	for rows.Next() {
		var ca string
		var checked sql.NullString
		var t scrubTarget
		if err := rows.Scan(&ca, &t.sha256, &t.size, &checked); err != nil {
			return nil, fmt.Errorf("registry: scrub: %w", err)
		}
		if !cutoff.IsZero() && checked.Valid {
			at, err := time.Parse(time.RFC3339Nano, checked.String)
			if err != nil {
				return nil, fmt.Errorf("registry: scrub: %s checked_at %q: %w", ca, checked.String, err)
			}
			if !at.Before(cutoff) {
				continue
			}
		}
		if t.addr, err = identity.Parse(ca); err != nil {
			return nil, fmt.Errorf("registry: scrub: stored address %q: %w", ca, err)
		}
		if opts.Sample > 0 && opts.Sample < 100 && rand.Float64()*100 >= opts.Sample {
			continue
		}
		out = append(out, t)
		if opts.Limit > 0 && len(out) >= opts.Limit {
			break
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("registry: scrub: %w", err)
	}
	return out, nil
}

// scrubOne re-reads one object and says what differs from its location
// ("" when both digests and the size match). err is set only when the
// object could not be read for another reason than being corrupt or
// missing.
func (r *Registry) scrubOne(ctx context.Context, t scrubTarget) (detail string, err error) {
	sum, err := r.dp.VerifyObject(ctx, t.addr)
	switch {
	case errors.Is(err, dataplane.ErrNotFound):
		return "missing: the backend has no object at this address", nil
	case errors.Is(err, dataplane.ErrDigestMismatch):
		return fmt.Sprintf("blake3: stored bytes (%d) hash to %s", sum.Size, sum.BLAKE3), nil
	case err != nil:
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
		return "", fmt.Errorf("registry: scrub %s: %w", t.addr, err)
	}
	if sum.SHA256.Hex() != t.sha256 {
		return fmt.Sprintf("sha256: stored bytes hash to %s, recorded sha256:%s", sum.SHA256, t.sha256), nil
	}
	if sum.Size != t.size {
		return fmt.Sprintf("size: stored %d bytes, recorded %d", sum.Size, t.size), nil
	}
	return "", nil
}

// presenceOne checks that one object exists with its recorded size.
func (r *Registry) presenceOne(ctx context.Context, t scrubTarget) (detail string, err error) {
	info, err := r.dp.StatObject(ctx, t.addr)
	switch {
	case errors.Is(err, dataplane.ErrNotFound):
		return "missing: the backend has no object at this address", nil
	case err != nil:
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
		return "", fmt.Errorf("registry: scrub %s: %w", t.addr, err)
	case info.Size != t.size:
		return fmt.Sprintf("size: stored %d bytes, recorded %d", info.Size, t.size), nil
	}
	return "", nil
}

// locationLive reports, inside a mutation, whether (addr, backend) still
// has a storage location that no sweep is deleting.
func locationLive(ctx context.Context, tx *sql.Tx, addr, backend string) (bool, error) {
	var n int
	err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM storage_locations l WHERE l.content_address = $1 AND l.backend_id = $2
		AND NOT EXISTS (SELECT 1 FROM gc_objects g WHERE g.content_address = l.content_address
			AND g.backend_id = l.backend_id AND g.state IN ('deleting', 'deleted'))`, addr, backend).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("registry: scrub: %w", err)
	}
	return n > 0, nil
}

// recordVerified appends one v1.scrub.verified event for the objects that
// still have a live location.
func (r *Registry) recordVerified(ctx context.Context, objs []scrubObject) error {
	return r.mutate(ctx, func(tx *sql.Tx, emit func(string, any) (events.Event, error)) error {
		keep := make([]scrubObject, 0, len(objs))
		for _, o := range objs {
			live, err := locationLive(ctx, tx, o.ContentAddress.String(), o.BackendID)
			if err != nil {
				return err
			}
			if live {
				keep = append(keep, o)
			}
		}
		if len(keep) == 0 {
			return nil
		}
		_, err := emit(TypeScrubVerified, scrubVerified{Objects: keep})
		return err
	})
}

// recordCorrupt appends a v1.scrub.corrupt event if the object still has a
// live location.
func (r *Registry) recordCorrupt(ctx context.Context, c scrubCorrupt) error {
	return r.mutate(ctx, func(tx *sql.Tx, emit func(string, any) (events.Event, error)) error {
		live, err := locationLive(ctx, tx, c.ContentAddress.String(), c.BackendID)
		if err != nil || !live {
			return err
		}
		_, err = emit(TypeScrubCorrupt, c)
		return err
	})
}

// checkNotCorrupt fails with ErrIntegrity if a scrub found the object addr
// (on the registry's backend) corrupt and it has not been repaired since.
func (r *Registry) checkNotCorrupt(ctx context.Context, addr identity.Digest) error {
	var detail string
	err := r.db.SQL.QueryRowContext(ctx, `SELECT detail FROM object_checks WHERE content_address = $1 AND backend_id = $2 AND state = 'corrupt'`,
		addr.String(), r.dp.BackendID()).Scan(&detail)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil
	case err != nil:
		return fmt.Errorf("registry: read scrub state of %s: %w", addr, err)
	}
	return corruptError(addr, detail)
}

// corruptError is the ErrIntegrity of reading an object a scrub found
// corrupt, with the scrub's detail and the way to repair it.
func corruptError(addr identity.Digest, detail string) error {
	return fmt.Errorf("%w: stored object %s is known corrupt (%s); store the same bytes again to repair it", ErrIntegrity, addr, detail)
}

// anyCorrupt reports whether a scrub found some object corrupt that is not
// repaired yet: the cheap check that keeps repair off the common path.
func (r *Registry) anyCorrupt(ctx context.Context) (bool, error) {
	var n int
	err := r.db.SQL.QueryRowContext(ctx, `SELECT COUNT(*) FROM (SELECT 1 FROM object_checks WHERE state = 'corrupt' LIMIT 1) x`).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("registry: read scrub state: %w", err)
	}
	return n > 0, nil
}

// corruptLocation returns the recorded location of addr if a scrub found
// it corrupt (ok false otherwise).
func (r *Registry) corruptLocation(ctx context.Context, addr identity.Digest, backend string) (t scrubTarget, ok bool, err error) {
	err = r.db.SQL.QueryRowContext(ctx, `SELECT l.digest_sha256, l.size FROM object_checks c
		JOIN storage_locations l ON l.content_address = c.content_address AND l.backend_id = c.backend_id
		WHERE c.content_address = $1 AND c.backend_id = $2 AND c.state = 'corrupt'`,
		addr.String(), backend).Scan(&t.sha256, &t.size)
	if errors.Is(err, sql.ErrNoRows) {
		return t, false, nil
	}
	if err != nil {
		return t, false, fmt.Errorf("registry: read scrub state of %s: %w", addr, err)
	}
	t.addr = addr
	return t, true, nil
}

// replaceCorrupt makes a re-store of a known-corrupt object replace its
// bytes even where the backend keeps an existing object as a duplicate:
// for each stored input whose object is known corrupt and still does not
// verify, the corrupt bytes are deleted and the input (Reopen) stored
// again, checked against the digest it had. The bytes deleted were corrupt
// already, so no reader loses good bytes; a crash in between leaves the
// object missing, which the object's corrupt state already says. Inputs
// that cannot be reopened are left: the object stays known corrupt and no
// repair is logged.
func (r *Registry) replaceCorrupt(ctx context.Context, ref ref.Ref, in []Input, todo []int, results []*dataplane.IngestResult, opts BatchOptions) error {
	if any, err := r.anyCorrupt(ctx); err != nil || !any {
		return err
	}
	var redo []int
	done := map[identity.Digest]bool{}
	for _, i := range todo {
		res := results[i]
		if res == nil || !in[i].Reopen || done[res.Sum.BLAKE3] {
			continue
		}
		t, ok, err := r.corruptLocation(ctx, res.Sum.BLAKE3, res.Receipt.BackendID)
		if err != nil {
			return err
		}
		if !ok {
			continue
		}
		done[res.Sum.BLAKE3] = true
		detail, err := r.scrubOne(ctx, t)
		if err != nil {
			return err
		}
		if detail == "" {
			continue // the store replaced the bytes itself
		}
		if err := r.dp.DeleteObject(ctx, res.Sum.BLAKE3); err != nil && !errors.Is(err, dataplane.ErrNotFound) {
			return fmt.Errorf("registry: replace corrupt object %s: %w", res.Sum.BLAKE3, err)
		}
		s := res.Sum
		in[i].Expect = &s
		redo = append(redo, i)
	}
	if len(redo) == 0 {
		return nil
	}
	return r.storeAll(ctx, ref, in, redo, max(opts.Workers, 1), results)
}

// repairCandidates returns, of the objects just stored (results), those a
// scrub recorded corrupt whose stored bytes now verify: storing the same
// bytes again replaced them. It reads outside any transaction; the
// transaction that commits the ingest then logs the repair (noteRepair).
func (r *Registry) repairCandidates(ctx context.Context, results []*dataplane.IngestResult) (map[identity.Digest]bool, error) {
	var out map[identity.Digest]bool
	if any, err := r.anyCorrupt(ctx); err != nil || !any {
		return nil, err // the common case: nothing is known corrupt
	}
	for _, res := range results {
		if res == nil || out[res.Sum.BLAKE3] {
			continue
		}
		t, ok, err := r.corruptLocation(ctx, res.Sum.BLAKE3, res.Receipt.BackendID)
		if err != nil {
			return nil, err
		}
		if !ok {
			continue
		}
		detail, err := r.scrubOne(ctx, t)
		if err != nil {
			return nil, err
		}
		if detail == "" {
			if out == nil {
				out = map[identity.Digest]bool{}
			}
			out[res.Sum.BLAKE3] = true
		}
	}
	return out, nil
}

// noteRepair, inside the transaction that records a stored object, logs
// v1.scrub.repaired if the object is still known corrupt and its bytes
// verified after this store (repaired, from repairCandidates).
func noteRepair(ctx context.Context, tx *sql.Tx, emit func(string, any) (events.Event, error), addr identity.Digest, backend string, repaired map[identity.Digest]bool) error {
	if !repaired[addr] {
		return nil
	}
	var state string
	err := tx.QueryRowContext(ctx, `SELECT state FROM object_checks WHERE content_address = $1 AND backend_id = $2`,
		addr.String(), backend).Scan(&state)
	if errors.Is(err, sql.ErrNoRows) || (err == nil && state != "corrupt") {
		return nil
	}
	if err != nil {
		return fmt.Errorf("registry: read scrub state of %s: %w", addr, err)
	}
	_, err = emit(TypeScrubRepaired, scrubRepaired{ContentAddress: addr, BackendID: backend})
	return err
}

// ScrubStatus is what scrubbing has recorded about one backend's stored
// objects.
type ScrubStatus struct {
	Objects    int64 // stored objects (storage locations)
	Corrupt    int64 // known corrupt and not repaired
	Unverified int64 // never scrubbed
	// Oldest is the oldest last verification among the objects; for an
	// object never scrubbed, the time of the event that stored it (its
	// bytes were digested then). Zero with no objects. Within a second
	// the order of the text times is approximate.
	Oldest time.Time
}

// ReadScrubStatus reads the scrub state of backend's objects from the
// views of d (for as-health, which opens no data plane).
func ReadScrubStatus(ctx context.Context, d *db.DB, backend string) (ScrubStatus, error) {
	var s ScrubStatus
	var oldest sql.NullString
	err := d.SQL.QueryRowContext(ctx, `SELECT COUNT(*),
		COALESCE(SUM(CASE WHEN c.state = 'corrupt' THEN 1 ELSE 0 END), 0),
		COALESCE(SUM(CASE WHEN c.state IS NULL THEN 1 ELSE 0 END), 0),
		MIN(COALESCE(c.checked_at, e.recorded_at))
		FROM storage_locations l
		LEFT JOIN object_checks c ON c.content_address = l.content_address AND c.backend_id = l.backend_id
		LEFT JOIN events e ON e.seq = l.created_seq
		WHERE l.backend_id = $1`, backend).Scan(&s.Objects, &s.Corrupt, &s.Unverified, &oldest)
	if err != nil {
		return s, fmt.Errorf("registry: read scrub status: %w", err)
	}
	if oldest.Valid {
		if s.Oldest, err = time.Parse(time.RFC3339Nano, oldest.String); err != nil {
			return s, fmt.Errorf("registry: read scrub status: time %q: %w", oldest.String, err)
		}
	}
	return s, nil
}

// ScrubStatus is ReadScrubStatus for the registry's database and backend.
func (r *Registry) ScrubStatus(ctx context.Context) (ScrubStatus, error) {
	return ReadScrubStatus(ctx, r.db, r.dp.BackendID())
}
