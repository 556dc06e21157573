package storagetest_test

import (
	"bytes"
	"context"
	"io"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/artifactstore/artifact-store/pkg/identity"
	"github.com/artifactstore/artifact-store/pkg/storage"
	"github.com/artifactstore/artifact-store/pkg/storage/local"
	"github.com/artifactstore/artifact-store/pkg/storage/storagetest"
)

// The suite must pass on a good backend and fail on broken ones: each broken
// wrapper below models a real bug, and the test asserts which checks catch it.

func newLocal(t *testing.T) *local.Backend {
	b, err := local.Open(t.TempDir(), local.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// failures runs every check on a fresh backend from mk and returns the
// names of those that fail.
func failures(t *testing.T, mk func(t *testing.T) storage.Backend) []string {
	var failed []string
	for _, c := range storagetest.Checks() {
		if err := c.Run(t.Context(), mk(t)); err != nil {
			t.Logf("%s: %v", c.Name, err)
			failed = append(failed, c.Name)
		}
	}
	return failed
}

func TestSuitePassesOnLocal(t *testing.T) {
	if f := failures(t, func(t *testing.T) storage.Backend { return newLocal(t) }); len(f) > 0 {
		t.Fatalf("checks failed on the local backend: %v", f)
	}
}

func TestSuiteCatchesBrokenBackends(t *testing.T) {
	for _, tc := range []struct {
		name string
		wrap func(*local.Backend) storage.Backend
		want []string // checks that must fail (others may fail too)
	}{
		{"exposes partial objects", func(b *local.Backend) storage.Backend { return &overlay{inner: b, mode: partial} }, []string{"AtomicPublish"}},
		{"publishes before verifying", func(b *local.Backend) storage.Backend { return &overlay{inner: b, mode: noVerify} }, []string{"WrongDigest"}},
		{"ignores ranges", func(b *local.Backend) storage.Backend { return &overlay{inner: b, mode: ignoreRanges} }, []string{"Ranges", "RandomRanges"}},
		{"leaks cancelled writes", func(b *local.Backend) storage.Backend { return &overlay{inner: b, mode: leakCancel} }, []string{"Cancel"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			failed := failures(t, func(t *testing.T) storage.Backend { return tc.wrap(newLocal(t)) })
			for _, w := range tc.want {
				if !slices.Contains(failed, w) {
					t.Errorf("check %s passed on a backend that %s (failed: %v)", w, tc.name, failed)
				}
			}
		})
	}
}

type mode int

const (
	partial      mode = iota // Commit copies the bytes to the final name in pieces, visible while it does
	noVerify                 // Commit publishes under any address without checking
	ignoreRanges             // Get returns the whole object whatever the range
	leakCancel               // Cancel forgets the write instead of discarding it
)

// overlay wraps the local backend; published objects of the broken modes
// live in an in-memory map that Get, Head and List consult first.
type overlay struct {
	inner *local.Backend
	mode  mode
	mu    sync.Mutex
	objs  map[identity.Digest][]byte
}

func (o *overlay) lookup(addr identity.Digest) ([]byte, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	b, ok := o.objs[addr]
	return bytes.Clone(b), ok
}

func (o *overlay) Create(ctx context.Context) (storage.Writer, error) {
	w, err := o.inner.Create(ctx)
	if err != nil {
		return nil, err
	}
	return &owriter{Writer: w, o: o}, nil
}

func (o *overlay) Get(ctx context.Context, addr identity.Digest, off, n int64) (io.ReadCloser, error) {
	if b, ok := o.lookup(addr); ok {
		return io.NopCloser(bytes.NewReader(b)), nil
	}
	if o.mode == ignoreRanges {
		off, n = 0, -1
	}
	return o.inner.Get(ctx, addr, off, n)
}

func (o *overlay) Head(ctx context.Context, addr identity.Digest) (storage.Info, error) {
	if b, ok := o.lookup(addr); ok {
		return storage.Info{Address: addr, Size: int64(len(b))}, nil
	}
	return o.inner.Head(ctx, addr)
}

func (o *overlay) Delete(ctx context.Context, addr identity.Digest) error {
	o.mu.Lock()
	_, ok := o.objs[addr]
	delete(o.objs, addr)
	o.mu.Unlock()
	if ok {
		return nil
	}
	return o.inner.Delete(ctx, addr)
}

func (o *overlay) Health(ctx context.Context) (storage.Health, error) { return o.inner.Health(ctx) }

func (o *overlay) List(ctx context.Context, fn func(storage.Info) error) error {
	o.mu.Lock()
	var extra []storage.Info
	for a, b := range o.objs {
		extra = append(extra, storage.Info{Address: a, Size: int64(len(b))})
	}
	o.mu.Unlock()
	for _, i := range extra {
		if err := fn(i); err != nil {
			return err
		}
	}
	return o.inner.List(ctx, func(i storage.Info) error {
		if _, ok := o.lookup(i.Address); ok {
			return nil
		}
		return fn(i)
	})
}

func (o *overlay) ListIncomplete(ctx context.Context, fn func(string) error) error {
	return o.inner.ListIncomplete(ctx, fn)
}

type owriter struct {
	storage.Writer
	o   *overlay
	buf []byte
}

func (w *owriter) Write(p []byte) (int, error) {
	n, err := w.Writer.Write(p)
	w.buf = append(w.buf, p[:n]...)
	return n, err
}

func (w *owriter) Cancel(ctx context.Context) error {
	if w.o.mode == leakCancel {
		return nil
	}
	return w.Writer.Cancel(ctx)
}

func (w *owriter) Commit(ctx context.Context, addr identity.Digest) error {
	o := w.o
	switch o.mode {
	case noVerify:
		o.mu.Lock()
		if o.objs == nil {
			o.objs = map[identity.Digest][]byte{}
		}
		o.objs[addr] = w.buf
		o.mu.Unlock()
		w.Writer.Cancel(ctx)
		return nil
	case partial:
		if err := w.Writer.Commit(ctx, addr); err != nil {
			return err
		}
		// Then "copy" it to the final name in pieces, as a backend that
		// writes in place would, exposing each piece.
		o.mu.Lock()
		if o.objs == nil {
			o.objs = map[identity.Digest][]byte{}
		}
		o.mu.Unlock()
		for i := 0; i < len(w.buf); i += 1 << 20 {
			o.mu.Lock()
			o.objs[addr] = w.buf[:i]
			o.mu.Unlock()
			time.Sleep(5 * time.Millisecond)
		}
		o.mu.Lock()
		delete(o.objs, addr)
		o.mu.Unlock()
		return nil
	}
	return w.Writer.Commit(ctx, addr)
}
