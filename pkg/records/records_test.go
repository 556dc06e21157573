package records

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/artifactstore/artifact-store/pkg/canonical"
	"github.com/artifactstore/artifact-store/pkg/identity"
	"pgregory.net/rapid"
)

func sampleFile(path string) File {
	reg := identity.NewAlgorithms()
	b3, _ := reg.Of(identity.BLAKE3, []byte(path))
	s2, _ := reg.Of(identity.SHA256, []byte(path))
	return File{Path: path, Size: uint64(len(path)), ContentAddress: b3, SHA256: s2}
}

func TestRoundTripStream(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		paths := rapid.SliceOfN(rapid.StringMatching(`[a-z0-9/._-]{1,40}|[^\x00]{1,10}`), 0, 30).Draw(t, "paths")
		var buf bytes.Buffer
		w := NewWriter(&buf, CBOR)
		var want []File
		for _, p := range paths {
			f := sampleFile(p)
			want = append(want, f)
			if err := w.Write(f); err != nil {
				t.Fatal(err)
			}
		}
		w.Flush()
		r := NewReader(&buf)
		for i := range want {
			got, err := r.ReadFile()
			if err != nil {
				t.Fatalf("record %d: %v", i, err)
			}
			if got != want[i] {
				t.Fatalf("record %d: got %+v want %+v", i, got, want[i])
			}
		}
		if _, err := r.ReadFile(); err != io.EOF {
			t.Fatalf("after last record: %v, want io.EOF", err)
		}
	})
}

func TestEncodingIsCanonicalAndStable(t *testing.T) {
	f := sampleFile("bin/app")
	b, err := canonical.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	// Keys sort by encoded length first: path(4) size(4) sha256(6) content_address(15).
	for i, k := range []string{"path", "size", "sha256", "content_address"} {
		at := bytes.Index(b, []byte(k))
		if at < 0 {
			t.Fatalf("key %q missing", k)
		}
		if i > 0 && at < bytes.Index(b, []byte([]string{"path", "size", "sha256", "content_address"}[i-1])) {
			t.Fatalf("key %q out of canonical order in %x", k, b)
		}
	}
}

func TestReaderErrors(t *testing.T) {
	good, _ := canonical.Marshal(sampleFile("a"))
	extra, _ := canonical.Marshal(map[string]any{"path": "a", "size": 1, "content_address": sampleFile("a").ContentAddress, "sha256": sampleFile("a").SHA256, "mode": 420})
	wrongType, _ := canonical.Marshal(map[string]any{"path": 7, "size": 1, "content_address": sampleFile("a").ContentAddress, "sha256": sampleFile("a").SHA256})
	missing, _ := canonical.Marshal(map[string]any{"path": "a", "size": 1, "content_address": sampleFile("a").ContentAddress})
	swapped, _ := canonical.Marshal(map[string]any{"path": "a", "size": 1, "content_address": sampleFile("a").SHA256, "sha256": sampleFile("a").ContentAddress})
	cases := []struct {
		name  string
		input []byte
		want  string
		index int
	}{
		{"truncated", good[:len(good)-3], "truncated", 1},
		{"second truncated", append(append([]byte{}, good...), good[:10]...), "truncated", 2},
		{"json", []byte(`{"path":"a"}` + "\n"), "looks like JSON", 1},
		{"unknown field", extra, "unknown field", 1},
		{"wrong type", wrongType, "cannot unmarshal", 1},
		{"missing sha256", missing, "sha256", 1},
		{"swapped digests", swapped, "must be a blake3", 1},
		{"float", []byte{0xf9, 0x3c, 0x00}, "floating-point", 1},
		{"huge length", []byte{0x7b, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, "", 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := NewReader(bytes.NewReader(c.input))
			var err error
			for range 3 {
				if _, err = r.ReadFile(); err != nil {
					break
				}
			}
			if err == nil || err == io.EOF {
				t.Fatalf("no error for %x", c.input)
			}
			var re *RecordError
			if !errors.As(err, &re) || re.Index != c.index {
				t.Fatalf("error %v: want a RecordError for record %d", err, c.index)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %q does not mention %q", err, c.want)
			}
		})
	}
}

func TestCheckPath(t *testing.T) {
	for _, p := range []string{"a", "bin/app", "a/b/c.txt", "ü/水", ".hidden", "a..b", "...", "a b"} {
		if err := CheckPath(p); err != nil {
			t.Errorf("CheckPath(%q) = %v", p, err)
		}
	}
	for _, p := range []string{"", "/abs", "a/", "a//b", "./a", "a/./b", "../a", "a/..", "..", ".", "a\x00b", "a\\b", "\xff"} {
		if err := CheckPath(p); !errors.Is(err, ErrInvalidPath) {
			t.Errorf("CheckPath(%q) = %v, want ErrInvalidPath", p, err)
		}
	}
}

func TestJSONLines(t *testing.T) {
	var buf bytes.Buffer
	w := NewWriter(&buf, JSON)
	w.Write(sampleFile("x"))
	raw, _ := canonical.Marshal(map[string]any{"k": "v"})
	w.WriteRaw(raw)
	w.Flush()
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], `{"path":"x","size":1,"content_address":"blake3:`) || lines[1] != `{"k":"v"}` {
		t.Fatalf("JSON lines = %q", buf.String())
	}
}

// TestWriteRawParts: an item written in parts is written as WriteRaw
// writes it whole, in both formats.
func TestWriteRawParts(t *testing.T) {
	raw, _ := canonical.Marshal(map[string]any{"a": "x", "b": []any{1, 2}, "c": "y"})
	for _, f := range []Format{CBOR, JSON} {
		var whole, parts bytes.Buffer
		w := NewWriter(&whole, f)
		w.WriteRaw(raw)
		w.Flush()
		w = NewWriter(&parts, f)
		if err := w.WriteRawParts(raw[:3], raw[3:9], nil, raw[9:]); err != nil {
			t.Fatal(err)
		}
		w.Flush()
		if !bytes.Equal(whole.Bytes(), parts.Bytes()) {
			t.Errorf("format %d: WriteRawParts wrote %q, WriteRaw %q", f, parts.Bytes(), whole.Bytes())
		}
	}
}

func FuzzReader(f *testing.F) {
	good, _ := canonical.Marshal(sampleFile("a/b"))
	f.Add(good)
	f.Add(append(good, good...))
	f.Add([]byte{0x9f, 0xff})
	f.Fuzz(func(t *testing.T, data []byte) {
		r := NewReader(bytes.NewReader(data))
		for range 100 {
			raw, err := r.Next()
			if err != nil {
				return
			}
			if canonical.Check(raw) != nil {
				t.Fatalf("Next returned a non-canonical item %x", raw)
			}
		}
	})
}
