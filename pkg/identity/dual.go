package identity

import (
	"crypto/sha256"
	"hash"
	"io"
	"sync"

	"lukechampine.com/blake3"
)

// Sum is the dual digest of one stream of bytes: its BLAKE3 content address,
// its SHA-256 and its length.
type Sum struct {
	BLAKE3 Digest
	SHA256 Digest
	Size   int64
}

// parallelMin is the write size from which Hasher runs SHA-256 on a second
// goroutine while BLAKE3 runs on the caller's. Below it the handoff costs
// more than it saves.
const parallelMin = 64 << 10

// BufferSize is the buffer that SumReader uses: four 1 MiB reads in flight.
// BLAKE3 runs markedly faster on writes of 1 MiB than of 64 KiB.
const BufferSize = 4 << 20

// Hasher computes BLAKE3 and SHA-256 of everything written to it, in one
// pass. Large writes hash the two algorithms concurrently on two goroutines;
// Write returns only when both are done with p, so p is never retained.
// A Hasher is not safe for concurrent use; the zero value is not usable,
// call NewHasher.
type Hasher struct {
	b3 *blake3.Hasher
	s2 hash.Hash
	n  int64
	wg sync.WaitGroup
}

// NewHasher returns a Hasher ready for writing.
func NewHasher() *Hasher {
	return &Hasher{b3: blake3.New(32, nil), s2: sha256.New()}
}

// Write hashes p with both algorithms. It never fails.
func (h *Hasher) Write(p []byte) (int, error) {
	h.n += int64(len(p))
	if len(p) < parallelMin {
		h.b3.Write(p)
		h.s2.Write(p)
		return len(p), nil
	}
	h.wg.Add(1)
	go func() {
		h.s2.Write(p)
		h.wg.Done()
	}()
	h.b3.Write(p)
	h.wg.Wait()
	return len(p), nil
}

// Sum returns the dual digest of the bytes written so far. Further writes
// continue the same stream.
func (h *Hasher) Sum() Sum {
	return Sum{
		BLAKE3: digestOf(BLAKE3, h.b3),
		SHA256: digestOf(SHA256, h.s2),
		Size:   h.n,
	}
}

// Reset forgets everything written so that h can be reused.
func (h *Hasher) Reset() {
	h.b3.Reset()
	h.s2.Reset()
	h.n = 0
}

// SumReader reads r to EOF once and returns its dual digest. Memory use is
// bounded by one BufferSize buffer whatever the length of r.
func SumReader(r io.Reader) (Sum, error) {
	return SumReaderBuffer(r, make([]byte, BufferSize))
}

// sumSegments is how many pieces SumReaderBuffer cuts its buffer into: the
// depth of the queue between the reading goroutine and the SHA-256 one.
const sumSegments = 4

// SumReaderBuffer is SumReader with a caller-owned buffer, for callers that
// digest many streams and want to reuse one buffer. buf must not be used by
// anything else until SumReaderBuffer returns. See Summer for how the work
// is shared between goroutines.
func SumReaderBuffer(r io.Reader, buf []byte) (Sum, error) {
	return (&Summer{buf: buf, b3: blake3.New(32, nil), s2: sha256.New()}).sum(r)
}

// Summer digests streams one after another with one buffer and one pair of
// hashers, so that a caller digesting many small files allocates nothing
// per file. The reads and BLAKE3 run on the calling goroutine while SHA-256
// hashes earlier pieces of the buffer on a second one, so the slower hash
// bounds the time; a stream that fits in one piece is hashed on the calling
// goroutine alone. A Summer is not safe for concurrent use.
type Summer struct {
	buf []byte
	b3  *blake3.Hasher
	s2  hash.Hash
}

// NewSummer returns a Summer with a BufferSize buffer.
func NewSummer() *Summer {
	return &Summer{buf: make([]byte, BufferSize), b3: blake3.New(32, nil), s2: sha256.New()}
}

// Sum reads r to EOF once and returns its dual digest, as SumReader does.
func (s *Summer) Sum(r io.Reader) (Sum, error) {
	s.b3.Reset()
	s.s2.Reset()
	return s.sum(r)
}

func (s *Summer) sum(r io.Reader) (Sum, error) {
	buf, b3, s2 := s.buf, s.b3, s.s2
	seg := max(len(buf)/sumSegments, 1)
	first := buf[:seg:seg] // full slice expressions: b[:cap(b)] below must not reach the next piece
	k, err := io.ReadFull(r, first)
	b3.Write(first[:k])
	n := int64(k)
	if err != nil || len(buf) < sumSegments*parallelMin {
		// Short stream, or a buffer too small to be worth a second goroutine.
		s2.Write(first[:k])
		for err == nil {
			k, err = io.ReadFull(r, buf)
			b3.Write(buf[:k])
			s2.Write(buf[:k])
			n += int64(k)
		}
		return finish(b3, s2, n, err)
	}

	free := make(chan []byte, sumSegments)
	todo := make(chan []byte, sumSegments)
	for i := 1; i < sumSegments; i++ {
		free <- buf[i*seg : (i+1)*seg : (i+1)*seg]
	}
	todo <- first
	done := make(chan struct{})
	go func() {
		for b := range todo {
			s2.Write(b)
			free <- b[:cap(b)]
		}
		close(done)
	}()
	for err == nil {
		b := <-free
		k, err = io.ReadFull(r, b)
		n += int64(k)
		if k > 0 {
			b3.Write(b[:k])
			todo <- b[:k]
		}
	}
	close(todo)
	<-done
	return finish(b3, s2, n, err)
}

// finish turns the end of a read loop into a Sum: EOF is success.
func finish(b3, s2 hash.Hash, n int64, err error) (Sum, error) {
	if err != io.EOF && err != io.ErrUnexpectedEOF {
		return Sum{}, err
	}
	return Sum{BLAKE3: digestOf(BLAKE3, b3), SHA256: digestOf(SHA256, s2), Size: n}, nil
}
