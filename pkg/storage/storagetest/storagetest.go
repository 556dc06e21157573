// Package storagetest is the conformance suite that every storage.Backend
// runs. A backend's tests wire it in a few lines:
//
//	func TestConformance(t *testing.T) {
//		storagetest.Run(t, func(t *testing.T) storage.Backend {
//			b, err := mybackend.Open(t.TempDir(), ...)
//			if err != nil { t.Fatal(err) }
//			return b
//		})
//	}
//
// Each check gets a fresh, empty backend. The checks are plain functions
// that return an error ([Checks]), so that the suite itself can be tested:
// storagetest's own tests run them against deliberately broken backends and
// assert that they fail.
//
// "Nothing left behind" is checked through the optional storage.Lister and
// storage.IncompleteLister capabilities; a backend that implements neither
// is told so in the test log and those assertions are skipped.
package storagetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/artifactstore/artifact-store/pkg/identity"
	"github.com/artifactstore/artifact-store/pkg/storage"
)

// Check is one conformance check. Run gets a fresh, empty backend and
// returns nil if the backend conforms.
type Check struct {
	Name string
	Run  func(ctx context.Context, b storage.Backend) error
}

// Run runs every check of Checks as a subtest, each on a backend made by
// newBackend (which should register its own cleanup with t.Cleanup).
func Run(t *testing.T, newBackend func(t *testing.T) storage.Backend) {
	t.Helper()
	for _, c := range Checks() {
		t.Run(c.Name, func(t *testing.T) {
			b := newBackend(t)
			_, lists := b.(storage.Lister)
			_, incomplete := b.(storage.IncompleteLister)
			if !lists || !incomplete {
				t.Log("storagetest: backend lacks storage.Lister or storage.IncompleteLister: leftovers are not checked")
			}
			if err := c.Run(t.Context(), b); err != nil {
				t.Error(err)
			}
		})
	}
}

// Checks returns the conformance checks, in a fixed order.
func Checks() []Check {
	return []Check{
		{"PutGetHeadDelete", checkPutGetHeadDelete},
		{"EmptyObject", checkEmptyObject},
		{"DoublePut", checkDoublePut},
		{"DeleteMissing", checkDeleteMissing},
		{"NotFound", checkNotFound},
		{"InvalidKey", checkInvalidKey},
		{"Ranges", checkRanges},
		{"RandomRanges", checkRandomRanges},
		{"InvisibleUntilCommit", checkInvisibleUntilCommit},
		{"AtomicPublish", checkAtomicPublish},
		{"WrongDigest", checkWrongDigest},
		{"Cancel", checkCancel},
		{"CancelledContextMidStream", checkCancelledContext},
		{"CommitTwice", checkCommitTwice},
		{"ConcurrentSamePut", checkConcurrentSamePut},
		{"ConcurrentDistinctPuts", checkConcurrentDistinct},
		{"Health", checkHealth},
		{"BatchCommit", checkBatchCommit},
	}
}

// checkBatchCommit: a backend that offers storage.BatchCommitter commits a
// batch with Commit's guarantees for each writer — good ones published,
// an already stored one a no-op, a wrong digest refused and left nowhere.
// Backends without the capability pass trivially.
func checkBatchCommit(ctx context.Context, be storage.Backend) error {
	bc, ok := be.(storage.BatchCommitter)
	if !ok {
		return nil
	}
	existing := data(900, 3000)
	if _, err := put(ctx, be, existing, 1000); err != nil {
		return err
	}
	bodies := [][]byte{data(901, 10), existing, data(902, 70_000), data(903, 1), data(904, 5000)}
	var ws []storage.Writer
	var addrs []identity.Digest
	for i, b := range bodies {
		w, err := be.Create(ctx)
		if err != nil {
			return err
		}
		if _, err := w.Write(b); err != nil {
			return err
		}
		addr := addrOf(b)
		if i == 3 {
			addr = addrOf([]byte("not these bytes"))
		}
		ws, addrs = append(ws, w), append(addrs, addr)
	}
	errs := bc.CommitBatch(ctx, ws, addrs)
	if len(errs) != len(ws) {
		return failf("CommitBatch returned %d errors for %d writers", len(errs), len(ws))
	}
	var keep []identity.Digest
	for i, b := range bodies {
		if i == 3 {
			if !errors.Is(errs[i], storage.ErrDigestMismatch) {
				return failf("batch: wrong digest gave %v, want ErrDigestMismatch", errs[i])
			}
			if err := expectAbsent(ctx, be, addrs[i]); err != nil {
				return err
			}
			if err := expectAbsent(ctx, be, addrOf(b)); err != nil {
				return err
			}
			continue
		}
		if errs[i] != nil {
			return failf("batch: writer %d: %v", i, errs[i])
		}
		if err := expectObject(ctx, be, addrs[i], b); err != nil {
			return err
		}
		keep = append(keep, addrs[i])
	}
	return leftovers(ctx, be, keep...)
}

// data returns n deterministic pseudo-random bytes for seed.
func data(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, 0x5eed))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func addrOf(b []byte) identity.Digest {
	h := identity.NewHasher()
	h.Write(b)
	return h.Sum().BLAKE3
}

// put writes b in pieces of at most chunk bytes and commits it under its
// BLAKE3 address.
func put(ctx context.Context, be storage.Backend, b []byte, chunk int) (identity.Digest, error) {
	addr := addrOf(b)
	w, err := be.Create(ctx)
	if err != nil {
		return addr, failf("Create: %w", err)
	}
	defer w.Cancel(ctx)
	for p := b; len(p) > 0; {
		n := min(chunk, len(p))
		k, err := w.Write(p[:n])
		if err != nil {
			return addr, failf("Write: %w", err)
		}
		if k != n {
			return addr, failf("Write wrote %d of %d bytes without error", k, n)
		}
		p = p[n:]
	}
	if w.Size() != int64(len(b)) {
		return addr, failf("Size() = %d after writing %d bytes", w.Size(), len(b))
	}
	if err := w.Commit(ctx, addr); err != nil {
		return addr, failf("Commit: %w", err)
	}
	return addr, nil
}

func get(ctx context.Context, be storage.Backend, addr identity.Digest, off, n int64) ([]byte, error) {
	r, err := be.Get(ctx, addr, off, n)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return io.ReadAll(r)
}

// expectObject checks that Head and a full Get return exactly want.
func expectObject(ctx context.Context, be storage.Backend, addr identity.Digest, want []byte) error {
	info, err := be.Head(ctx, addr)
	if err != nil {
		return failf("Head %s: %w", addr, err)
	}
	if info.Size != int64(len(want)) {
		return failf("Head %s: size %d, want %d", addr, info.Size, len(want))
	}
	got, err := get(ctx, be, addr, 0, -1)
	if err != nil {
		return failf("Get %s: %w", addr, err)
	}
	if !bytes.Equal(got, want) {
		return failf("Get %s: %d bytes that differ from the %d committed", addr, len(got), len(want))
	}
	return nil
}

// expectAbsent checks that Head and Get report ErrNotFound for addr.
func expectAbsent(ctx context.Context, be storage.Backend, addr identity.Digest) error {
	if _, err := be.Head(ctx, addr); !errors.Is(err, storage.ErrNotFound) {
		return failf("Head %s: got %v, want ErrNotFound", addr, err)
	}
	r, err := be.Get(ctx, addr, 0, -1)
	if err == nil {
		r.Close()
		return failf("Get %s: got an object, want ErrNotFound", addr)
	}
	if !errors.Is(err, storage.ErrNotFound) {
		return failf("Get %s: got %v, want ErrNotFound", addr, err)
	}
	return nil
}

// leftovers checks that the backend holds exactly the objects want and no
// incomplete writes.
func leftovers(ctx context.Context, be storage.Backend, want ...identity.Digest) error {
	if l, ok := be.(storage.IncompleteLister); ok {
		var names []string
		err := l.ListIncomplete(ctx, func(n string) error { names = append(names, n); return nil })
		if err != nil {
			return failf("ListIncomplete: %w", err)
		}
		if len(names) > 0 {
			return failf("%w: %q", errIncomplete, names)
		}
	}
	if l, ok := be.(storage.Lister); ok {
		got := map[identity.Digest]bool{}
		err := l.List(ctx, func(i storage.Info) error {
			if got[i.Address] {
				return failf("List reported %s twice", i.Address)
			}
			got[i.Address] = true
			return nil
		})
		if err != nil {
			return failf("List: %w", err)
		}
		for _, w := range want {
			if !got[w] {
				return failf("List does not report %s", w)
			}
			delete(got, w)
		}
		for a := range got {
			return failf("object left behind: %s", a)
		}
	}
	return nil
}

func checkPutGetHeadDelete(ctx context.Context, be storage.Backend) error {
	b := data(1, 3<<20+17)
	addr, err := put(ctx, be, b, 1<<20)
	if err != nil {
		return err
	}
	if err := expectObject(ctx, be, addr, b); err != nil {
		return err
	}
	if err := leftovers(ctx, be, addr); err != nil {
		return err
	}
	if err := be.Delete(ctx, addr); err != nil {
		return failf("Delete: %w", err)
	}
	if err := expectAbsent(ctx, be, addr); err != nil {
		return failf("after Delete: %w", err)
	}
	return leftovers(ctx, be)
}

func checkEmptyObject(ctx context.Context, be storage.Backend) error {
	addr, err := put(ctx, be, nil, 1)
	if err != nil {
		return err
	}
	if err := expectObject(ctx, be, addr, nil); err != nil {
		return err
	}
	for _, rg := range [][2]int64{{0, 0}, {0, -1}, {0, 5}} {
		got, err := get(ctx, be, addr, rg[0], rg[1])
		if err != nil || len(got) != 0 {
			return failf("Get empty object [%d,%d]: %d bytes, %v; want 0 bytes, nil", rg[0], rg[1], len(got), err)
		}
	}
	if _, err := be.Get(ctx, addr, 1, -1); !errors.Is(err, storage.ErrInvalidRange) {
		return failf("Get empty object at offset 1: %v, want ErrInvalidRange", err)
	}
	return leftovers(ctx, be, addr)
}

func checkDoublePut(ctx context.Context, be storage.Backend) error {
	b := data(2, 100_000)
	addr, err := put(ctx, be, b, 4096)
	if err != nil {
		return err
	}
	again, err := put(ctx, be, b, 7777)
	if err != nil {
		return failf("second put of the same bytes: %w", err)
	}
	if again != addr {
		return failf("internal: addresses differ")
	}
	if err := expectObject(ctx, be, addr, b); err != nil {
		return err
	}
	return leftovers(ctx, be, addr)
}

func checkDeleteMissing(ctx context.Context, be storage.Backend) error {
	addr := addrOf([]byte("never stored"))
	if err := be.Delete(ctx, addr); !errors.Is(err, storage.ErrNotFound) {
		return failf("Delete of a missing object: %v, want ErrNotFound", err)
	}
	b := data(3, 1000)
	stored, err := put(ctx, be, b, 1000)
	if err != nil {
		return err
	}
	if err := be.Delete(ctx, stored); err != nil {
		return failf("Delete: %w", err)
	}
	if err := be.Delete(ctx, stored); !errors.Is(err, storage.ErrNotFound) {
		return failf("second Delete: %v, want ErrNotFound", err)
	}
	return leftovers(ctx, be)
}

func checkNotFound(ctx context.Context, be storage.Backend) error {
	// A neighbour exists so that a backend cannot pass by being empty.
	if _, err := put(ctx, be, data(4, 10), 10); err != nil {
		return err
	}
	for _, addr := range []identity.Digest{
		addrOf([]byte("missing")),
		identity.MustParse("blake3:0000000000000000000000000000000000000000000000000000000000000000"),
		identity.MustParse("sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
	} {
		if err := expectAbsent(ctx, be, addr); err != nil {
			return err
		}
		if _, err := be.Head(ctx, addr); errors.Is(err, storage.ErrInvalidKey) {
			return failf("Head %s: not-found reported as ErrInvalidKey: %v", addr, err)
		}
		if _, err := be.Get(ctx, addr, 5, 5); !errors.Is(err, storage.ErrNotFound) {
			return failf("ranged Get %s: %v, want ErrNotFound", addr, err)
		}
	}
	return nil
}

func checkInvalidKey(ctx context.Context, be storage.Backend) error {
	var zero identity.Digest
	if _, err := be.Head(ctx, zero); !errors.Is(err, storage.ErrInvalidKey) {
		return failf("Head(zero): %v, want ErrInvalidKey", err)
	}
	if r, err := be.Get(ctx, zero, 0, -1); !errors.Is(err, storage.ErrInvalidKey) {
		if r != nil {
			r.Close()
		}
		return failf("Get(zero): %v, want ErrInvalidKey", err)
	}
	if err := be.Delete(ctx, zero); !errors.Is(err, storage.ErrInvalidKey) {
		return failf("Delete(zero): %v, want ErrInvalidKey", err)
	}
	w, err := be.Create(ctx)
	if err != nil {
		return failf("Create: %w", err)
	}
	defer w.Cancel(ctx)
	if _, err := w.Write([]byte("x")); err != nil {
		return failf("Write: %w", err)
	}
	if err := w.Commit(ctx, zero); !errors.Is(err, storage.ErrInvalidKey) {
		return failf("Commit(zero): %v, want ErrInvalidKey", err)
	}
	return leftovers(ctx, be)
}

// rangeCase is one Get(offset, length) against an object of size n, and
// what a conforming backend returns.
type rangeCase struct {
	off, length int64
	bad         bool // ErrInvalidRange expected
}

// wantRange is the reference: the bytes Get(off, length) must return.
func wantRange(b []byte, off, length int64) ([]byte, bool) {
	n := int64(len(b))
	if off < 0 || length < -1 || off > n {
		return nil, false
	}
	end := n
	if length >= 0 && off+length < n {
		end = off + length
	}
	return b[off:end], true
}

func checkRange(ctx context.Context, be storage.Backend, addr identity.Digest, b []byte, off, length int64) error {
	want, ok := wantRange(b, off, length)
	got, err := get(ctx, be, addr, off, length)
	if !ok {
		if !errors.Is(err, storage.ErrInvalidRange) {
			return failf("Get(off=%d, len=%d) of %d bytes: got %d bytes, %v; want ErrInvalidRange", off, length, len(b), len(got), err)
		}
		return nil
	}
	if err != nil {
		return failf("Get(off=%d, len=%d) of %d bytes: %w", off, length, len(b), err)
	}
	if !bytes.Equal(got, want) {
		return failf("Get(off=%d, len=%d) of %d bytes: got %d bytes, want %d (or different content)", off, length, len(b), len(got), len(want))
	}
	return nil
}

func checkRanges(ctx context.Context, be storage.Backend) error {
	b := data(5, 1000)
	addr, err := put(ctx, be, b, 1000)
	if err != nil {
		return err
	}
	n := int64(len(b))
	for _, c := range []rangeCase{
		{-1, -1, true}, {-1, 10, true}, {0, -2, true},
		{0, -1, false}, {0, 0, false}, {0, 1, false}, {0, n, false}, {0, n + 1, false},
		{10, 20, false}, {1, n - 2, false},
		{n - 1, -1, false}, {n - 1, 1, false}, {n - 1, 10, false}, {n - 1, 0, false},
		{n, -1, false}, {n, 0, false}, {n, 5, false},
		{n + 1, -1, true}, {n + 1, 0, true}, {1 << 40, 1, true},
	} {
		if err := checkRange(ctx, be, addr, b, c.off, c.length); err != nil {
			return err
		}
	}
	return nil
}

func checkRandomRanges(ctx context.Context, be storage.Backend) error {
	r := rand.New(rand.NewPCG(6, 6))
	for i := 0; i < 4; i++ {
		b := data(uint64(60+i), r.IntN(200_000))
		addr, err := put(ctx, be, b, 1+r.IntN(70_000))
		if err != nil {
			return err
		}
		n := int64(len(b))
		for j := 0; j < 50; j++ {
			off := r.Int64N(n+3) - 1
			length := r.Int64N(n+3) - 2
			if err := checkRange(ctx, be, addr, b, off, length); err != nil {
				return err
			}
		}
	}
	return nil
}

func checkInvisibleUntilCommit(ctx context.Context, be storage.Backend) error {
	b := data(7, 2<<20)
	addr := addrOf(b)
	w, err := be.Create(ctx)
	if err != nil {
		return failf("Create: %w", err)
	}
	defer w.Cancel(ctx)
	if _, err := w.Write(b[:1<<20]); err != nil {
		return failf("Write: %w", err)
	}
	if err := expectAbsent(ctx, be, addr); err != nil {
		return failf("half written, not committed: %w", err)
	}
	if _, err := w.Write(b[1<<20:]); err != nil {
		return failf("Write: %w", err)
	}
	if err := expectAbsent(ctx, be, addr); err != nil {
		return failf("written, not committed: %w", err)
	}
	if err := leftovers(ctx, be); err != nil && !isIncomplete(err) {
		return failf("written, not committed: %w", err)
	}
	if err := w.Commit(ctx, addr); err != nil {
		return failf("Commit: %w", err)
	}
	if err := expectObject(ctx, be, addr, b); err != nil {
		return err
	}
	return leftovers(ctx, be, addr)
}

// errIncomplete marks a leftovers error that is only about writes in
// flight (expected while a Writer is open).
var errIncomplete = errors.New("incomplete writes left behind")

func isIncomplete(err error) bool { return errors.Is(err, errIncomplete) }

// checkAtomicPublish commits a large object while readers poll it: every
// reader sees either ErrNotFound or the whole object, never part of it.
func checkAtomicPublish(ctx context.Context, be storage.Backend) error {
	b := data(8, 8<<20)
	addr := addrOf(b)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 4)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				if info, err := be.Head(ctx, addr); err == nil && info.Size != int64(len(b)) {
					errc <- failf("reader saw Head size %d of a %d-byte object being committed", info.Size, len(b))
					return
				}
				// Mostly a cheap probe of the last byte; now and then all of it.
				off, n := int64(len(b)-1), int64(1)
				if i%8 == 7 {
					off, n = 0, -1
				}
				got, err := get(ctx, be, addr, off, n)
				switch {
				case errors.Is(err, storage.ErrNotFound):
				case err != nil:
					errc <- failf("reader during commit: %w", err)
					return
				case !bytes.Equal(got, b[off:]):
					errc <- failf("reader saw a partial object: %d bytes from offset %d of %d", len(got), off, len(b))
					return
				}
			}
		}()
	}
	_, perr := put(ctx, be, b, 1<<20)
	time.Sleep(10 * time.Millisecond)
	close(stop)
	wg.Wait()
	close(errc)
	if err := <-errc; err != nil {
		return err
	}
	if perr != nil {
		return perr
	}
	return expectObject(ctx, be, addr, b)
}

func checkWrongDigest(ctx context.Context, be storage.Backend) error {
	b := data(9, 300_000)
	wrong := addrOf([]byte("other bytes"))
	w, err := be.Create(ctx)
	if err != nil {
		return failf("Create: %w", err)
	}
	defer w.Cancel(ctx)
	if _, err := w.Write(b); err != nil {
		return failf("Write: %w", err)
	}
	err = w.Commit(ctx, wrong)
	if !errors.Is(err, storage.ErrDigestMismatch) {
		return failf("Commit under a wrong address: %v, want ErrDigestMismatch", err)
	}
	var me *storage.MismatchError
	if !errors.As(err, &me) || me.Want != wrong || me.Got != addrOf(b) {
		return failf("Commit under a wrong address: %v, want a *storage.MismatchError naming both digests", err)
	}
	if err := expectAbsent(ctx, be, wrong); err != nil {
		return failf("after a refused commit: %w", err)
	}
	if err := expectAbsent(ctx, be, addrOf(b)); err != nil {
		return failf("after a refused commit: %w", err)
	}
	if _, err := w.Write([]byte("x")); !errors.Is(err, storage.ErrWriterClosed) {
		return failf("Write after a refused Commit: %v, want ErrWriterClosed", err)
	}
	return leftovers(ctx, be)
}

func checkCancel(ctx context.Context, be storage.Backend) error {
	b := data(10, 500_000)
	w, err := be.Create(ctx)
	if err != nil {
		return failf("Create: %w", err)
	}
	if _, err := w.Write(b); err != nil {
		return failf("Write: %w", err)
	}
	if err := w.Cancel(ctx); err != nil {
		return failf("Cancel: %w", err)
	}
	if err := w.Cancel(ctx); err != nil {
		return failf("second Cancel: %v, want nil", err)
	}
	if _, err := w.Write(b); !errors.Is(err, storage.ErrWriterClosed) {
		return failf("Write after Cancel: %v, want ErrWriterClosed", err)
	}
	if err := w.Commit(ctx, addrOf(b)); !errors.Is(err, storage.ErrWriterClosed) {
		return failf("Commit after Cancel: %v, want ErrWriterClosed", err)
	}
	if err := expectAbsent(ctx, be, addrOf(b)); err != nil {
		return err
	}
	return leftovers(ctx, be)
}

func checkCancelledContext(ctx context.Context, be storage.Backend) error {
	b := data(11, 2<<20)
	addr := addrOf(b)
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	w, err := be.Create(wctx)
	if err != nil {
		return failf("Create: %w", err)
	}
	if _, err := w.Write(b[:1<<20]); err != nil {
		return failf("Write: %w", err)
	}
	cancel()
	if _, err := w.Write(b[1<<20:]); !errors.Is(err, context.Canceled) {
		return failf("Write after the context was cancelled: %v, want context.Canceled", err)
	}
	if err := w.Commit(ctx, addr); err == nil {
		return failf("Commit after the Writer's context was cancelled succeeded")
	}
	// No Cancel call: a failed Commit must clean up by itself.
	if err := expectAbsent(ctx, be, addr); err != nil {
		return err
	}
	if err := leftovers(ctx, be); err != nil {
		return err
	}
	if err := w.Cancel(ctx); err != nil {
		return failf("Cancel after a failed Commit: %v, want nil", err)
	}
	// Create with an already cancelled context fails.
	if w, err := be.Create(wctx); err == nil {
		w.Cancel(ctx)
		return failf("Create with a cancelled context succeeded")
	}
	return leftovers(ctx, be)
}

func checkCommitTwice(ctx context.Context, be storage.Backend) error {
	b := data(12, 1234)
	addr := addrOf(b)
	w, err := be.Create(ctx)
	if err != nil {
		return failf("Create: %w", err)
	}
	if _, err := w.Write(b); err != nil {
		return failf("Write: %w", err)
	}
	if err := w.Commit(ctx, addr); err != nil {
		return failf("Commit: %w", err)
	}
	if err := w.Commit(ctx, addr); !errors.Is(err, storage.ErrWriterClosed) {
		return failf("second Commit: %v, want ErrWriterClosed", err)
	}
	if err := w.Cancel(ctx); err != nil {
		return failf("Cancel after Commit: %v, want nil", err)
	}
	if err := expectObject(ctx, be, addr, b); err != nil {
		return failf("after Cancel of a committed Writer: %w", err)
	}
	return leftovers(ctx, be, addr)
}

func checkConcurrentSamePut(ctx context.Context, be storage.Backend) error {
	b := data(13, 1<<20+3)
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = put(ctx, be, b, 64<<10+i)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return failf("concurrent puts of the same bytes: %w", err)
	}
	addr := addrOf(b)
	if err := expectObject(ctx, be, addr, b); err != nil {
		return err
	}
	return leftovers(ctx, be, addr)
}

func checkConcurrentDistinct(ctx context.Context, be storage.Backend) error {
	var wg sync.WaitGroup
	objs := make([][]byte, 16)
	addrs := make([]identity.Digest, len(objs))
	errs := make([]error, len(objs))
	for i := range objs {
		objs[i] = data(uint64(100+i), 1000*i)
		wg.Add(1)
		go func() {
			defer wg.Done()
			addrs[i], errs[i] = put(ctx, be, objs[i], 999)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	for i := range objs {
		if err := expectObject(ctx, be, addrs[i], objs[i]); err != nil {
			return err
		}
	}
	return leftovers(ctx, be, addrs...)
}

func checkHealth(ctx context.Context, be storage.Backend) error {
	h, err := be.Health(ctx)
	if err != nil {
		return failf("Health: %w", err)
	}
	if !h.Reachable {
		return failf("Health: not reachable: %s", h.Detail)
	}
	if h.TotalBytes >= 0 && h.FreeBytes > h.TotalBytes {
		return failf("Health: free %d > total %d", h.FreeBytes, h.TotalBytes)
	}
	if err := leftovers(ctx, be); err != nil {
		return failf("after Health: %w", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := be.Health(cctx); err == nil {
		return failf("Health with a cancelled context: nil error")
	}
	return nil
}

// failf formats a conformance failure. Messages start with the SPI method
// that misbehaved (Get, Commit, …), so they are capitalised.
func failf(format string, args ...any) error { return fmt.Errorf(format, args...) }

// Damage replaces the stored object addr with other bytes behind the
// backend's back, as a failing disk or a careless operator would.
type Damage func(ctx context.Context, addr identity.Digest, b []byte) error

// RunRepair holds a backend to the re-ingest rule (issue 14 item 3): a put
// of an object whose stored copy is damaged replaces that copy with the
// verified bytes instead of keeping it. damage corrupts a stored object;
// sameSize says whether the backend also detects damage that keeps the
// size (a flipped byte), which needs a re-hash of the stored copy.
func RunRepair(t *testing.T, newBackend func(t *testing.T) (storage.Backend, Damage), sameSize bool) {
	t.Helper()
	t.Run("RepairOnReput", func(t *testing.T) {
		be, damage := newBackend(t)
		if err := CheckRepair(t.Context(), be, damage, sameSize); err != nil {
			t.Error(err)
		}
	})
}

// CheckRepair is RunRepair's check on one backend: for a small and a
// multi-part object, each damaged by truncation, by an appended byte and
// (if sameSize) by a flipped byte, a second put through Commit (and through
// CommitBatch when the backend offers it) leaves exactly the good bytes.
func CheckRepair(ctx context.Context, be storage.Backend, damage Damage, sameSize bool) error {
	type hurt struct {
		name string
		f    func([]byte) []byte
	}
	hurts := []hurt{
		{"truncated", func(b []byte) []byte { return b[:len(b)-1] }},
		{"extended", func(b []byte) []byte { return append(append([]byte(nil), b...), 0) }},
	}
	if sameSize {
		hurts = append(hurts, hurt{"flipped", func(b []byte) []byte {
			c := append([]byte(nil), b...)
			c[len(c)/2] ^= 0x01
			return c
		}})
	}
	seed := uint64(7000)
	for _, size := range []int{3000, 6 << 20} {
		for _, h := range hurts {
			for _, batch := range []bool{false, true} {
				bc, ok := be.(storage.BatchCommitter)
				if batch && !ok {
					continue
				}
				seed++
				good := data(seed, size)
				addr, err := put(ctx, be, good, 1<<20)
				if err != nil {
					return err
				}
				if err := damage(ctx, addr, h.f(good)); err != nil {
					return failf("damage %s: %w", addr, err)
				}
				if batch {
					w, err := be.Create(ctx)
					if err != nil {
						return err
					}
					if _, err := w.Write(good); err != nil {
						w.Cancel(ctx)
						return err
					}
					if errs := bc.CommitBatch(ctx, []storage.Writer{w}, []identity.Digest{addr}); errs[0] != nil {
						return failf("%s %d bytes, re-put by CommitBatch: %w", h.name, size, errs[0])
					}
				} else if _, err := put(ctx, be, good, 1<<20); err != nil {
					return failf("%s %d bytes, re-put: %w", h.name, size, err)
				}
				if err := expectObject(ctx, be, addr, good); err != nil {
					return failf("%s object of %d bytes (batch %v) was kept on re-put: %w", h.name, size, batch, err)
				}
			}
		}
	}
	return nil
}
