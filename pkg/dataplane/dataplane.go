// Package dataplane is the one road bytes travel on (DESIGN.md §7,
// docs/adr/0004). The control plane (registry, events, manifests) decides
// what to store and records receipts; the data plane moves and checks the
// bytes: it ingests a stream in one pass (both digests, the size and the
// write to a storage backend at once), serves byte ranges, re-verifies
// stored objects, and stats and deletes them.
//
// Only this package (and the tools' wiring in cmd/) imports storage backend
// packages such as pkg/storage/local; a test enforces it. Everything else
// holds a [DataPlane].
package dataplane

import (
	"context"
	"fmt"
	"io"

	"github.com/artifactstore/artifact-store/pkg/identity"
	"github.com/artifactstore/artifact-store/pkg/storage"
)

// The sentinel errors callers branch on, the same values as the storage
// SPI's, re-exported so that control-plane code need not import storage.
var (
	ErrNotFound       = storage.ErrNotFound
	ErrInvalidKey     = storage.ErrInvalidKey
	ErrInvalidRange   = storage.ErrInvalidRange
	ErrDigestMismatch = storage.ErrDigestMismatch
)

// DataPlane moves and checks bytes. Implementations are safe for
// concurrent use.
type DataPlane interface {
	// IngestStream reads r to EOF exactly once, computing the BLAKE3 and
	// SHA-256 digests and the size while writing the bytes to the backend,
	// and commits the object under its BLAKE3 address. It returns when the
	// object is durable. If opts.Expect is set and the bytes do not match
	// it, IngestStream returns an error wrapping ErrDigestMismatch (a
	// [*ExpectError]) and stores nothing. On any error, including ctx
	// cancellation or a read error from r, nothing is stored. Ingesting
	// bytes that are already stored succeeds and changes nothing.
	// Cancellation is noticed between reads: a Read blocked inside r (a
	// pipe with no writer) is not interrupted; close r to unblock it.
	IngestStream(ctx context.Context, r io.Reader, opts IngestOptions) (IngestResult, error)

	// ServeObject returns length bytes of the object from offset (length
	// -1: to the end), with the range rules of storage.Backend.Get:
	// ErrInvalidRange for a negative offset or one beyond the end, a short
	// read at the end, ErrNotFound for a missing object. The caller closes
	// the reader.
	ServeObject(ctx context.Context, addr identity.Digest, offset, length int64) (io.ReadCloser, error)

	// VerifyObject re-reads the whole object through the backend and
	// re-digests it. It returns the dual digest of what is stored; if the
	// bytes no longer hash to addr the error wraps ErrDigestMismatch (a
	// *storage.MismatchError naming both digests).
	VerifyObject(ctx context.Context, addr identity.Digest) (identity.Sum, error)

	// StatObject returns the object's size without reading it; ErrNotFound
	// if it is missing.
	StatObject(ctx context.Context, addr identity.Digest) (storage.Info, error)

	// DeleteObject removes the object; ErrNotFound if it is missing.
	// Whether an object may be deleted (retention, references) is the
	// control plane's decision, not the data plane's.
	DeleteObject(ctx context.Context, addr identity.Digest) error

	// IngestBatch ingests many streams, workers at a time, with the
	// guarantees of IngestStream for each, committing them together so
	// that they share the cost of durability. errs[i] is srcs[i]'s
	// failure; once one fails, the sources not yet started fail with
	// context.Canceled.
	IngestBatch(ctx context.Context, srcs []Source, workers int) (results []IngestResult, errs []error)

	// BackendID names the backend that receipts from this data plane refer
	// to.
	BackendID() string
}

// IngestOptions tune IngestStream. The zero value is ready to use.
type IngestOptions struct {
	// Expect, if not nil, is what the caller already knows of the bytes
	// (an as-digest record); ingest refuses bytes that differ.
	Expect *Expected
}

// Expected is what a caller knows of a stream before ingesting it. Zero
// digests are not checked; Size is checked only when SizeKnown is true.
type Expected struct {
	BLAKE3    identity.Digest
	SHA256    identity.Digest
	Size      int64
	SizeKnown bool
}

// ExpectedOf returns the Expected that matches exactly the bytes of s.
func ExpectedOf(s identity.Sum) *Expected {
	return &Expected{BLAKE3: s.BLAKE3, SHA256: s.SHA256, Size: s.Size, SizeKnown: true}
}

// IngestResult is what IngestStream reports: the dual digest and size of
// the bytes, and where they are now stored.
type IngestResult struct {
	Sum     identity.Sum
	Receipt Receipt
}

// Receipt says where an object is stored: the manifest's storage_receipts
// entry (content_address, backend_id, key).
type Receipt struct {
	BackendID string
	Address   identity.Digest
	// Key is the object's key in the backend's layout (storage.Key),
	// relative to the backend's root or prefix.
	Key string
}

// ExpectError reports a stream that does not match what the caller
// expected of it. It matches ErrDigestMismatch with errors.Is.
type ExpectError struct {
	What string // "blake3", "sha256" or "size"
	Want string
	Got  string
}

func (e *ExpectError) Error() string {
	return fmt.Sprintf("dataplane: bytes do not match the expected %s: want %s, got %s", e.What, e.Want, e.Got)
}

// Is makes errors.Is(err, ErrDigestMismatch) true.
func (e *ExpectError) Is(target error) bool { return target == ErrDigestMismatch }

// check compares a stream's sum with what was expected.
func (x *Expected) check(s identity.Sum) error {
	if x == nil {
		return nil
	}
	if x.SizeKnown && x.Size != s.Size {
		return &ExpectError{What: "size", Want: fmt.Sprint(x.Size), Got: fmt.Sprint(s.Size)}
	}
	if !x.BLAKE3.IsZero() && x.BLAKE3 != s.BLAKE3 {
		return &ExpectError{What: "blake3", Want: x.BLAKE3.String(), Got: s.BLAKE3.String()}
	}
	if !x.SHA256.IsZero() && x.SHA256 != s.SHA256 {
		return &ExpectError{What: "sha256", Want: x.SHA256.String(), Got: s.SHA256.String()}
	}
	return nil
}

// validate refuses expectations that no stream can meet, before any I/O.
func (x *Expected) validate() error {
	if x == nil {
		return nil
	}
	if x.SizeKnown && x.Size < 0 {
		return fmt.Errorf("dataplane: expected size %d is negative", x.Size)
	}
	if !x.BLAKE3.IsZero() && x.BLAKE3.Algorithm() != identity.BLAKE3 {
		return fmt.Errorf("dataplane: expected BLAKE3 digest is a %s digest", x.BLAKE3.Algorithm())
	}
	if !x.SHA256.IsZero() && x.SHA256.Algorithm() != identity.SHA256 {
		return fmt.Errorf("dataplane: expected SHA-256 digest is a %s digest", x.SHA256.Algorithm())
	}
	return nil
}
