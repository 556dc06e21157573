package identity

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"testing"

	"lukechampine.com/blake3"
	"pgregory.net/rapid"
)

func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i % 251)
	}
	return b
}

// TestKnownAnswers checks both digests against vectors produced by b3sum and
// sha256sum (scripts/gen-digest-vectors.sh), through every entry point.
func TestKnownAnswers(t *testing.T) {
	f, err := os.Open("testdata/vectors.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	count := 0
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") || line == "" {
			continue
		}
		fields := strings.Fields(line)
		if len(fields) != 3 {
			t.Fatalf("bad vector line %q", line)
		}
		n, err := strconv.Atoi(fields[0])
		if err != nil {
			t.Fatal(err)
		}
		wantB3 := MustParse("blake3:" + fields[1])
		wantS2 := MustParse("sha256:" + fields[2])
		data := pattern(n)

		sum, err := SumReader(bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		if sum.BLAKE3 != wantB3 || sum.SHA256 != wantS2 || sum.Size != int64(n) {
			t.Errorf("len %d: SumReader = %v %v %d, want %v %v", n, sum.BLAKE3, sum.SHA256, sum.Size, wantB3, wantS2)
		}
		// Byte-at-a-time writes exercise the sequential path.
		h := NewHasher()
		for i := range data {
			h.Write(data[i : i+1])
		}
		if got := h.Sum(); got != sum {
			t.Errorf("len %d: byte-wise Hasher = %+v, want %+v", n, got, sum)
		}
		reg := NewAlgorithms()
		if d, _ := reg.Of(BLAKE3, data); d != wantB3 {
			t.Errorf("len %d: Algorithms.Of(blake3) = %v", n, d)
		}
		if d, _ := reg.Of(SHA256, data); d != wantS2 {
			t.Errorf("len %d: Algorithms.Of(sha256) = %v", n, d)
		}
		count++
	}
	if count != 25 {
		t.Fatalf("read %d vectors, want 25", count)
	}
}

func TestParse(t *testing.T) {
	hex64 := strings.Repeat("ab", 32)
	good := []string{"blake3:" + hex64, "sha256:" + hex64, "sha256:" + strings.Repeat("0", 64)}
	for _, s := range good {
		d, err := Parse(s)
		if err != nil {
			t.Errorf("Parse(%q): %v", s, err)
			continue
		}
		if d.String() != s {
			t.Errorf("Parse(%q).String() = %q", s, d.String())
		}
	}
	bad := []struct{ in, why string }{
		{"", "missing ':'"},
		{hex64, "missing ':'"},
		{":" + hex64, "empty algorithm"},
		{"md5:" + hex64, "unknown algorithm"},
		{"BLAKE3:" + hex64, "unknown algorithm"},
		{"blake3:" + strings.ToUpper(hex64), "not a lowercase hex digit"},
		{"blake3:" + hex64[:63], "must be 64 hex digits, got 63"},
		{"blake3:" + hex64 + "a", "must be 64 hex digits, got 65"},
		{" blake3:" + hex64, "unknown algorithm"},
		{"blake3:" + hex64[:63] + " ", "not a lowercase hex digit"},
		{"blake3:" + hex64[:62] + "zz", "byte 62"},
		{"blake3: " + hex64[1:], "byte 0"},
		{"blake3:" + hex64[:63] + "\n", "not a lowercase hex digit"},
	}
	for _, c := range bad {
		_, err := Parse(c.in)
		if err == nil {
			t.Errorf("Parse(%q) succeeded, want error", c.in)
			continue
		}
		if !errors.Is(err, ErrInvalidAddress) {
			t.Errorf("Parse(%q) error %v does not wrap ErrInvalidAddress", c.in, err)
		}
		if !strings.Contains(err.Error(), c.why) {
			t.Errorf("Parse(%q) = %v, want it to say %q", c.in, err, c.why)
		}
	}
}

func TestZeroDigest(t *testing.T) {
	var d Digest
	if !d.IsZero() || d.String() != "" {
		t.Fatalf("zero digest: IsZero=%v String=%q", d.IsZero(), d.String())
	}
	if _, err := d.MarshalText(); err == nil {
		t.Fatal("MarshalText of zero digest succeeded")
	}
	if d == MustParse("sha256:"+strings.Repeat("0", 64)) {
		t.Fatal("zero Digest equals the all-zero sha256 digest")
	}
	var u Digest
	if err := u.UnmarshalText([]byte("nope")); err == nil || !u.IsZero() {
		t.Fatalf("UnmarshalText(nope) = %v, digest %v", err, u)
	}
}

func TestMapKey(t *testing.T) {
	a := MustParse("blake3:" + strings.Repeat("01", 32))
	b := MustParse("sha256:" + strings.Repeat("01", 32)) // same bytes, other algorithm
	m := map[Digest]int{a: 1, b: 2}
	if len(m) != 2 || m[MustParse(a.String())] != 1 {
		t.Fatalf("map keyed by Digest misbehaves: %v", m)
	}
}

func TestAlgorithms(t *testing.T) {
	r := NewAlgorithms()
	if err := r.Register(BLAKE3, 32, nil); err == nil {
		t.Error("re-registering blake3 succeeded")
	}
	if err := r.Register("Bad-Name", 32, sha256.New); err == nil {
		t.Error("registering an upper-case name succeeded")
	}
	if err := r.Register("sha256x", 32, sha256.New); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Parse("sha256x:" + strings.Repeat("00", 32)); err != nil {
		t.Errorf("registry Parse of its own algorithm: %v", err)
	}
	if _, err := Parse("sha256x:" + strings.Repeat("00", 32)); err == nil {
		t.Error("package Parse accepted an algorithm registered only in another registry")
	}
	if _, err := r.New("nope"); err == nil {
		t.Error("New(nope) succeeded")
	}
}

// chunkedReader returns data in the given chunk sizes, to exercise every
// split of the stream.
type chunkedReader struct {
	data   []byte
	chunks []int
}

func (c *chunkedReader) Read(p []byte) (int, error) {
	if len(c.data) == 0 {
		return 0, io.EOF
	}
	n := len(c.data)
	if len(c.chunks) > 0 {
		n = min(n, c.chunks[0])
		c.chunks = c.chunks[1:]
	}
	n = min(n, len(p))
	copy(p, c.data[:n])
	c.data = c.data[n:]
	return n, nil
}

func TestPropertyStreamEqualsOneShot(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		// Lengths up to 2 MiB reach the pipelined path of SumReaderBuffer
		// (buffers of 256 KiB and more); the bytes come from a drawn seed.
		data := make([]byte, rapid.IntRange(0, 2<<20).Draw(t, "len"))
		rand.NewChaCha8([32]byte{byte(rapid.Uint64().Draw(t, "seed"))}).Read(data)
		chunks := rapid.SliceOfN(rapid.IntRange(0, 600_000), 0, 20).Draw(t, "chunks")
		wantB3 := blake3.Sum256(data)
		wantS2 := sha256.Sum256(data)

		sum, err := SumReaderBuffer(&chunkedReader{data: data, chunks: chunks}, make([]byte, rapid.IntRange(1, 1<<20).Draw(t, "buf")))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(sum.BLAKE3.Bytes(), wantB3[:]) || !bytes.Equal(sum.SHA256.Bytes(), wantS2[:]) || sum.Size != int64(len(data)) {
			t.Fatalf("SumReader differs from one-shot digests")
		}
		// The same split fed as writes to a Hasher.
		h := NewHasher()
		rest := data
		for _, c := range chunks {
			c = min(c, len(rest))
			h.Write(rest[:c])
			rest = rest[c:]
		}
		h.Write(rest)
		if h.Sum() != sum {
			t.Fatalf("Hasher with chunked writes differs from SumReader")
		}
	})
}

func TestPropertyTextRoundTrip(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		alg := rapid.SampledFrom([]Algorithm{BLAKE3, SHA256}).Draw(t, "alg")
		raw := rapid.SliceOfN(rapid.Byte(), 32, 32).Draw(t, "raw")
		d, err := NewDigest(alg, raw)
		if err != nil {
			t.Fatal(err)
		}
		p, err := Parse(d.String())
		if err != nil || p != d {
			t.Fatalf("Parse(%q) = %v, %v", d.String(), p, err)
		}
		txt, _ := d.MarshalText()
		var u Digest
		if err := u.UnmarshalText(txt); err != nil || u != d {
			t.Fatalf("text round trip: %v %v", u, err)
		}
	})
}

func FuzzParse(f *testing.F) {
	f.Add("blake3:" + strings.Repeat("ab", 32))
	f.Add("sha256:" + strings.Repeat("0", 64))
	f.Add("blake3:")
	f.Add("::")
	f.Fuzz(func(t *testing.T, s string) {
		d, err := Parse(s)
		if err != nil {
			if !d.IsZero() {
				t.Fatalf("failed Parse returned non-zero digest")
			}
			return
		}
		// Accepted input must be exactly the canonical text form.
		if d.String() != s {
			t.Fatalf("Parse(%q) accepted a non-canonical form (canonical %q)", s, d.String())
		}
	})
}

func BenchmarkSumReader(b *testing.B) {
	data := pattern(64 << 20)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := SumReader(bytes.NewReader(data)); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSHA256Only(b *testing.B) {
	data := pattern(64 << 20)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		h := sha256.New()
		io.CopyBuffer(h, bytes.NewReader(data), make([]byte, BufferSize))
		h.Sum(nil)
	}
}

func BenchmarkBLAKE3Only(b *testing.B) {
	data := pattern(64 << 20)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		h := blake3.New(32, nil)
		io.CopyBuffer(h, bytes.NewReader(data), make([]byte, BufferSize))
		h.Sum(nil)
	}
}

// TestAppendText: AppendText and TextLen agree with String for every
// algorithm, and the zero Digest is refused.
func TestAppendText(t *testing.T) {
	for _, alg := range []Algorithm{BLAKE3, SHA256} {
		d, err := NewAlgorithms().Of(alg, []byte("abc"))
		if err != nil {
			t.Fatal(err)
		}
		b, err := d.AppendText([]byte("x="))
		if err != nil || string(b) != "x="+d.String() || d.TextLen() != len(d.String()) || d.Size() != len(d.Bytes()) {
			t.Errorf("%s: AppendText = %q, %v; TextLen %d, Size %d; want %q", alg, b, err, d.TextLen(), d.Size(), "x="+d.String())
		}
	}
	var zero Digest
	if _, err := zero.AppendText(nil); !errors.Is(err, ErrInvalidAddress) || zero.TextLen() != 0 {
		t.Errorf("zero digest: AppendText error %v, TextLen %d", err, zero.TextLen())
	}
}

// TestCompareOrdersAsText: Compare sorts digests exactly as their text
// forms sort, within and across algorithms.
func TestCompareOrdersAsText(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		gen := func(label string) Digest {
			alg := rapid.SampledFrom([]Algorithm{BLAKE3, SHA256}).Draw(t, label+"alg")
			d, err := NewAlgorithms().Of(alg, rapid.SliceOfN(rapid.Byte(), 0, 8).Draw(t, label))
			if err != nil {
				t.Fatal(err)
			}
			return d
		}
		a, b := gen("a"), gen("b")
		if rapid.Bool().Draw(t, "same") {
			b = a
		}
		if got, want := a.Compare(b), strings.Compare(a.String(), b.String()); got != want {
			t.Fatalf("Compare(%v, %v) = %d, strings.Compare gives %d", a, b, got, want)
		}
	})
}
