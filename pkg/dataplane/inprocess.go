package dataplane

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/artifactstore/artifact-store/pkg/identity"
	"github.com/artifactstore/artifact-store/pkg/storage"
	"github.com/artifactstore/artifact-store/pkg/storage/local"
)

// chunk is the size of the pieces IngestStream reads and hands to the
// hasher and the backend writer: large enough that BLAKE3 runs at full speed
// and SHA-256 runs beside it on a second core (identity.Hasher), small
// enough that two of them in flight stay far below the memory budget.
const chunk = identity.BufferSize / 2

// InProcess is the DataPlane that runs in the caller's process over one
// storage backend.
type InProcess struct {
	id   string
	be   storage.Backend
	bufs sync.Pool
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
	return d, nil
}

// FromRegistry returns a data plane over the backend registered under
// backendID.
func FromRegistry(reg *storage.Registry, backendID string) (*InProcess, error) {
	be, err := reg.Lookup(backendID)
	if err != nil {
		return nil, fmt.Errorf("dataplane: %w", err)
	}
	return NewInProcess(backendID, be)
}

// OpenLocal opens the local filesystem backend at root and registers it
// under backendID in reg (if reg is not nil). It is the wiring the tools
// use, so that no other package imports pkg/storage/local. The returned
// close function releases the backend.
func OpenLocal(reg *storage.Registry, backendID, root string) (*InProcess, func() error, error) {
	be, err := local.Open(root, local.Options{ID: backendID})
	if err != nil {
		return nil, nil, err
	}
	if reg != nil {
		if err := reg.Register(backendID, be); err != nil {
			be.Close()
			return nil, nil, err
		}
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
// Memory use is one chunk per call.
func (d *InProcess) IngestStream(ctx context.Context, r io.Reader, opts IngestOptions) (res IngestResult, err error) {
	if err := opts.Expect.validate(); err != nil {
		return res, err
	}
	w, err := d.be.Create(ctx)
	if err != nil {
		return res, fmt.Errorf("dataplane: ingest: %w", err)
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
	bp := d.bufs.Get().(*[]byte)
	defer d.bufs.Put(bp)
	buf := *bp
	limit := int64(-1)
	if x := opts.Expect; x != nil && x.SizeKnown {
		limit = x.Size
	}
	var n int64
	for {
		if err := ctx.Err(); err != nil {
			return res, fmt.Errorf("dataplane: ingest: %w", err)
		}
		k, rerr := io.ReadFull(r, buf)
		if k > 0 {
			n += int64(k)
			if limit >= 0 && n > limit {
				// Longer than expected: stop now rather than store and
				// hash the rest of a possibly endless stream.
				return res, &ExpectError{What: "size", Want: fmt.Sprint(limit), Got: fmt.Sprintf("more than %d", limit)}
			}
			if h != nil {
				h.Write(buf[:k])
			}
			if _, err := w.Write(buf[:k]); err != nil {
				return res, fmt.Errorf("dataplane: ingest: %w", err)
			}
		}
		if rerr == io.EOF || rerr == io.ErrUnexpectedEOF {
			break
		}
		if rerr != nil {
			return res, fmt.Errorf("dataplane: ingest: reading the stream: %w", rerr)
		}
	}
	var sum identity.Sum
	if h != nil {
		sum = h.Sum()
	} else {
		sum = summer.Sum()
	}
	if sum.Size != n {
		return res, fmt.Errorf("dataplane: ingest: backend hashed %d bytes of %d read", sum.Size, n)
	}
	if err := opts.Expect.check(sum); err != nil {
		return res, err
	}
	if err := w.Commit(ctx, sum.BLAKE3); err != nil {
		return res, fmt.Errorf("dataplane: ingest: %w", err)
	}
	key, err := storage.Key(sum.BLAKE3)
	if err != nil {
		return res, err // cannot happen: a BLAKE3 digest always has a key
	}
	return IngestResult{Sum: sum, Receipt: Receipt{BackendID: d.id, Address: sum.BLAKE3, Key: key}}, nil
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
