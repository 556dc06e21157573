package manifest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
)

// ErrNotCBOR and ErrNotJSON say that an input was in the other of the two
// encodings than the one asked for; the message suggests the conversion.
var (
	ErrNotCBOR = errors.New("input is JSON, expected a CBOR manifest (did you mean 'as-manifest cbor'?)")
	ErrNotJSON = errors.New("input is not JSON, expected a manifest's RFC 8785 JSON (did you mean 'as-manifest jcs'?)")
)

// ReadBytes reads all of r, refusing more than MaxBytes and an empty input;
// name says what r is in errors ("standard input", a file name).
func ReadBytes(r io.Reader, name string) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, MaxBytes+1))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", name, err)
	}
	if len(b) > MaxBytes {
		return nil, fmt.Errorf("%s: manifest larger than the limit of %d bytes", name, MaxBytes)
	}
	if len(b) == 0 {
		return nil, fmt.Errorf("%s: empty input, expected a manifest", name)
	}
	return b, nil
}

// IsJSON reports whether b looks like the JSON projection rather than CBOR
// (a CBOR manifest, a map, never starts with '{').
func IsJSON(b []byte) bool { return len(b) > 0 && b[0] == '{' }

// Parse decodes b in canonical CBOR or, with allowJSON, in its RFC 8785
// JSON projection (one trailing newline, which a terminal or an editor
// adds, is accepted), and returns the manifest with its canonical CBOR
// bytes: exactly b for CBOR input, its re-encoding for JSON.
func Parse(b []byte, allowJSON bool) (Manifest, []byte, error) {
	if !IsJSON(b) {
		m, err := Decode(b)
		return m, b, err
	}
	if !allowJSON {
		return Manifest{}, nil, ErrNotCBOR
	}
	m, err := FromJCS(bytes.TrimSuffix(b, []byte("\n")))
	if err != nil {
		return Manifest{}, nil, err
	}
	c, err := Encode(m)
	return m, c, err
}

// ParseJCS decodes the JSON projection only (one trailing newline
// accepted), refusing CBOR with ErrNotJSON.
func ParseJCS(b []byte) (Manifest, error) {
	if !IsJSON(b) {
		return Manifest{}, ErrNotJSON
	}
	return FromJCS(bytes.TrimSuffix(b, []byte("\n")))
}

// Summary is the human summary of a manifest whose canonical CBOR is c:
// package, creation time, file count, size, digest, retention, labels,
// producer and facts, one "key value" line each. Free text is quoted when
// it holds anything a terminal could obey or that could be mistaken for
// another line.
func Summary(m Manifest, c []byte) []byte {
	var b bytes.Buffer
	row := func(k, v string) { fmt.Fprintf(&b, "%-10s %s\n", k, v) }
	ref := m.Package.Ref()
	if ref == "" {
		ref = "(unnamed)"
	}
	row("package", ref)
	if m.Package.CreatedAt != "" {
		row("created", m.Package.CreatedAt)
	}
	row("files", strconv.Itoa(len(m.Files)))
	row("size", fmt.Sprintf("%d bytes", m.TotalSize()))
	row("digest", DigestOf(c).String())
	if m.Retention.Class != "" || m.Retention.Hold {
		r := m.Retention.Class
		if m.Retention.Hold {
			r = strings.TrimSpace(r + " (hold)")
		}
		row("retention", r)
	}
	if len(m.StorageReceipts) > 0 {
		row("receipts", strconv.Itoa(len(m.StorageReceipts)))
	}
	for _, k := range sortedKeys(m.Package.Labels) {
		row("label", k+"="+shown(m.Package.Labels[k]))
	}
	row("producer", shown(m.Provenance.Producer.Tool)+" "+shown(m.Provenance.Producer.Version))
	for _, k := range sortedKeys(m.Provenance.Facts) {
		row("fact", k+"="+shown(m.Provenance.Facts[k]))
	}
	return b.Bytes()
}

// shown is free text as Summary prints it: as is when every character is
// printable and it cannot be mistaken for a quoted value, else Go-quoted,
// so that control characters (escape sequences, a newline starting a
// spoofed "label" line) are visible, never obeyed by the terminal.
func shown(s string) string {
	if s == "" || strings.HasPrefix(s, `"`) || strings.TrimSpace(s) != s {
		return strconv.Quote(s)
	}
	for _, r := range s {
		if !strconv.IsPrint(r) {
			return strconv.Quote(s)
		}
	}
	return s
}

func sortedKeys(m map[string]string) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
