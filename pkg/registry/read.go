package registry

import (
	"context"
	"fmt"
	"hash"
	"io"

	"lukechampine.com/blake3"

	"github.com/artifactstore/artifact-store/pkg/identity"
	"github.com/artifactstore/artifact-store/pkg/storage"
)

// OpenObject returns length bytes of the object d names from offset
// (length -1: to the end). d is a blake3 content address, or a sha256
// digest as OCI tools name objects (see Resolve). A read of the whole
// object is verified as it goes: at the end of the bytes, a reader whose
// bytes do not hash to the address returns an error wrapping
// storage.ErrDigestMismatch instead of io.EOF, so a caller that copies to
// the end never takes corrupt bytes for good ones. It also returns the
// blake3 address of the object. An object a scrub found corrupt (and no
// store has repaired since) is refused with ErrIntegrity before any byte
// is read.
func (r *Registry) OpenObject(ctx context.Context, d identity.Digest, offset, length int64) (io.ReadCloser, identity.Digest, error) {
	addr, err := r.Resolve(ctx, d)
	if err != nil {
		return nil, identity.Digest{}, err
	}
	if err := r.checkNotCorrupt(ctx, addr); err != nil {
		return nil, identity.Digest{}, err
	}
	rc, err := r.dp.ServeObject(ctx, addr, offset, length)
	if err != nil {
		return nil, identity.Digest{}, fmt.Errorf("registry: object %s: %w", d, err)
	}
	if offset != 0 || length != -1 {
		return rc, addr, nil
	}
	return &verifyingReader{rc: rc, h: blake3.New(32, nil), want: addr}, addr, nil
}

// verifyingReader hashes what it reads and reports a mismatch at EOF.
type verifyingReader struct {
	rc   io.ReadCloser
	h    hash.Hash
	want identity.Digest
}

func (v *verifyingReader) Read(p []byte) (int, error) {
	n, err := v.rc.Read(p)
	v.h.Write(p[:n])
	if err == io.EOF {
		got, derr := identity.NewDigest(identity.BLAKE3, v.h.Sum(nil))
		if derr != nil {
			return n, derr
		}
		if got != v.want {
			return n, fmt.Errorf("registry: stored object %s is corrupt: its bytes hash to %s: %w", v.want, got, storage.ErrDigestMismatch)
		}
	}
	return n, err
}

func (v *verifyingReader) Close() error { return v.rc.Close() }
