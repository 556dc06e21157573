// Package storage is the storage SPI: the contract between the data plane
// and the places where bytes live (DESIGN.md §7, docs/adr/0004).
//
// A [Backend] stores immutable objects named by their content address
// (an [identity.Digest]). Writing is write-then-commit: the caller streams
// bytes into a [Writer] before it knows their address, then calls
// [Writer.Commit] with the address, and the backend publishes the object under
// it only after checking that the bytes it received hash to that address. No
// object is ever visible under an address in part, and a failed or cancelled
// write leaves nothing behind. The same SPI serves a local filesystem and an
// S3-compatible object store; it contains no filesystem ideas (no paths,
// directories, permissions or renames).
//
// Every method takes a context first and honours its cancellation. Errors
// that callers branch on are the sentinels below, tested with errors.Is;
// backends wrap them in an [*Error] that says which backend, which operation
// and which address.
//
// Optional capabilities are separate small interfaces found by type
// assertion: [Lister] and [IncompleteLister] (enumeration, used by the
// conformance suite and by janitors) and [Summer] (a writer that reports the
// dual digest it computed, so that callers need not hash twice).
package storage

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/artifactstore/artifact-store/pkg/identity"
)

// Sentinel errors. Every error a Backend returns for one of these conditions
// wraps the sentinel, so callers use errors.Is.
var (
	// ErrNotFound: no object is stored under the address.
	ErrNotFound = errors.New("storage: object not found")
	// ErrInvalidKey: the address cannot name an object in this backend
	// (the zero Digest, or an algorithm the backend cannot verify).
	ErrInvalidKey = errors.New("storage: invalid key")
	// ErrInvalidRange: a byte range that the object cannot satisfy
	// (negative offset, length below -1, offset beyond the end).
	ErrInvalidRange = errors.New("storage: invalid range")
	// ErrDigestMismatch: the bytes written do not hash to the address they
	// were committed under (or to an expected digest). Nothing was stored.
	ErrDigestMismatch = errors.New("storage: digest mismatch")
	// ErrWriterClosed: Write or Commit on a Writer already committed or
	// cancelled.
	ErrWriterClosed = errors.New("storage: writer already committed or cancelled")
	// ErrUnavailable: the backend cannot be reached or used at all (root
	// missing, bucket unreachable, credentials refused).
	ErrUnavailable = errors.New("storage: backend unavailable")
)

// Backend stores immutable objects named by content address. Implementations
// must be safe for concurrent use by many goroutines, including concurrent
// writes of the same object.
//
// Argument errors (the zero Digest, an unusable algorithm, a negative
// offset) are reported before any I/O.
type Backend interface {
	// Create starts writing a new object whose address is not yet known.
	// The bytes written are never visible to Get, Head or Delete until
	// Commit succeeds. ctx governs the whole life of the Writer: once it is
	// cancelled, Write and Commit fail with ctx.Err() and nothing is
	// published. The caller must end every Writer with Commit or Cancel;
	// `defer w.Cancel(ctx)` after Create is the idiom (Cancel after a
	// successful Commit is a no-op).
	Create(ctx context.Context) (Writer, error)

	// Get returns a reader over length bytes of the object starting at
	// offset. length -1 means "to the end of the object". Range rules, with
	// size the object's size:
	//   - offset < 0 or length < -1: ErrInvalidRange (before any I/O);
	//   - offset > size: ErrInvalidRange;
	//   - offset == size, or length == 0: an empty reader (the object must
	//     still exist, else ErrNotFound);
	//   - offset+length > size: the reader returns the size-offset bytes
	//     that exist, then io.EOF (a short read at the end is not an error).
	// A missing object gives ErrNotFound. The reader yields exactly the
	// committed bytes of the range; if it cannot deliver all of them (a
	// connection cut, a truncated response body) Read returns an error
	// other than io.EOF — never a silent short read. Reads after ctx is
	// cancelled fail with ctx.Err(). The caller must Close the reader.
	Get(ctx context.Context, addr identity.Digest, offset, length int64) (io.ReadCloser, error)

	// Head returns what the backend knows of the object without reading it.
	// A missing object gives ErrNotFound.
	Head(ctx context.Context, addr identity.Digest) (Info, error)

	// Delete removes the object. A missing object gives ErrNotFound (the
	// caller decides whether that matters). Readers opened before Delete may
	// or may not continue to see the bytes; new ones get ErrNotFound. A
	// Delete racing a Commit of the same address leaves either state.
	Delete(ctx context.Context, addr identity.Digest) error

	// Health reports whether the backend is usable now and, where known,
	// its capacity. The error is non-nil only when the probe itself could
	// not be carried out (for example ctx was cancelled); an unreachable
	// backend is reported as Health{Reachable: false, Detail: why}.
	Health(ctx context.Context) (Health, error)
}

// Writer receives the bytes of one object and publishes them on Commit.
// A Writer is used by one goroutine at a time.
type Writer interface {
	// Write appends p. It never retains p. After the Writer's context is
	// cancelled it returns ctx.Err(); after Commit or Cancel it returns
	// ErrWriterClosed.
	io.Writer

	// Size returns the number of bytes written so far.
	Size() int64

	// Commit verifies that the bytes written hash to addr (the backend
	// hashes what it received; it does not trust the caller) and publishes
	// them under addr, durably: when Commit returns nil the object survives
	// a crash and Get returns exactly those bytes.
	//
	// If an object already exists under addr, Commit discards the bytes and
	// returns nil: content addressing makes a second put of the same bytes a
	// no-op, and an existing object is never replaced.
	//
	// On any error nothing is published and the Writer is finished (as if
	// cancelled): a mismatch gives an error wrapping ErrDigestMismatch
	// (a [*MismatchError]), an unusable addr ErrInvalidKey, a cancelled
	// context ctx.Err(). Commit on a finished Writer gives ErrWriterClosed.
	// One exception to "nothing is published": if the very last durability
	// step fails after the object became visible (a directory fsync), Commit
	// reports the error and the object may remain; it then holds exactly
	// the verified bytes but is not known to survive a crash.
	Commit(ctx context.Context, addr identity.Digest) error

	// Cancel discards everything written and releases the Writer's
	// resources; nothing is published. Cancel on a Writer that is already
	// committed or cancelled does nothing and returns nil.
	Cancel(ctx context.Context) error
}

// Summer is an optional Writer capability: Sum returns the dual digest of
// the bytes written so far, as the backend computed it for verification.
// A caller that needs both digests (the data plane) uses it instead of
// hashing the stream a second time.
type Summer interface {
	Sum() identity.Sum
}

// BatchCommitter is an optional Backend capability: commit many writers of
// this backend at once, with the guarantees of Writer.Commit for each, but
// sharing the cost of making them durable (one barrier for the batch instead
// of one per object). errs[i] is what Commit would have returned for ws[i];
// every writer is finished afterwards, committed or not. ws and addrs have
// the same length.
type BatchCommitter interface {
	CommitBatch(ctx context.Context, ws []Writer, addrs []identity.Digest) (errs []error)
}

// Info describes a stored object.
type Info struct {
	Address identity.Digest
	Size    int64
}

// Health is a backend's report on itself.
type Health struct {
	// Reachable is true when the backend can serve reads and accept writes.
	Reachable bool
	// FreeBytes and TotalBytes are the capacity available to writers and
	// in total; -1 when the backend does not know (object stores).
	FreeBytes  int64
	TotalBytes int64
	// Detail is a short human-readable note (why it is unreachable, where
	// it lives). It never contains credentials.
	Detail string
}

// Lister is an optional Backend capability: List calls fn once for every
// committed object, in no particular order. If fn returns an error, List
// stops and returns it. Objects committed or deleted during List may or may
// not be reported.
type Lister interface {
	List(ctx context.Context, fn func(Info) error) error
}

// IncompleteLister is an optional Backend capability: ListIncomplete calls
// fn with an opaque, backend-specific name for every write that has begun
// and not yet been committed or cancelled, including ones abandoned by a
// crashed process (temporary files, temporary keys, multipart uploads). A
// backend that has no writers in flight reports nothing; the conformance
// suite uses it to prove that failed writes leave nothing behind.
type IncompleteLister interface {
	ListIncomplete(ctx context.Context, fn func(name string) error) error
}

// Error is the error type backends return: it says which backend, which
// operation and which address, and wraps the cause (often a sentinel).
type Error struct {
	Backend string          // backend_id or kind, e.g. "local"
	Op      string          // "create", "write", "commit", "get", "head", "delete", "health", "list"
	Address identity.Digest // zero when the operation has none
	Err     error
}

func (e *Error) Error() string {
	s := "storage: " + e.Backend + ": " + e.Op
	if !e.Address.IsZero() {
		s += " " + e.Address.String()
	}
	return s + ": " + e.Err.Error()
}

func (e *Error) Unwrap() error { return e.Err }

// MismatchError reports bytes that do not hash to the address they were
// committed under. It matches ErrDigestMismatch with errors.Is.
type MismatchError struct {
	Want identity.Digest // the address asked for
	Got  identity.Digest // the digest of the bytes, same algorithm
	Size int64           // how many bytes were hashed
}

func (e *MismatchError) Error() string {
	return fmt.Sprintf("storage: digest mismatch: want %s, the %d bytes hash to %s", e.Want, e.Size, e.Got)
}

// Is makes errors.Is(err, ErrDigestMismatch) true.
func (e *MismatchError) Is(target error) bool { return target == ErrDigestMismatch }

// Key maps an address to its object key, the layout shared by every
// backend (DESIGN.md §7):
//
//	<algorithm>/<hex[0:2]>/<hex[2:4]>/<hex>
//
// for example blake3/af/13/af1349b9…. The two fan-out levels keep any one
// directory or listing prefix small (65,536 leaves). The local backend puts
// this key under its root, the S3 backend under its prefix. Key is pure: it
// depends on addr alone. It refuses the zero Digest with ErrInvalidKey;
// every other part comes from a parsed Digest, whose algorithm name is
// lowercase letters and digits and whose hex is lowercase hex, so a key can
// never hold "..", "/" in the wrong place, or anything else.
func Key(addr identity.Digest) (string, error) {
	if addr.IsZero() {
		return "", fmt.Errorf("%w: zero address", ErrInvalidKey)
	}
	h := addr.Hex()
	if len(h) < 4 {
		return "", fmt.Errorf("%w: digest of %s too short to fan out", ErrInvalidKey, addr.Algorithm())
	}
	return string(addr.Algorithm()) + "/" + h[0:2] + "/" + h[2:4] + "/" + h, nil
}

// CheckRange validates offset and length against the rules of
// Backend.Get for an object of the given size and returns the number of
// bytes the read will yield. Backends use it so that every one applies the
// same rules.
func CheckRange(offset, length, size int64) (int64, error) {
	if offset < 0 {
		return 0, fmt.Errorf("%w: negative offset %d", ErrInvalidRange, offset)
	}
	if length < -1 {
		return 0, fmt.Errorf("%w: length %d (use -1 for \"to the end\")", ErrInvalidRange, length)
	}
	if offset > size {
		return 0, fmt.Errorf("%w: offset %d beyond the end of a %d-byte object", ErrInvalidRange, offset, size)
	}
	n := size - offset
	if length >= 0 && length < n {
		n = length
	}
	return n, nil
}

// CheckRangeArgs applies the parts of the range rules that need no object
// size (negative offset, length below -1), for use before any I/O.
func CheckRangeArgs(offset, length int64) error {
	if offset < 0 || length < -1 {
		_, err := CheckRange(offset, length, offset)
		return err
	}
	return nil
}

// ValidID reports whether id is a well-formed backend id: 1 to 63 bytes of
// lowercase letters, digits, '-' and '_', starting with a letter.
func ValidID(id string) bool {
	if len(id) == 0 || len(id) > 63 || id[0] < 'a' || id[0] > 'z' {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}
