package manifest

import (
	"bytes"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/artifactstore/artifact-store/pkg/canonical"
	"github.com/artifactstore/artifact-store/pkg/identity"
	"github.com/artifactstore/artifact-store/pkg/records"
	"github.com/artifactstore/artifact-store/pkg/ref"
	"github.com/gowebpki/jcs"
	"pgregory.net/rapid"
)

func genText(max int) *rapid.Generator[string] {
	return rapid.Custom(func(t *rapid.T) string {
		s := rapid.OneOf(
			rapid.StringN(0, max/4, max),
			rapid.StringOf(rapid.RuneFrom([]rune("aZ0 \"\\/\u20ac\u00f6\U0001F600\x01\x1f\x7f<>&\u2028"))),
		).Draw(t, "text")
		s = strings.ReplaceAll(s, "\x00", "")
		if len(s) > max {
			s = s[:0]
		}
		return s
	})
}

func genMap() *rapid.Generator[map[string]string] {
	return rapid.Custom(func(t *rapid.T) map[string]string {
		m := rapid.MapOfN(rapid.StringMatching(`[A-Za-z0-9][A-Za-z0-9._/-]{0,12}`), genText(64), 0, 4).Draw(t, "map")
		if len(m) == 0 {
			return nil
		}
		return m
	})
}

func genDigest(alg identity.Algorithm) *rapid.Generator[identity.Digest] {
	return rapid.Custom(func(t *rapid.T) identity.Digest {
		d, err := identity.NewDigest(alg, rapid.SliceOfN(rapid.Byte(), 32, 32).Draw(t, "sum"))
		if err != nil {
			t.Fatal(err)
		}
		return d
	})
}

var genSegment = rapid.StringMatching(`[a-zA-Z0-9 ._\-ü水]{1,6}`).Filter(func(s string) bool { return s != "." && s != ".." })

// genManifest generates valid manifests.
func genManifest() *rapid.Generator[Manifest] {
	return rapid.Custom(func(t *rapid.T) Manifest {
		var m Manifest
		if rapid.Bool().Draw(t, "named") {
			m.Package.Name = rapid.StringMatching(`[a-z0-9][a-z0-9._-]{0,10}(/[a-z0-9][a-z0-9._-]{0,5})?`).Draw(t, "name")
			m.Package.Version = rapid.StringMatching(`[!-?A-~]{1,12}`).Filter(func(s string) bool { return ref.CheckVersion(s) == nil }).Draw(t, "version")
		}
		if rapid.Bool().Draw(t, "dated") {
			m.Package.CreatedAt = time.Unix(rapid.Int64Range(0, 253402300799).Draw(t, "time"), 0).UTC().Format(TimeLayout)
		}
		m.Package.Labels = genMap().Draw(t, "labels")
		paths := map[string]bool{}
		for range rapid.IntRange(0, 8).Draw(t, "files") {
			segs := rapid.SliceOfN(genSegment, 1, 3).Draw(t, "segs")
			paths[strings.Join(segs, "/")] = true
		}
		for p := range paths {
			for _, a := range records.Ancestors(p) {
				if paths[a] {
					delete(paths, p) // "a" and "a/b" cannot both be files
				}
			}
		}
		for p := range paths {
			m.Files = append(m.Files, records.File{
				Path:           p,
				Size:           rapid.Uint64Range(0, 1<<53-1).Draw(t, "size"),
				ContentAddress: genDigest(identity.BLAKE3).Draw(t, "b3"),
				SHA256:         genDigest(identity.SHA256).Draw(t, "s2"),
			})
		}
		sort.Slice(m.Files, func(i, j int) bool { return m.Files[i].Path < m.Files[j].Path })
		seen := map[Receipt]bool{}
		for range rapid.IntRange(0, 3).Draw(t, "receipts") {
			r := Receipt{
				ContentAddress: genDigest(identity.BLAKE3).Draw(t, "ca"),
				BackendID:      rapid.SampledFrom([]string{"local", "s3", "s3-eu.1"}).Draw(t, "backend"),
				Key:            genText(32).Filter(func(s string) bool { return s != "" }).Draw(t, "key"),
			}
			if !seen[r] {
				seen[r] = true
				m.StorageReceipts = append(m.StorageReceipts, r)
			}
		}
		SortReceipts(m.StorageReceipts)
		if rapid.Bool().Draw(t, "class") {
			m.Retention.Class = rapid.StringMatching(`[a-z0-9][a-z0-9._-]{0,10}`).Draw(t, "class")
		}
		m.Retention.Hold = rapid.Bool().Draw(t, "hold")
		m.Provenance.Producer = Producer{
			Tool:    genText(20).Filter(func(s string) bool { return s != "" }).Draw(t, "tool"),
			Version: genText(20).Filter(func(s string) bool { return s != "" }).Draw(t, "pversion"),
		}
		m.Provenance.Facts = genMap().Draw(t, "facts")
		return m
	})
}

func TestPropertyCodec(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		m := genManifest().Draw(t, "m")
		b, err := Encode(m)
		if err != nil {
			t.Fatalf("Encode: %v", err)
		}
		got, err := Decode(b)
		if err != nil {
			t.Fatalf("Decode(Encode(m)): %v", err)
		}
		if !reflect.DeepEqual(got, m) {
			t.Fatalf("Decode(Encode(m)) = %+v\nwant %+v", got, m)
		}
		j, err := JCS(m)
		if err != nil {
			t.Fatalf("JCS: %v", err)
		}
		if again, err := jcs.Transform(j); err != nil || !bytes.Equal(again, j) {
			t.Fatalf("jcs.Transform(JCS(m)) changed it: %v\n%s\n%s", err, j, again)
		}
		c, err := CBORFromJCS(j)
		if err != nil {
			t.Fatalf("CBORFromJCS: %v", err)
		}
		fromC, err := Decode(c)
		if err != nil {
			t.Fatalf("Decode(CBORFromJCS(JCS(m))): %v", err)
		}
		if b2, err := Encode(fromC); err != nil || !bytes.Equal(b2, b) {
			t.Fatalf("Encode(Decode(CBORFromJCS(JCS(m)))) differs from Encode(m): %v", err)
		}
		fromJ, err := FromJCS(j)
		if err != nil || !reflect.DeepEqual(fromJ, m) {
			t.Fatalf("FromJCS(JCS(m)) = %+v, %v", fromJ, err)
		}
		if d, _ := Digest(m); d != DigestOf(b) {
			t.Fatal("Digest differs from DigestOf(Encode)")
		}
	})
}

// acceptsOnlyCanonical is the fuzz and mutation property: whatever Decode
// accepts re-encodes to exactly the input, and likewise for FromJCS.
func acceptsOnlyCanonical(t interface{ Fatalf(string, ...any) }, b []byte) {
	m, err := Decode(b)
	h, herr := DecodeHeader(b)
	if (err == nil) != (herr == nil) {
		t.Fatalf("Decode: %v, but DecodeHeader: %v", err, herr)
	}
	if err == nil {
		m.Files, m.StorageReceipts = nil, nil
		if !reflect.DeepEqual(h, m) {
			t.Fatalf("DecodeHeader = %+v, Decode without the lists = %+v", h, m)
		}
	}
	if m, err := Decode(b); err == nil {
		enc, err := Encode(m)
		if err != nil || !bytes.Equal(enc, b) {
			t.Fatalf("Decode accepted %x but Encode gives %x, %v", b, enc, err)
		}
	}
	if m, err := FromJCS(b); err == nil {
		enc, err := JCS(m)
		if err != nil || !bytes.Equal(enc, b) {
			t.Fatalf("FromJCS accepted %q but JCS gives %q, %v", b, enc, err)
		}
	}
}

func TestPropertyMutations(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		m := genManifest().Draw(t, "m")
		var b []byte
		var err error
		if rapid.Bool().Draw(t, "json") {
			b, err = JCS(m)
		} else {
			b, err = Encode(m)
		}
		if err != nil {
			t.Fatal(err)
		}
		for range rapid.IntRange(1, 3).Draw(t, "mutations") {
			switch op := rapid.IntRange(0, 2).Draw(t, "op"); {
			case op == 0 && len(b) > 0:
				i := rapid.IntRange(0, len(b)-1).Draw(t, "i")
				b[i] ^= 1 << rapid.IntRange(0, 7).Draw(t, "bit")
			case op == 1 && len(b) > 0:
				i := rapid.IntRange(0, len(b)-1).Draw(t, "i")
				b = append(b[:i], b[i+1:]...)
			case op == 2:
				i := rapid.IntRange(0, len(b)).Draw(t, "i")
				b = append(b[:i], append([]byte{rapid.Byte().Draw(t, "byte")}, b[i:]...)...)
			}
		}
		acceptsOnlyCanonical(t, b)
	})
}

// TestTamper flips every bit of a small manifest's encoding: each flip is
// either rejected or yields a manifest that re-encodes to the flipped
// bytes, and thus has a different digest.
func TestTamper(t *testing.T) {
	b, err := Encode(sample())
	if err != nil {
		t.Fatal(err)
	}
	want := DigestOf(b)
	accepted := 0
	for i := range b {
		for bit := range 8 {
			c := bytes.Clone(b)
			c[i] ^= 1 << bit
			acceptsOnlyCanonical(t, c)
			if _, err := Decode(c); err == nil {
				accepted++
				if DigestOf(c) == want {
					t.Fatal("digest unchanged by a flip")
				}
			}
		}
	}
	t.Logf("%d of %d single-bit flips decode (changed text or digits); the rest are rejected", accepted, 8*len(b))
}

func FuzzDecode(f *testing.F) {
	for _, m := range []Manifest{sample(), {Provenance: Provenance{Producer: Producer{Tool: "t", Version: "1"}}}} {
		b, _ := Encode(m)
		f.Add(b)
	}
	f.Add([]byte{0xa0})
	f.Fuzz(func(t *testing.T, b []byte) { acceptsOnlyCanonical(t, b) })
}

func FuzzFromJCS(f *testing.F) {
	j, _ := JCS(sample())
	f.Add(j)
	f.Add([]byte(`{"a":1}`))
	f.Add([]byte(`{"files":[],"manifest_version":1e0}`))
	f.Fuzz(func(t *testing.T, b []byte) { acceptsOnlyCanonical(t, b) })
}

// TestEncodeMatchesMarshal: the hand-written encoder gives exactly the
// bytes canonical.Marshal gives for the wire shape (the generic encoder,
// RFC 8949 §4.2.1 order), and it never outgrows the buffer it sized.
func TestEncodeMatchesMarshal(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		m := genManifest().Draw(t, "m")
		want, err := canonical.Marshal(m.toWire())
		if err != nil {
			t.Fatalf("canonical.Marshal: %v", err)
		}
		got, err := Encode(m)
		if err != nil {
			t.Fatalf("Encode: %v", err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("Encode = %x\ncanonical.Marshal = %x", got, want)
		}
		if bound := encodedSizeBound(m); len(got) > bound || cap(got) != bound {
			t.Fatalf("encoded %d bytes into a buffer of %d, sized %d", len(got), cap(got), bound)
		}
	})
}
