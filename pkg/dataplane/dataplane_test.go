package dataplane

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"

	"pgregory.net/rapid"

	"github.com/artifactstore/artifact-store/pkg/identity"
	"github.com/artifactstore/artifact-store/pkg/storage"
	"github.com/artifactstore/artifact-store/pkg/storage/local"
)

func newDP(t testing.TB) (*InProcess, *local.Backend) {
	t.Helper()
	be, err := local.Open(t.TempDir(), local.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { be.Close() })
	d, err := NewInProcess("local", be)
	if err != nil {
		t.Fatal(err)
	}
	return d, be
}

// stored lists what the backend holds: objects and incomplete writes.
func stored(t testing.TB, be *local.Backend) (objs []identity.Digest, tmp []string) {
	t.Helper()
	ctx := context.Background()
	be.List(ctx, func(i storage.Info) error { objs = append(objs, i.Address); return nil })
	be.ListIncomplete(ctx, func(n string) error { tmp = append(tmp, n); return nil })
	return objs, tmp
}

func expectEmpty(t testing.TB, be *local.Backend) {
	t.Helper()
	if objs, tmp := stored(t, be); len(objs)+len(tmp) > 0 {
		t.Fatalf("left behind: objects %v, incomplete %v", objs, tmp)
	}
}

func sumOf(b []byte) identity.Sum {
	s, _ := identity.SumReader(bytes.NewReader(b))
	return s
}

func TestIngestRoundTrip(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		d, _ := newDP(t)
		ctx := context.Background()
		size := rapid.IntRange(0, 3*chunk).Draw(rt, "size")
		seed := rapid.Byte().Draw(rt, "seed")
		b := make([]byte, size)
		for i := range b {
			b[i] = byte(i*7) ^ seed
		}
		var r io.Reader = bytes.NewReader(b)
		if rapid.Bool().Draw(rt, "oneByteReads") && size < 200_000 {
			r = iotest.OneByteReader(r)
		} else if rapid.Bool().Draw(rt, "halfReads") {
			r = iotest.HalfReader(r)
		}
		res, err := d.IngestStream(ctx, r, IngestOptions{})
		if err != nil {
			rt.Fatal(err)
		}
		want := sumOf(b)
		if res.Sum != want {
			rt.Fatalf("sum %+v, want %+v", res.Sum, want)
		}
		if res.Receipt.Address != want.BLAKE3 || res.Receipt.BackendID != "local" {
			rt.Fatalf("receipt %+v", res.Receipt)
		}
		// Ranges against bytes.Reader slices.
		for range 5 {
			off := rapid.Int64Range(-1, int64(size)+1).Draw(rt, "off")
			n := rapid.Int64Range(-2, int64(size)+1).Draw(rt, "len")
			rc, err := d.ServeObject(ctx, want.BLAKE3, off, n)
			if off < 0 || n < -1 || off > int64(size) {
				if !errors.Is(err, ErrInvalidRange) {
					rt.Fatalf("ServeObject(%d,%d) of %d: %v, want ErrInvalidRange", off, n, size, err)
				}
				continue
			}
			if err != nil {
				rt.Fatal(err)
			}
			got, err := io.ReadAll(rc)
			rc.Close()
			if err != nil {
				rt.Fatal(err)
			}
			ref := io.NewSectionReader(bytes.NewReader(b), off, int64(size)-off)
			var wantB []byte
			if n < 0 {
				wantB, _ = io.ReadAll(ref)
			} else {
				wantB, _ = io.ReadAll(io.LimitReader(ref, n))
			}
			if !bytes.Equal(got, wantB) {
				rt.Fatalf("ServeObject(%d,%d): %d bytes, want %d", off, n, len(got), len(wantB))
			}
		}
		if _, err := d.VerifyObject(ctx, want.BLAKE3); err != nil {
			rt.Fatal(err)
		}
		if info, err := d.StatObject(ctx, want.BLAKE3); err != nil || info.Size != int64(size) {
			rt.Fatalf("StatObject: %+v %v", info, err)
		}
	})
}

func TestIngestTwiceIsNoOp(t *testing.T) {
	d, be := newDP(t)
	b := bytes.Repeat([]byte("abc"), 100_000)
	r1, err := d.IngestStream(t.Context(), bytes.NewReader(b), IngestOptions{})
	if err != nil {
		t.Fatal(err)
	}
	r2, err := d.IngestStream(t.Context(), bytes.NewReader(b), IngestOptions{Expect: ExpectedOf(r1.Sum)})
	if err != nil || r2 != r1 {
		t.Fatalf("second ingest: %+v %v", r2, err)
	}
	if objs, tmp := stored(t, be); len(objs) != 1 || len(tmp) != 0 {
		t.Fatalf("objects %v, incomplete %v", objs, tmp)
	}
}

func TestIngestExpectMismatch(t *testing.T) {
	b := bytes.Repeat([]byte("0123456789"), 50_000)
	good := sumOf(b)
	other := sumOf([]byte("other"))
	for name, x := range map[string]*Expected{
		"blake3":       {BLAKE3: other.BLAKE3},
		"sha256":       {SHA256: other.SHA256},
		"size short":   {Size: good.Size - 1, SizeKnown: true},
		"size long":    {Size: good.Size + 1, SizeKnown: true},
		"size zero":    {Size: 0, SizeKnown: true},
		"size small":   {Size: smallChunk - 1, SizeKnown: true}, // read through a small buffer, then longer
		"size medium":  {Size: mediumChunk - 1, SizeKnown: true},
		"sha256 only":  {BLAKE3: good.BLAKE3, SHA256: other.SHA256, Size: good.Size, SizeKnown: true},
		"blake3 wrong": {BLAKE3: other.BLAKE3, SHA256: good.SHA256, Size: good.Size, SizeKnown: true},
	} {
		t.Run(name, func(t *testing.T) {
			d, be := newDP(t)
			_, err := d.IngestStream(t.Context(), bytes.NewReader(b), IngestOptions{Expect: x})
			var xe *ExpectError
			if !errors.Is(err, ErrDigestMismatch) || !errors.As(err, &xe) {
				t.Fatalf("IngestStream: %v, want an *ExpectError", err)
			}
			expectEmpty(t, be)
		})
	}
	d, be := newDP(t)
	if _, err := d.IngestStream(t.Context(), bytes.NewReader(b), IngestOptions{Expect: &Expected{BLAKE3: good.SHA256}}); err == nil {
		t.Fatal("an SHA-256 digest given as the expected BLAKE3 was accepted")
	}
	if _, err := d.IngestStream(t.Context(), bytes.NewReader(b), IngestOptions{Expect: ExpectedOf(good)}); err != nil {
		t.Fatal(err)
	}
	if objs, _ := stored(t, be); len(objs) != 1 {
		t.Fatalf("objects: %v", objs)
	}
}

// TestIngestAroundSmallChunk: streams whose declared size is just below,
// at and above the small and medium buffers' sizes store their exact
// bytes.
func TestIngestAroundSmallChunk(t *testing.T) {
	d, be := newDP(t)
	sizes := []int{0, 1, smallChunk - 1, smallChunk, smallChunk + 1, mediumChunk - 1, mediumChunk, chunk + 1}
	for _, n := range sizes {
		b := bytes.Repeat([]byte{byte(n)}, n)
		want := sumOf(b)
		res, err := d.IngestStream(t.Context(), bytes.NewReader(b), IngestOptions{Expect: ExpectedOf(want)})
		if err != nil || res.Sum != want {
			t.Fatalf("%d bytes: %+v, %v; want %+v", n, res.Sum, err, want)
		}
	}
	if objs, tmp := stored(t, be); len(objs) != len(sizes) || len(tmp) != 0 {
		t.Fatalf("objects %d, incomplete %v", len(objs), tmp)
	}
}

type failingReader struct {
	r     io.Reader
	after int
	n     int
	err   error
	onEnd func()
}

func (f *failingReader) Read(p []byte) (int, error) {
	if f.n >= f.after {
		if f.onEnd == nil {
			return 0, f.err
		}
		f.onEnd() // then go on delivering bytes: the consumer must notice
		f.onEnd = nil
		f.after = int(^uint(0) >> 1)
	}
	k, err := f.r.Read(p[:min(len(p), f.after-f.n)])
	f.n += k
	return k, err
}

func TestIngestFailuresLeaveNothing(t *testing.T) {
	b := bytes.Repeat([]byte("x"), 5*chunk)
	t.Run("read error", func(t *testing.T) {
		d, be := newDP(t)
		boom := errors.New("disk on fire")
		_, err := d.IngestStream(t.Context(), &failingReader{r: bytes.NewReader(b), after: 3 * chunk, err: boom}, IngestOptions{})
		if !errors.Is(err, boom) {
			t.Fatalf("IngestStream: %v", err)
		}
		expectEmpty(t, be)
	})
	t.Run("cancelled mid-stream", func(t *testing.T) {
		d, be := newDP(t)
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		_, err := d.IngestStream(ctx, &failingReader{r: bytes.NewReader(b), after: 2*chunk + 5, onEnd: cancel}, IngestOptions{})
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("IngestStream: %v", err)
		}
		expectEmpty(t, be)
	})
}

func TestVerifyDetectsCorruption(t *testing.T) {
	d, be := newDP(t)
	ctx := t.Context()
	b := bytes.Repeat([]byte("precious "), 100_000)
	res, err := d.IngestStream(ctx, bytes.NewReader(b), IngestOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.VerifyObject(ctx, res.Receipt.Address); err != nil {
		t.Fatalf("VerifyObject of a sound object: %v", err)
	}
	p := filepath.Join(be.Root(), filepath.FromSlash(res.Receipt.Key))
	for _, pos := range []int{0, len(b) / 2, len(b) - 1} {
		raw, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		raw[pos] ^= 0x10
		os.Chmod(p, 0o644)
		if err := os.WriteFile(p, raw, 0o644); err != nil {
			t.Fatal(err)
		}
		_, err = d.VerifyObject(ctx, res.Receipt.Address)
		var me *storage.MismatchError
		if !errors.Is(err, ErrDigestMismatch) || !errors.As(err, &me) || me.Want != res.Receipt.Address {
			t.Fatalf("bit %d flipped: VerifyObject: %v, want a mismatch", pos, err)
		}
		raw[pos] ^= 0x10
		os.WriteFile(p, raw, 0o644)
	}
	// Truncation.
	os.WriteFile(p, b[:len(b)-1], 0o644)
	if _, err := d.VerifyObject(ctx, res.Receipt.Address); !errors.Is(err, ErrDigestMismatch) {
		t.Fatalf("truncated: VerifyObject: %v", err)
	}
	if _, err := d.VerifyObject(ctx, sumOf([]byte("absent")).BLAKE3); !errors.Is(err, ErrNotFound) {
		t.Fatalf("VerifyObject of a missing object: %v", err)
	}
	if err := d.DeleteObject(ctx, res.Receipt.Address); err != nil {
		t.Fatal(err)
	}
	if err := d.DeleteObject(ctx, res.Receipt.Address); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second DeleteObject: %v", err)
	}
}

// plainBackend hides the local writer's storage.Summer, so that ingest
// takes its own-hasher path.
type plainBackend struct{ storage.Backend }

type plainWriter struct{ storage.Writer }

func (p plainBackend) Create(ctx context.Context) (storage.Writer, error) {
	w, err := p.Backend.Create(ctx)
	return plainWriter{w}, err
}

func TestIngestWithoutSummer(t *testing.T) {
	_, be := newDP(t)
	d, err := NewInProcess("plain", plainBackend{be})
	if err != nil {
		t.Fatal(err)
	}
	b := bytes.Repeat([]byte("y"), chunk+77)
	res, err := d.IngestStream(t.Context(), bytes.NewReader(b), IngestOptions{})
	if err != nil || res.Sum != sumOf(b) {
		t.Fatalf("%+v %v", res, err)
	}
	if _, err := d.IngestStream(t.Context(), bytes.NewReader(b), IngestOptions{Expect: &Expected{SHA256: sumOf(nil).SHA256}}); !errors.Is(err, ErrDigestMismatch) {
		t.Fatalf("expected mismatch: %v", err)
	}
	if objs, tmp := stored(t, be); len(objs) != 1 || len(tmp) != 0 {
		t.Fatalf("objects %v, incomplete %v", objs, tmp)
	}
}

// TestIngestBatch: good sources are stored and durable, a source that does
// not match its expectation is refused with its own error and leaves
// nothing, and a source that cannot be opened says so.
func TestIngestBatch(t *testing.T) {
	d, be := newDP(t)
	ctx := context.Background()
	var srcs []Source
	var bodies [][]byte
	for i := range 40 {
		b := bytes.Repeat([]byte{byte(i)}, 1000+i*97)
		bodies = append(bodies, b)
		sum, _ := identity.SumReader(bytes.NewReader(b))
		srcs = append(srcs, Source{Open: func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }, Opts: IngestOptions{Expect: ExpectedOf(sum)}})
	}
	// Source 7 changed after it was "digested".
	srcs[7].Open = func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader("changed")), nil }
	res, errs := d.IngestBatch(ctx, srcs, 4)
	if !errors.Is(errs[7], ErrDigestMismatch) {
		t.Fatalf("source 7: %v, want ErrDigestMismatch", errs[7])
	}
	stored := 0
	for i, err := range errs {
		if i == 7 || err != nil {
			continue // the rest may have been cancelled after the failure
		}
		stored++
		if res[i].Sum.Size != int64(len(bodies[i])) {
			t.Fatalf("source %d: result %+v", i, res[i])
		}
		if _, err := d.VerifyObject(ctx, res[i].Sum.BLAKE3); err != nil {
			t.Fatalf("source %d not stored intact: %v", i, err)
		}
	}
	changed, _ := identity.SumReader(strings.NewReader("changed"))
	if _, err := be.Head(ctx, changed.BLAKE3); !errors.Is(err, ErrNotFound) {
		t.Fatalf("refused bytes were stored: %v", err)
	}
	// A clean batch stores everything.
	srcs[7].Open = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(bodies[7])), nil }
	if _, errs := d.IngestBatch(ctx, srcs, 4); errors.Join(errs...) != nil {
		t.Fatalf("clean batch: %v", errors.Join(errs...))
	}
	t.Logf("first batch stored %d of 39 before stopping", stored)
}
