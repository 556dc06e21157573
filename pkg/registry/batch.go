package registry

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"

	"github.com/artifactstore/artifact-store/pkg/dataplane"
	"github.com/artifactstore/artifact-store/pkg/events"
	"github.com/artifactstore/artifact-store/pkg/identity"
	"github.com/artifactstore/artifact-store/pkg/records"
	"github.com/artifactstore/artifact-store/pkg/ref"
)

// Input is one file for IngestFiles.
type Input struct {
	Path   string                        // path in the package
	Open   func() (io.ReadCloser, error) // opens the bytes; called at most once
	Expect *identity.Sum                 // declared digest (an as-digest record), or nil
	// Reopen says Open may be called again: to store the bytes once more
	// when a garbage-collection sweep deleted the object they were found
	// to duplicate (docs/adr/0011). Without it such an ingest fails with
	// ErrConflict and can simply be re-run.
	Reopen bool
	// Stored, for ImportPackage, says the bytes are already an object of
	// this store with this dual digest (an OCI blob, verified as it was
	// pushed): they are not read again, only claimed in the transaction.
	// Open is called only if a sweep deleted the object meanwhile.
	Stored *identity.Sum
}

// BatchOptions tune IngestFiles.
type BatchOptions struct {
	// Replace lets a path already in the open package get new bytes.
	Replace bool
	// Workers is how many files are read, hashed and made durable at once
	// (at least 1). Object fsyncs of different files overlap, so more
	// workers than cores pays off on slow disks.
	Workers int
	// after, if not nil, holds the transaction back until it is closed
	// (Put: batches commit in order while the next one's bytes are stored).
	after <-chan struct{}
}

// IngestFiles stores the inputs into the open package as one operation:
//
//  1. every path is checked (valid, not twice in the batch, not refused by
//     the package) before any byte is stored;
//  2. the bytes of all inputs are made durable by the data plane, Workers at
//     a time, each verified against its Expect;
//  3. one transaction appends a v1.file.ingested event per stored file and
//     updates the views.
//
// A path that already holds exactly the declared bytes is Unchanged:
// nothing is stored or recorded for it, so re-running an interrupted ingest
// completes it. If some inputs fail in step 2, the ones that succeeded are
// still recorded in step 3 and the first failure is returned; the package
// stays open and consistent. Results are in input order.
func (r *Registry) IngestFiles(ctx context.Context, ref ref.Ref, in []Input, opts BatchOptions) ([]Ingested, error) {
	seen := make(map[string]int, len(in))
	for i, f := range in {
		if err := records.CheckPath(f.Path); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
		}
		if j, dup := seen[f.Path]; dup {
			return nil, fmt.Errorf("%w: inputs %d and %d both name %q", ErrInvalid, j+1, i+1, f.Path)
		}
		seen[f.Path] = i
	}
	paths := make([]string, len(in))
	for i, f := range in {
		paths[i] = f.Path
	}
	// Refuse early, before any byte is stored.
	p, err := lookupPackage(ctx, r.db.SQL, ref)
	if err != nil {
		return nil, err
	}
	have, err := lookupFiles(ctx, r.db.SQL, r.db.Dialect(), ref, paths)
	if err != nil {
		return nil, err
	}
	if err := checkTree(ctx, r.db.SQL, r.db.Dialect(), ref, paths, have); err != nil {
		return nil, err
	}
	out := make([]Ingested, len(in))
	todo := make([]int, 0, len(in))
	for i, f := range in {
		existing, err := decide(p, fileOrNil(have, f.Path), f.Path, f.Expect, opts.Replace)
		if err != nil {
			return nil, err
		}
		if existing != nil && f.Expect != nil && existing.Sum() == *f.Expect {
			out[i] = Ingested{File: *existing, Unchanged: true}
			continue
		}
		todo = append(todo, i)
	}

	results := make([]*dataplane.IngestResult, len(in))
	r.hook("ingest.store")
	firstErr := r.storeAll(ctx, ref, in, todo, max(opts.Workers, 1), results)
	if err := r.replaceCorrupt(ctx, ref, in, todo, results, opts); err != nil {
		return nil, err
	}

	if opts.after != nil {
		select {
		case <-opts.after:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
	}
	for attempt := 1; ; attempt++ {
		var retry claimRetry
		var repaired map[identity.Digest]bool
		if repaired, err = r.repairCandidates(ctx, results); err != nil {
			break
		}
		r.hook("ingest.commit")
		err = r.mutateWith(ctx, true, func(tx *sql.Tx, emit func(string, any) (events.Event, error)) error {
			return r.commitIngest(ctx, tx, emit, ref, in, todo, results, out, opts, &retry, repaired)
		})
		if !errors.Is(err, errClaim) {
			break
		}
		if err = r.recollect(ctx, ref, in, results, &retry, attempt, opts); err != nil {
			break
		}
	}
	if err != nil {
		return nil, err
	}
	if firstErr != nil {
		return nil, firstErr
	}
	return out, nil
}

// commitIngest is the body of IngestFiles' final transaction.
func (r *Registry) commitIngest(ctx context.Context, tx *sql.Tx, emit func(string, any) (events.Event, error),
	ref ref.Ref, in []Input, todo []int, results []*dataplane.IngestResult, out []Ingested, opts BatchOptions, retry *claimRetry, repaired map[identity.Digest]bool) error {
	paths := make([]string, len(in))
	for i, f := range in {
		paths[i] = f.Path
	}
	// Decide again inside the transaction: another writer may have
	// finalised the package or filled a path meanwhile.
	p, err := lookupPackage(ctx, tx, ref)
	if err != nil {
		return err
	}
	have, err := lookupFiles(ctx, tx, r.db.Dialect(), ref, paths)
	if err != nil {
		return err
	}
	if err := checkTree(ctx, tx, r.db.Dialect(), ref, paths, have); err != nil {
		return err // a concurrent ingest added a conflicting path
	}
	// The GC states of the batch's objects in one read (claimObject reads
	// one at a time): with the head lock held, none changes before commit
	// except by this transaction's own revivals, which remove the state.
	var states map[string]string
	backend := r.dp.BackendID()
	if !r.naive() {
		var addrs []string
		for _, i := range todo {
			if res := results[i]; res != nil {
				addrs = append(addrs, res.Sum.BLAKE3.String())
			}
		}
		if states, err = gcStates(ctx, tx, r.db.Dialect(), backend, addrs); err != nil {
			return err
		}
	}
	for _, i := range todo {
		res := results[i]
		if res == nil {
			continue
		}
		out[i] = Ingested{File: records.FileOf(in[i].Path, res.Sum), Receipt: res.Receipt}
		prev, err := decide(p, fileOrNil(have, in[i].Path), in[i].Path, &res.Sum, opts.Replace)
		if err != nil {
			return err
		}
		if prev != nil && prev.Sum() == res.Sum {
			out[i].Unchanged = true
			continue
		}
		c, err := claimLive, error(nil)
		if res.Receipt.BackendID != backend {
			c, err = r.claimObject(ctx, tx, emit, res.Sum.BLAKE3, res.Receipt.BackendID)
		} else if st, ok := states[res.Sum.BLAKE3.String()]; ok {
			if c, err = r.claimState(ctx, emit, res.Sum.BLAKE3, res.Receipt.BackendID, st); err == nil && c == claimLive {
				delete(states, res.Sum.BLAKE3.String()) // revived: no GC state any more
			}
		}
		switch {
		case err != nil:
			return err
		case c == claimDeleting:
			retry.waitFor = append(retry.waitFor, res.Sum.BLAKE3)
			continue
		case c == claimGone:
			retry.gone = append(retry.gone, i)
			continue
		}
		if err := noteRepair(ctx, tx, emit, res.Sum.BLAKE3, res.Receipt.BackendID, repaired); err != nil {
			return err
		}
		if _, err := emit(TypeFileIngested, fileIngested{
			Name: ref.Name, Version: ref.Version, Path: in[i].Path, Replace: prev != nil,
			Location: locationOf(*res),
		}); err != nil {
			return err
		}
	}
	if !retry.empty() {
		return errClaim // roll back; IngestFiles settles and retries
	}
	return nil
}

// storeAll makes the bytes of in[todo...] durable through the data plane's
// batch ingest (workers at a time, one durability barrier for the batch),
// filling results. It returns the first real failure: other inputs that
// fail only because the batch was cancelled after it are not reported.
func (r *Registry) storeAll(ctx context.Context, ref ref.Ref, in []Input, todo []int, workers int, results []*dataplane.IngestResult) error {
	srcs := make([]dataplane.Source, len(todo))
	for k, i := range todo {
		var opts dataplane.IngestOptions
		if in[i].Expect != nil {
			opts.Expect = dataplane.ExpectedOf(*in[i].Expect)
		}
		srcs[k] = dataplane.Source{Open: in[i].Open, Opts: opts}
	}
	res, errs := r.dp.IngestBatch(ctx, srcs, workers)
	var first error
	for k, i := range todo {
		err := errs[k]
		if err == nil {
			results[i] = &res[k]
			continue
		}
		if first == nil && (ctx.Err() != nil || !errors.Is(err, context.Canceled)) {
			first = fmt.Errorf("registry: ingest %s into %s: %w", in[i].Path, ref, err)
		}
	}
	return first
}

func fileOrNil(m map[string]File, path string) *File {
	if f, ok := m[path]; ok {
		return &f
	}
	return nil
}
