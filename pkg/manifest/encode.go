package manifest

import (
	"cmp"
	"fmt"
	"maps"
	"slices"

	"github.com/artifactstore/artifact-store/internal/cborhead"
	"github.com/artifactstore/artifact-store/pkg/canonical"
	"github.com/artifactstore/artifact-store/pkg/identity"
)

// Encode validates m and returns its canonical CBOR encoding.
//
// It writes the bytes itself, into one buffer sized up front, instead of
// building the wire shape and handing it to canonical.Marshal: a manifest
// of 200,000 files is about 80 MB, and the generic path held the wire
// structs and a doubling buffer, about three times that, at once. The keys
// are written in RFC 8949 §4.2.1 order (shorter keys first, then
// bytewise); TestEncodeMatchesMarshal holds the bytes equal to
// canonical.Marshal of the wire shape, and canonical.Check accepts the
// whole output before it is returned.
func Encode(m Manifest) ([]byte, error) {
	if err := m.Validate(); err != nil {
		return nil, err
	}
	b := appendManifest(make([]byte, 0, encodedSizeBound(m)), m)
	if err := canonical.Check(b); err != nil {
		return nil, fmt.Errorf("manifest: encoder wrote non-canonical bytes: %w", err)
	}
	return b, nil
}

// Major types of RFC 8949 §3.1 that a manifest uses.
const (
	majorUint  = 0
	majorText  = 3
	majorArray = 4
	majorMap   = 5
)

// CBOR simple values (RFC 8949 §3.3).
const (
	cborFalse = 0xf4
	cborTrue  = 0xf5
	cborNull  = 0xf6
)

// maxHead is the longest head an item can have.
const maxHead = 9

func appendBool(b []byte, v bool) []byte {
	if v {
		return append(b, cborTrue)
	}
	return append(b, cborFalse)
}

// appendTextDigest appends d's text form ("alg:hex") as a CBOR text string
// without building the string. d is valid (Validate checked it).
func appendTextDigest(b []byte, d identity.Digest) []byte {
	b = cborhead.Append(b, majorText, uint64(d.TextLen()))
	b, _ = d.AppendText(b)
	return b
}

// compareKeys orders text map keys as their canonical encodings sort:
// shorter first, then bytewise.
func compareKeys(a, b string) int {
	if c := cmp.Compare(len(a), len(b)); c != 0 {
		return c
	}
	return cmp.Compare(a, b)
}

// appendStringMap appends m (nil: empty) with its keys in canonical order.
func appendStringMap(b []byte, m map[string]string) []byte {
	b = cborhead.Append(b, majorMap, uint64(len(m)))
	for _, k := range slices.SortedFunc(maps.Keys(m), compareKeys) {
		b = cborhead.AppendText(b, k)
		b = cborhead.AppendText(b, m[k])
	}
	return b
}

// appendManifest appends the canonical encoding of m, which must be valid.
// The order of every map's keys below is the canonical one; the key
// strings are the wire shape's tags (type wire).
func appendManifest(b []byte, m Manifest) []byte {
	b = cborhead.Append(b, majorMap, 6)

	b = cborhead.AppendText(b, "files")
	b = cborhead.Append(b, majorArray, uint64(len(m.Files)))
	for _, f := range m.Files {
		b = cborhead.Append(b, majorMap, 4)
		b = cborhead.AppendText(b, "path")
		b = cborhead.AppendText(b, f.Path)
		b = cborhead.AppendText(b, "size")
		b = cborhead.Append(b, majorUint, f.Size)
		b = cborhead.AppendText(b, "sha256")
		b = appendTextDigest(b, f.SHA256)
		b = cborhead.AppendText(b, "content_address")
		b = appendTextDigest(b, f.ContentAddress)
	}

	p := m.Package
	b = cborhead.AppendText(b, "package")
	b = cborhead.Append(b, majorMap, 4)
	b = cborhead.AppendText(b, "name")
	b = cborhead.AppendText(b, p.Name)
	b = cborhead.AppendText(b, "labels")
	b = appendStringMap(b, p.Labels)
	b = cborhead.AppendText(b, "version")
	b = cborhead.AppendText(b, p.Version)
	b = cborhead.AppendText(b, "created_at")
	if p.CreatedAt == "" {
		b = append(b, cborNull)
	} else {
		b = cborhead.AppendText(b, p.CreatedAt)
	}

	pr := m.Provenance
	b = cborhead.AppendText(b, "provenance")
	b = cborhead.Append(b, majorMap, 2)
	b = cborhead.AppendText(b, "facts")
	b = appendStringMap(b, pr.Facts)
	b = cborhead.AppendText(b, "producer")
	legacy := pr.Producer.Version != "" // omitempty, see Producer
	fields := uint64(1)
	if legacy {
		fields = 2
	}
	b = cborhead.Append(b, majorMap, fields)
	b = cborhead.AppendText(b, "tool")
	b = cborhead.AppendText(b, pr.Producer.Tool)
	if legacy {
		b = cborhead.AppendText(b, "version")
		b = cborhead.AppendText(b, pr.Producer.Version)
	}

	b = cborhead.AppendText(b, "manifest_version")
	b = cborhead.Append(b, majorUint, Version)

	b = cborhead.AppendText(b, "storage_receipts")
	b = cborhead.Append(b, majorArray, uint64(len(m.StorageReceipts)))
	for _, r := range m.StorageReceipts {
		b = cborhead.Append(b, majorMap, 3)
		b = cborhead.AppendText(b, "key")
		b = cborhead.AppendText(b, r.Key)
		b = cborhead.AppendText(b, "backend_id")
		b = cborhead.AppendText(b, r.BackendID)
		b = cborhead.AppendText(b, "content_address")
		b = appendTextDigest(b, r.ContentAddress)
	}

	b = cborhead.AppendText(b, "retention_summary")
	b = cborhead.Append(b, majorMap, 2)
	b = cborhead.AppendText(b, "hold")
	b = appendBool(b, m.Retention.Hold)
	b = cborhead.AppendText(b, "class")
	return cborhead.AppendText(b, m.Retention.Class)
}

// headLen is the length of the shortest head with argument n.
func headLen(n uint64) int {
	switch {
	case n < 24:
		return 1
	case n <= 0xff:
		return 2
	case n <= 0xffff:
		return 3
	case n <= 0xffffffff:
		return 5
	}
	return 9
}

func textLen(s string) int { return headLen(uint64(len(s))) + len(s) }

func digestLen(d identity.Digest) int {
	n := d.TextLen()
	return headLen(uint64(n)) + n
}

// encodedSizeBound returns at least the length of m's encoding, so that
// appendManifest never grows its buffer: exact for the files and receipts,
// which are nearly all of a large manifest, and a little over for the rest.
func encodedSizeBound(m Manifest) int {
	const small = 512 // keys, heads and the fixed values outside the lists
	strmap := func(m map[string]string) int {
		n := maxHead
		for k, v := range m {
			n += textLen(k) + textLen(v)
		}
		return n
	}
	n := small + strmap(m.Package.Labels) + strmap(m.Provenance.Facts) +
		textLen(m.Package.Name) + textLen(m.Package.Version) + textLen(m.Package.CreatedAt) +
		textLen(m.Provenance.Producer.Tool) + textLen(m.Provenance.Producer.Version) + textLen(m.Retention.Class) +
		2*maxHead
	fileKeys := textLen("path") + textLen("size") + textLen("sha256") + textLen("content_address")
	for _, f := range m.Files {
		n += 1 + fileKeys + textLen(f.Path) + headLen(f.Size) + digestLen(f.SHA256) + digestLen(f.ContentAddress)
	}
	receiptKeys := textLen("key") + textLen("backend_id") + textLen("content_address")
	for _, r := range m.StorageReceipts {
		n += 1 + receiptKeys + textLen(r.Key) + textLen(r.BackendID) + digestLen(r.ContentAddress)
	}
	return n
}
