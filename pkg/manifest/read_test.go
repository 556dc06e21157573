package manifest

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

// TestParseBothForms: the CBOR and the JSON projection (with the newline
// a terminal adds) parse to the same canonical bytes; asking for one form
// and giving the other is refused with the sentinel that names it.
func TestParseBothForms(t *testing.T) {
	c, err := Encode(sample())
	if err != nil {
		t.Fatal(err)
	}
	j, err := JCS(sample())
	if err != nil {
		t.Fatal(err)
	}
	_, fromCBOR, err := Parse(c, false)
	if err != nil || !bytes.Equal(fromCBOR, c) {
		t.Fatalf("Parse(CBOR) = %x, %v", fromCBOR, err)
	}
	_, fromJSON, err := Parse(append(j, '\n'), true)
	if err != nil || !bytes.Equal(fromJSON, c) {
		t.Fatalf("Parse(JSON) = %x, %v; want the canonical CBOR", fromJSON, err)
	}
	if _, _, err := Parse(j, false); !errors.Is(err, ErrNotCBOR) {
		t.Errorf("Parse(JSON, CBOR only) = %v, want ErrNotCBOR", err)
	}
	if _, err := ParseJCS(c); !errors.Is(err, ErrNotJSON) {
		t.Errorf("ParseJCS(CBOR) = %v, want ErrNotJSON", err)
	}
	if s := string(Summary(sample(), c)); !strings.Contains(s, DigestOf(c).String()) {
		t.Errorf("Summary lacks the digest:\n%s", s)
	}
}

func TestReadBytesLimits(t *testing.T) {
	if _, err := ReadBytes(strings.NewReader(""), "stdin"); err == nil || !strings.Contains(err.Error(), "stdin: empty input") {
		t.Errorf("empty input: %v", err)
	}
	big := bytes.NewReader(make([]byte, MaxBytes+1))
	if _, err := ReadBytes(big, "big"); err == nil || !strings.Contains(err.Error(), "larger than the limit") {
		t.Errorf("oversized input: %v", err)
	}
}

// TestSummaryQuotesControls: a label value holding a newline cannot forge
// a line of the summary.
func TestSummaryQuotesControls(t *testing.T) {
	m := sample()
	m.Package.Labels = map[string]string{"team": "core\nlabel evil=1"}
	c, err := Encode(m)
	if err != nil {
		t.Fatal(err)
	}
	if s := string(Summary(m, c)); strings.Contains(s, "\nlabel evil=1") {
		t.Errorf("a newline in a label forged a line:\n%s", s)
	}
}
