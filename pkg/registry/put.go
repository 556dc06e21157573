package registry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/artifactstore/artifact-store/pkg/dataplane"
	"github.com/artifactstore/artifact-store/pkg/manifest"
	"github.com/artifactstore/artifact-store/pkg/records"
	"github.com/artifactstore/artifact-store/pkg/ref"
)

// PutOptions configure Put.
type PutOptions struct {
	// Root is the directory record paths are relative to; "" is the
	// deepest directory holding every file (manifest.Relativize).
	Root string
	// Create describes the package when Put creates it. For a package that
	// exists, a class or labels given here must be the package's own.
	Create CreateOptions
	// Replace lets a path already in the open package get new bytes.
	Replace bool
	// Workers is how many files are checked, and then stored, at once
	// (default 16).
	Workers int
	// Finalize seals the package after storing, with Declared's
	// declarations.
	Finalize bool
	Declared FinalizeOptions
	// OnBatch, if not nil, is called after each stored batch with its
	// results in record order (for receipts and progress).
	OnBatch func([]Ingested) error

	batchFiles     int    // files per batch; 0: putBatchMax (tests set it)
	beforeFinalize func() // if not nil, called just before finalisation (tests)
}

// PutResult is what Put did.
type PutResult struct {
	// Stored and Unchanged count the files stored and those already there;
	// after a Put that succeeded, each record is one of the two.
	Stored, Unchanged int
	// Manifest is the canonical manifest, with Finalize.
	Manifest []byte
}

// Batch limits of Put: one transaction (one durability barrier of the
// database, two of the local backend) per batch while the batch's bytes
// are stored in parallel, and two batches in flight (putBatches). 2,048
// files: against 1,024 one at a time, on the 20,000-file tree, half the
// syncfs barriers and fsyncs and 30% fewer database page writes (a page
// that every batch dirties is written once per commit), with the barriers
// of one batch overlapping the next one's reads. A batch keeps its files'
// temporary files open until it commits, so it also stays within the
// process's descriptor limit (putBatchMax).
const (
	putBatchFiles = 2048
	putBatchBytes = 256 << 20
)

// putBatchMax is the most files one batch of Put takes. Two batches are
// in flight (putBatches), each holding up to one descriptor per file for
// its temporary files and about as many for the directories it commits
// into: together under half the limit.
func putBatchMax() int { return max(1, min(putBatchFiles, openFileLimit()/8)) }

// Put stores the files that records name into the package ref (a version),
// creating it if absent, and with Finalize seals it: the workflow of
// as-put, shared by every program that embeds the library.
//
// Nothing is touched before every record is checked: paths are made
// relative to Root and checked as package paths, no two records may name
// one package path, and every named file must exist and be a regular file.
// Files are then stored in batches; each file is verified against its
// record while stored (a file changed since it was digested stores nothing
// and is reported). A failure leaves the package open and consistent, and
// the same Put again completes it without storing anything twice. Put of a
// package it already finalised, with the same files and declarations,
// returns the same manifest bytes; with other declarations it fails with
// ErrConflict naming what differs.
func (r *Registry) Put(ctx context.Context, pkg ref.Ref, recs []records.File, opts PutOptions) (PutResult, error) {
	// Put holds the records, and the OnBatch callback that may capture
	// them, only while putFiles runs: a parameter that a function keeps
	// using stays reachable until it returns, and the records of a large
	// tree (some 50 MB for 200,000 files) would otherwise stay in memory
	// beside the manifest that finalisation builds
	// (TestPutFreesRecordsBeforeFinalize).
	res, err := r.putFiles(ctx, pkg, recs, opts)
	if err != nil || !opts.Finalize {
		return res, err
	}
	opts.OnBatch = nil // nor what the caller's callback holds
	if opts.beforeFinalize != nil {
		opts.beforeFinalize()
	}
	return r.finalizePut(ctx, pkg, res, opts)
}

// putFiles is Put up to finalisation.
func (r *Registry) putFiles(ctx context.Context, pkg ref.Ref, recs []records.File, opts PutOptions) (PutResult, error) {
	var res PutResult
	if err := checkVersionRef(pkg); err != nil {
		return res, err
	}
	if len(recs) == 0 {
		return res, fmt.Errorf("%w: no file records; nothing stored", ErrInvalid)
	}
	given := make([]string, len(recs))
	for i, f := range recs {
		given[i] = f.Path
	}
	rel, _, err := manifest.Relativize(opts.Root, given)
	if err != nil {
		return res, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	seen := make(map[string]int, len(rel))
	for i, p := range rel {
		if j, dup := seen[p]; dup {
			return res, fmt.Errorf("%w: records %d and %d both name %q in the package; nothing stored", ErrInvalid, j+1, i+1, p)
		}
		seen[p] = i
	}
	workers := opts.Workers
	if workers < 1 {
		workers = 16
	}
	if err := checkRegularFiles(recs, workers); err != nil {
		return res, err
	}

	switch err := r.CreatePackage(ctx, pkg, opts.Create); {
	case errors.Is(err, ErrExists):
		p, err := r.GetPackage(ctx, pkg)
		if err != nil {
			return res, err
		}
		if diff := createDiff(p, opts.Create); diff != "" {
			return res, fmt.Errorf("%w: %s exists with other declarations: %s", ErrConflict, pkg, diff)
		}
	case err != nil:
		return res, err
	}

	if err := r.putBatches(ctx, pkg, recs, rel, workers, opts, &res); err != nil {
		return res, err
	}
	return res, nil
}

// finalizePut seals the package after putFiles; res holds putFiles'
// counts, one per record.
func (r *Registry) finalizePut(ctx context.Context, pkg ref.Ref, res PutResult, opts PutOptions) (PutResult, error) {
	n := res.Stored + res.Unchanged // one per record
	mb, err := r.FinalizePackage(ctx, pkg, opts.Declared)
	if errors.Is(err, ErrPackageFinalized) && res.Stored == 0 {
		// Re-running a command that already finished: the same bytes back,
		// if it declares the same.
		if mb, err = r.GetManifestBytes(ctx, pkg, records.CBOR); err != nil {
			return res, err
		}
		m, err := manifest.Decode(mb)
		if err != nil {
			return res, err
		}
		if diff := finalizeDiff(m, n, opts); diff != "" {
			return res, fmt.Errorf("%w: %s is finalised with other declarations: %s (a finalised version never changes; use a new version)", ErrConflict, pkg, diff)
		}
	} else if err != nil {
		return res, err
	}
	res.Manifest = mb
	return res, nil
}

// checkRegularFiles checks that every record names a regular file, with up
// to workers stat calls at once (on a network file system each one waits
// for a round trip; on a local one the calls spread over the cores), and
// returns the error of the first record, in record order, that fails.
// Records are handed out in order, so once one fails no record after it
// is checked, and every record before it has been.
func checkRegularFiles(recs []records.File, workers int) error {
	var (
		next, lowest atomic.Int64 // the next record to check; the first failure
		mu           sync.Mutex
		first        error
		wg           sync.WaitGroup
	)
	lowest.Store(int64(len(recs)))
	for range max(1, min(workers, len(recs))) {
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= lowest.Load() {
					return
				}
				f := recs[i]
				var err error
				if fi, serr := os.Stat(f.Path); serr != nil {
					err = fmt.Errorf("record %d: %w; nothing stored", i+1, serr)
				} else if !fi.Mode().IsRegular() {
					err = fmt.Errorf("%w: record %d: %s is not a regular file; nothing stored", ErrInvalid, i+1, f.Path)
				}
				if err != nil {
					mu.Lock()
					if i < lowest.Load() {
						lowest.Store(i)
						first = err
					}
					mu.Unlock()
					return
				}
			}
		})
	}
	wg.Wait()
	return first
}

// putBatches stores the records in batches, two in flight: while one
// batch's transaction runs (serial, and on the local disk behind its
// durability barriers), the next one's files are read, hashed and written.
// The transactions run in record order, each after the one before has
// ended; results reach OnBatch in that order. The first failure cancels
// the batch behind it and is returned once that batch has stopped; what
// committed stays committed, as with one batch at a time.
func (r *Registry) putBatches(ctx context.Context, pkg ref.Ref, recs []records.File, rel []string, workers int, opts PutOptions, res *PutResult) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type flight struct {
		done chan struct{} // closed when IngestFiles has returned
		out  []Ingested
		err  error
	}
	report := func(f *flight) error {
		<-f.done
		if f.err != nil {
			return explainMismatch(f.err)
		}
		for _, d := range f.out {
			if d.Unchanged {
				res.Unchanged++
			} else {
				res.Stored++
			}
		}
		if opts.OnBatch != nil {
			return opts.OnBatch(f.out)
		}
		return nil
	}
	maxFiles := opts.batchFiles
	if maxFiles <= 0 {
		maxFiles = putBatchMax()
	}
	var prev *flight
	for start := 0; start < len(recs); {
		end := putBatchEnd(recs, start, maxFiles)
		batch := make([]Input, 0, end-start)
		for i := start; i < end; i++ {
			batch = append(batch, recordInput(rel[i], recs[i]))
		}
		f := &flight{done: make(chan struct{})}
		bo := BatchOptions{Replace: opts.Replace, Workers: workers}
		if prev != nil {
			bo.after = prev.done
		}
		go func() {
			defer close(f.done)
			f.out, f.err = r.IngestFiles(ctx, pkg, batch, bo)
		}()
		if prev != nil {
			if err := report(prev); err != nil {
				cancel()
				<-f.done
				return err
			}
		}
		prev, start = f, end
	}
	if prev != nil {
		return report(prev)
	}
	return nil
}

// createDiff says how c differs from what the existing package p declares
// ("" if it does not): a class or labels given must be p's.
func createDiff(p Package, c CreateOptions) string {
	var d []string
	if c.RetentionClass != "" && c.RetentionClass != p.RetentionClass {
		d = append(d, fmt.Sprintf("retention class %q, not %q", p.RetentionClass, c.RetentionClass))
	}
	if len(c.Labels) > 0 && !maps.Equal(c.Labels, p.Labels) {
		d = append(d, fmt.Sprintf("labels %s, not %s", kvText(p.Labels), kvText(c.Labels)))
	}
	return strings.Join(d, "; ")
}

// finalizeDiff says how a re-run's declarations differ from the manifest m
// of the finished package.
func finalizeDiff(m manifest.Manifest, files int, o PutOptions) string {
	var d []string
	if files != len(m.Files) {
		d = append(d, fmt.Sprintf("%d files, not %d", len(m.Files), files))
	}
	if o.Declared.CreatedAt != m.Package.CreatedAt {
		d = append(d, fmt.Sprintf("created_at %q, not %q", m.Package.CreatedAt, o.Declared.CreatedAt))
	}
	if !maps.Equal(o.Declared.Facts, m.Provenance.Facts) {
		d = append(d, fmt.Sprintf("facts %s, not %s", kvText(m.Provenance.Facts), kvText(o.Declared.Facts)))
	}
	if len(o.Create.Labels) > 0 && !maps.Equal(o.Create.Labels, m.Package.Labels) {
		d = append(d, fmt.Sprintf("labels %s, not %s", kvText(m.Package.Labels), kvText(o.Create.Labels)))
	}
	if o.Create.RetentionClass != "" && o.Create.RetentionClass != m.Retention.Class {
		d = append(d, fmt.Sprintf("retention class %q, not %q", m.Retention.Class, o.Create.RetentionClass))
	}
	return strings.Join(d, "; ")
}

// kvText renders a label or fact map for a message, keys sorted, values
// quoted.
func kvText(m map[string]string) string {
	if len(m) == 0 {
		return "{}"
	}
	var b strings.Builder
	b.WriteByte('{')
	for i, k := range slices.Sorted(maps.Keys(m)) {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s=%q", k, m[k])
	}
	b.WriteByte('}')
	return b.String()
}

func putBatchEnd(recs []records.File, start, maxFiles int) int {
	var bytes uint64
	end := start
	for end < len(recs) && end-start < maxFiles && (end == start || bytes+recs[end].Size <= putBatchBytes) {
		bytes += recs[end].Size
		end++
	}
	return end
}

// recordInput is the input for a record: the file it names, verified
// against the digests it declares.
func recordInput(path string, f records.File) Input {
	want := f.Sum()
	return Input{
		Path:   path,
		Expect: &want,
		Open:   func() (io.ReadCloser, error) { return openFile(f.Path) },
		Reopen: true, // a file can be read again if GC deleted its object meanwhile
	}
}

// explainMismatch turns a digest mismatch into the message a user needs.
func explainMismatch(err error) error {
	var ee *dataplane.ExpectError
	if errors.As(err, &ee) {
		return fmt.Errorf("%w\n(a file changed since it was digested: its %s was %s in the record and is %s now; nothing was stored for it)", err, ee.What, ee.Want, ee.Got)
	}
	return err
}
