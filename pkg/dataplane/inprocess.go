package dataplane

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"

	"github.com/artifactstore/artifact-store/pkg/identity"
	"github.com/artifactstore/artifact-store/pkg/storage"
	"github.com/artifactstore/artifact-store/pkg/storage/local"
)

// chunk is the size of the pieces IngestStream reads and hands to the
// hasher and the backend writer: large enough that BLAKE3 runs at full speed
// and SHA-256 runs beside it on a second core (identity.Hasher), small
// enough that two of them in flight stay far below the memory budget.
const chunk = identity.BufferSize / 2

// smallChunk and mediumChunk are the buffers for streams declared shorter
// than them: a tree of small files is stored 16 at a time, and 16 buffers
// of 2 MiB for files of a few KiB were most of as-put's heap.
const (
	smallChunk  = 64 << 10
	mediumChunk = 512 << 10
)

// InProcess is the DataPlane that runs in the caller's process over one
// storage backend.
type InProcess struct {
	id   string
	be   storage.Backend
	bufs sync.Pool // of *[]byte, chunk bytes
	// small and medium hold smallChunk and mediumChunk buffers, for
	// streams of a known size below those.
	small, medium sync.Pool
}

var _ DataPlane = (*InProcess)(nil)

// NewInProcess returns a data plane over be, whose receipts name it
// backendID (see storage.ValidID).
func NewInProcess(backendID string, be storage.Backend) (*InProcess, error) {
	if !storage.ValidID(backendID) {
		return nil, fmt.Errorf("dataplane: invalid backend id %q", backendID)
	}
	if be == nil {
		return nil, fmt.Errorf("dataplane: nil backend")
	}
	d := &InProcess{id: backendID, be: be}
	d.bufs.New = func() any { b := make([]byte, chunk); return &b }
	d.small.New = func() any { b := make([]byte, smallChunk); return &b }
	d.medium.New = func() any { b := make([]byte, mediumChunk); return &b }
	return d, nil
}

// OpenLocal opens the local filesystem backend at root as backendID. It is
// the wiring pkg/store uses, so that no other package imports
// pkg/storage/local. With readOnly the root must exist and nothing is
// created in it. The returned close function releases the backend.
func OpenLocal(backendID, root string, readOnly bool) (*InProcess, func() error, error) {
	be, err := local.Open(root, local.Options{ID: backendID, ReadOnly: readOnly})
	if err != nil {
		return nil, nil, err
	}
	d, err := NewInProcess(backendID, be)
	if err != nil {
		be.Close()
		return nil, nil, err
	}
	return d, be.Close, nil
}

// BackendID implements DataPlane.
func (d *InProcess) BackendID() string { return d.id }

// Backend returns the storage backend the data plane writes to.
func (d *InProcess) Backend() storage.Backend { return d.be }

// IngestStream implements DataPlane. It reads r once, in chunks; each chunk
// goes to the backend writer, which hashes it (both digests, when the
// writer is a storage.Summer) while writing it. For a writer that does not
// report its digests, the chunk is also written to an identity.Hasher.
// Memory use is at most two chunks (4 MiB) per call, one for a stream that
// fits in a single chunk.
func (d *InProcess) IngestStream(ctx context.Context, r io.Reader, opts IngestOptions) (IngestResult, error) {
	w, sum, err := d.stage(ctx, r, opts)
	if err != nil {
		return IngestResult{}, err
	}
	if err := w.Commit(ctx, sum.BLAKE3); err != nil {
		return IngestResult{}, fmt.Errorf("dataplane: ingest: %w", err)
	}
	return d.result(sum), nil
}

// Source is one stream of a batch: how to open it, and what to expect of it.
type Source struct {
	Open func() (io.ReadCloser, error) // called at most once
	Opts IngestOptions
}

// IngestBatch ingests many streams with the guarantees of IngestStream for
// each: workers of them are read, hashed and written at once, then all are
// committed together, sharing one durability barrier when the backend is a
// storage.BatchCommitter (two syncfs calls for the batch instead of two
// fsync rounds per object). errs[i] is srcs[i]'s failure, if any; results
// of failed sources are zero. Once one source fails, sources not yet
// started are not started and fail with context.Canceled.
func (d *InProcess) IngestBatch(ctx context.Context, srcs []Source, workers int) ([]IngestResult, []error) {
	results := make([]IngestResult, len(srcs))
	errs := make([]error, len(srcs))
	staged := make([]storage.Writer, len(srcs))
	sums := make([]identity.Sum, len(srcs))
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(max(workers, 1), len(srcs)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				w, sum, err := d.stageSource(sctx, srcs[i])
				if err != nil {
					errs[i] = err
					cancel()
					continue
				}
				staged[i], sums[i] = w, sum
			}
		}()
	}
	for i := range srcs {
		if sctx.Err() != nil {
			errs[i] = fmt.Errorf("dataplane: ingest: %w", context.Canceled)
			continue
		}
		next <- i
	}
	close(next)
	wg.Wait()

	var ws []storage.Writer
	var addrs []identity.Digest
	var idx []int
	for i, w := range staged {
		if w != nil {
			ws, addrs, idx = append(ws, w), append(addrs, sums[i].BLAKE3), append(idx, i)
		}
	}
	var cerrs []error
	if bc, ok := d.be.(storage.BatchCommitter); ok {
		cerrs = bc.CommitBatch(ctx, ws, addrs)
	} else {
		cerrs = make([]error, len(ws))
		for k, w := range ws {
			cerrs[k] = w.Commit(ctx, addrs[k])
		}
	}
	for k, i := range idx {
		if cerrs[k] != nil {
			errs[i] = fmt.Errorf("dataplane: ingest: %w", cerrs[k])
			continue
		}
		results[i] = d.result(sums[i])
	}
	return results, errs
}

func (d *InProcess) stageSource(ctx context.Context, src Source) (storage.Writer, identity.Sum, error) {
	r, err := src.Open()
	if err != nil {
		return nil, identity.Sum{}, err
	}
	defer r.Close()
	return d.stage(ctx, r, src.Opts)
}

func (d *InProcess) result(sum identity.Sum) IngestResult {
	key, err := storage.Key(sum.BLAKE3)
	if err != nil {
		panic(err) // cannot happen: a BLAKE3 digest always has a key
	}
	return IngestResult{Sum: sum, Receipt: Receipt{BackendID: d.id, Address: sum.BLAKE3, Key: key}}
}

// stage reads r once into a new backend writer, hashing it, and checks it
// against opts.Expect. It returns the writer, not yet committed, and the
// dual digest; on error the writer is cancelled and nothing is left.
func (d *InProcess) stage(ctx context.Context, r io.Reader, opts IngestOptions) (_ storage.Writer, _ identity.Sum, err error) {
	if err := opts.Expect.validate(); err != nil {
		return nil, identity.Sum{}, err
	}
	w, err := d.be.Create(ctx)
	if err != nil {
		return nil, identity.Sum{}, fmt.Errorf("dataplane: ingest: %w", err)
	}
	defer func() {
		if err != nil {
			w.Cancel(context.WithoutCancel(ctx))
		}
	}()
	summer, ok := w.(storage.Summer)
	var h *identity.Hasher
	if !ok {
		h = identity.NewHasher()
	}
	limit := int64(-1)
	if x := opts.Expect; x != nil && x.SizeKnown {
		limit = x.Size
	}
	var n int64
	rerr := d.readChunks(ctx, r, limit, func(b []byte) error {
		n += int64(len(b))
		if limit >= 0 && n > limit {
			// Longer than expected: stop now rather than store and hash
			// the rest of a possibly endless stream.
			return &ExpectError{What: "size", Want: fmt.Sprint(limit), Got: fmt.Sprintf("more than %d", limit)}
		}
		if h != nil {
			h.Write(b)
		}
		if _, err := w.Write(b); err != nil {
			return fmt.Errorf("dataplane: ingest: %w", err)
		}
		return nil
	})
	if rerr != nil {
		return nil, identity.Sum{}, rerr
	}
	var sum identity.Sum
	if h != nil {
		sum = h.Sum()
	} else {
		sum = summer.Sum()
	}
	if sum.Size != n {
		return nil, identity.Sum{}, fmt.Errorf("dataplane: ingest: backend hashed %d bytes of %d read", sum.Size, n)
	}
	if err := opts.Expect.check(sum); err != nil {
		return nil, identity.Sum{}, err
	}
	return w, sum, nil
}

// readChunks reads r to EOF in chunks and calls fn with each, in order,
// until fn or a read fails. A stream longer than one chunk is read ahead
// into a second buffer on another goroutine while fn works on the current
// one, so reading overlaps hashing and writing. readChunks returns only when
// that goroutine is done with r: nothing touches r after it returns. size
// is the declared length (-1: unknown); a stream declared shorter than
// smallChunk or mediumChunk is read through a buffer of that size.
func (d *InProcess) readChunks(ctx context.Context, r io.Reader, size int64, fn func([]byte) error) error {
	// A longer stream than declared still works: its later pieces are
	// read into chunks.
	pool := &d.bufs
	switch {
	case size < 0:
	case size < smallChunk:
		pool = &d.small
	case size < mediumChunk:
		pool = &d.medium
	}
	bp := pool.Get().(*[]byte)
	defer pool.Put(bp)
	k, err := io.ReadFull(r, *bp)
	if k > 0 || err == nil {
		if ferr := fn((*bp)[:k]); ferr != nil {
			return ferr
		}
	}
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return nil // it all fitted in one chunk
	}
	if err != nil {
		return fmt.Errorf("dataplane: ingest: reading the stream: %w", err)
	}

	bp2 := d.bufs.Get().(*[]byte)
	defer d.bufs.Put(bp2)
	type piece struct {
		b   []byte
		err error
	}
	free := make(chan []byte, 2)
	ready := make(chan piece, 2)
	free <- *bp
	free <- *bp2
	var quit atomic.Bool
	go func() {
		defer close(ready)
		for b := range free {
			if quit.Load() {
				return
			}
			k, err := io.ReadFull(r, b)
			ready <- piece{b[:k], err}
			if err != nil {
				return
			}
		}
	}()
	stop := func() {
		quit.Store(true)
		close(free)
		for range ready { // wait until the reader is done with r
		}
	}
	for p := range ready {
		if err := ctx.Err(); err != nil {
			stop()
			return fmt.Errorf("dataplane: ingest: %w", err)
		}
		if len(p.b) > 0 {
			if err := fn(p.b); err != nil {
				stop()
				return err
			}
		}
		switch {
		case p.err == io.EOF || p.err == io.ErrUnexpectedEOF:
			stop()
			return nil
		case p.err != nil:
			stop()
			return fmt.Errorf("dataplane: ingest: reading the stream: %w", p.err)
		}
		free <- p.b[:cap(p.b)]
	}
	return nil // not reached: the reader always ends with an error or EOF
}

// ServeObject implements DataPlane.
func (d *InProcess) ServeObject(ctx context.Context, addr identity.Digest, offset, length int64) (io.ReadCloser, error) {
	rc, err := d.be.Get(ctx, addr, offset, length)
	if err != nil {
		return nil, fmt.Errorf("dataplane: serve: %w", err)
	}
	return rc, nil
}

// VerifyObject implements DataPlane.
func (d *InProcess) VerifyObject(ctx context.Context, addr identity.Digest) (identity.Sum, error) {
	switch addr.Algorithm() {
	case identity.BLAKE3, identity.SHA256:
	default:
		return identity.Sum{}, fmt.Errorf("dataplane: verify: %w: cannot verify a %q address", ErrInvalidKey, string(addr.Algorithm()))
	}
	rc, err := d.be.Get(ctx, addr, 0, -1)
	if err != nil {
		return identity.Sum{}, fmt.Errorf("dataplane: verify: %w", err)
	}
	defer rc.Close()
	bp := d.bufs.Get().(*[]byte)
	defer d.bufs.Put(bp)
	sum, err := identity.SumReaderBuffer(rc, *bp)
	if err != nil {
		return identity.Sum{}, fmt.Errorf("dataplane: verify %s: %w", addr, err)
	}
	got := sum.BLAKE3
	if addr.Algorithm() == identity.SHA256 {
		got = sum.SHA256
	}
	if got != addr {
		return sum, fmt.Errorf("dataplane: verify: stored object is corrupt: %w", &storage.MismatchError{Want: addr, Got: got, Size: sum.Size})
	}
	if info, err := d.be.Head(ctx, addr); err == nil && info.Size != sum.Size {
		return sum, fmt.Errorf("dataplane: verify %s: read %d bytes of a %d-byte object", addr, sum.Size, info.Size)
	} else if err != nil && !errors.Is(err, ErrNotFound) {
		return sum, fmt.Errorf("dataplane: verify: %w", err)
	}
	return sum, nil
}

// StatObject implements DataPlane.
func (d *InProcess) StatObject(ctx context.Context, addr identity.Digest) (storage.Info, error) {
	info, err := d.be.Head(ctx, addr)
	if err != nil {
		return storage.Info{}, fmt.Errorf("dataplane: stat: %w", err)
	}
	return info, nil
}

// DeleteObject implements DataPlane.
func (d *InProcess) DeleteObject(ctx context.Context, addr identity.Digest) error {
	if err := d.be.Delete(ctx, addr); err != nil {
		return fmt.Errorf("dataplane: delete: %w", err)
	}
	return nil
}
