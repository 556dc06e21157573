package records

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/artifactstore/artifact-store/pkg/identity"
)

// TestReadFileErrorOffset checks that an invalid record is located at its
// first byte, not at the next record's.
func TestReadFileErrorOffset(t *testing.T) {
	var buf bytes.Buffer
	w := NewWriter(&buf, CBOR)
	good := File{Path: "a", Size: 1,
		ContentAddress: identity.MustParse("blake3:" + strings.Repeat("ab", 32)),
		SHA256:         identity.MustParse("sha256:" + strings.Repeat("cd", 32))}
	bad := good
	bad.SHA256 = good.ContentAddress // valid digest, wrong algorithm
	w.Write(good)
	w.Flush()
	first := buf.Len()
	w.Write(bad)
	w.Flush()
	r := NewReader(&buf)
	if _, err := r.ReadFile(); err != nil {
		t.Fatal(err)
	}
	_, err := r.ReadFile()
	var re *RecordError
	if !errors.As(err, &re) || re.Index != 2 || re.Offset != int64(first) {
		t.Fatalf("err = %#v, want record 2 at byte %d", err, first)
	}
}

// TestJSONHint checks that JSON lines fed to a CBOR reader get a hint, even
// when the JSON happens to parse as a truncated CBOR text string.
func TestJSONHint(t *testing.T) {
	r := NewReader(strings.NewReader(`{"path":"a","size":1}` + "\n"))
	_, err := r.Next()
	if err == nil || !strings.Contains(err.Error(), "looks like JSON") {
		t.Fatalf("err = %v", err)
	}
}
