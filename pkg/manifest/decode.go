package manifest

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/artifactstore/artifact-store/internal/cborhead"
	"github.com/artifactstore/artifact-store/pkg/canonical"
	"github.com/artifactstore/artifact-store/pkg/identity"
	"github.com/artifactstore/artifact-store/pkg/records"
)

// Decode parses a canonical CBOR manifest strictly. It rejects everything
// canonical.Check rejects (with its byte offset) and, naming the field and
// offset, missing and unknown fields, wrong types, a manifest_version other
// than 1, and every rule of Validate. On success Encode of the result gives
// back b exactly. Input longer than MaxBytes is refused.
func Decode(b []byte) (Manifest, error) { return decode(b, true) }

// DecodeHeader is Decode without the lists: it checks everything Decode
// checks and returns the manifest with Files and StorageReceipts nil. It
// is for a caller that needs only the package, retention and provenance
// of a manifest that may hold hundreds of thousands of files (the view of
// a finalisation), without holding them all in memory.
func DecodeHeader(b []byte) (Manifest, error) { return decode(b, false) }

func decode(b []byte, lists bool) (Manifest, error) {
	if len(b) > MaxBytes {
		return Manifest{}, &Error{Offset: MaxBytes, Err: fmt.Errorf("input of %d bytes exceeds the limit of %d", len(b), MaxBytes)}
	}
	if err := canonical.Check(b); err != nil {
		var ce *canonical.Error
		if errors.As(err, &ce) {
			return Manifest{}, &Error{Offset: ce.Offset, Err: fmt.Errorf("%s: %s", canonical.ErrNotCanonical, ce.Reason)}
		}
		return Manifest{}, &Error{Offset: -1, Err: err}
	}
	d := decoder{b: b, lists: lists}
	m, err := d.manifest()
	if err != nil {
		return Manifest{}, err
	}
	if err := m.validate(false); err != nil {
		return Manifest{}, err
	}
	return m, nil
}

// decoder walks bytes that canonical.Check accepted: well-formed, shortest
// heads, sorted unique text keys, within the data model. It still checks
// bounds, so that a mistake here is an error, never a panic.
type decoder struct {
	b   []byte
	off int
	// lists false: files and receipts are checked one by one and dropped.
	lists bool
}

var errTruncated = errors.New("unexpected end of input")

func (d *decoder) fail(field string, off int, format string, a ...any) error {
	return &Error{Field: field, Offset: off, Err: fmt.Errorf(format, a...)}
}

// head reads one item head. For major type 7 the argument is the simple
// value (20 false, 21 true, 22 null).
func (d *decoder) head(field string) (major byte, arg uint64, err error) {
	if d.off >= len(d.b) {
		return 0, 0, d.fail(field, d.off, "%v", errTruncated)
	}
	h, err := cborhead.Read(d.b[d.off:])
	switch {
	case errors.Is(err, cborhead.ErrTruncated):
		return 0, 0, d.fail(field, d.off, "%v", errTruncated)
	case err != nil || h.Info == 31 && h.Major != 7:
		return 0, 0, d.fail(field, d.off, "malformed item head")
	}
	d.off += h.Len
	return h.Major, h.Arg, nil
}

func kind(major byte, arg uint64) string {
	switch major {
	case 0:
		return "an unsigned integer"
	case 3:
		return "a text string"
	case 4:
		return "an array"
	case 5:
		return "a map"
	case 7:
		switch arg {
		case 20, 21:
			return "a boolean"
		case 22:
			return "null"
		}
	}
	return fmt.Sprintf("a CBOR item of major type %d", major)
}

func (d *decoder) want(field string, wantMajor byte, what string) (uint64, error) {
	start := d.off
	major, arg, err := d.head(field)
	if err != nil {
		return 0, err
	}
	if major != wantMajor {
		return 0, d.fail(field, start, "want %s, got %s", what, kind(major, arg))
	}
	return arg, nil
}

func (d *decoder) text(field string) (string, error) {
	b, err := d.textBytes(field)
	return string(b), err
}

// textBytes reads a text string without copying it.
func (d *decoder) textBytes(field string) ([]byte, error) {
	n, err := d.want(field, 3, "a text string")
	if err != nil {
		return nil, err
	}
	if n > uint64(len(d.b)-d.off) {
		return nil, d.fail(field, d.off, "%v", errTruncated)
	}
	b := d.b[d.off : d.off+int(n)]
	d.off += int(n)
	return b, nil
}

// nullableText reads a text string or null ("").
func (d *decoder) nullableText(field string) (string, bool, error) {
	if d.off < len(d.b) && d.b[d.off] == 0xf6 {
		d.off++
		return "", true, nil
	}
	start := d.off
	s, err := d.text(field)
	if err != nil {
		return "", false, d.fail(field, start, "want a text string or null")
	}
	return s, false, nil
}

func (d *decoder) uint(field string) (uint64, error) {
	return d.want(field, 0, "an unsigned integer")
}

func (d *decoder) bool(field string) (bool, error) {
	start := d.off
	major, arg, err := d.head(field)
	if err != nil {
		return false, err
	}
	if major != 7 || (arg != 20 && arg != 21) {
		return false, d.fail(field, start, "want a boolean, got %s", kind(major, arg))
	}
	return arg == 21, nil
}

func (d *decoder) digest(field string) (identity.Digest, error) {
	start := d.off
	raw, err := d.textBytes(field)
	if err != nil {
		return identity.Digest{}, err
	}
	if dg, ok := fastDigest(raw); ok {
		return dg, nil
	}
	dg, err := identity.Parse(string(raw))
	if err != nil {
		return identity.Digest{}, d.fail(field, start, "%v", err)
	}
	return dg, nil
}

// fastDigest parses the two content-address forms of the data model
// without allocating. It accepts only what identity.Parse accepts and
// reports false for anything else, which is then left to Parse for its
// error.
func fastDigest(raw []byte) (identity.Digest, bool) {
	var alg identity.Algorithm
	var hexPart []byte
	switch {
	case len(raw) == 7+64 && string(raw[:7]) == "blake3:":
		alg, hexPart = identity.BLAKE3, raw[7:]
	case len(raw) == 7+64 && string(raw[:7]) == "sha256:":
		alg, hexPart = identity.SHA256, raw[7:]
	default:
		return identity.Digest{}, false
	}
	var sum [32]byte
	for i := range sum {
		hi, ok1 := lowerHex(hexPart[2*i])
		lo, ok2 := lowerHex(hexPart[2*i+1])
		if !ok1 || !ok2 {
			return identity.Digest{}, false
		}
		sum[i] = hi<<4 | lo
	}
	dg, err := identity.NewDigest(alg, sum[:])
	return dg, err == nil
}

func lowerHex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}

// fields reads a map whose keys must be exactly names (in any order; the
// canonical order is enforced by Check), calling fn for each value. A name
// ending in "?" is optional.
func (d *decoder) fields(field string, names []string, fn func(i int, sub string) error) error {
	start := d.off
	n, err := d.want(field, 5, "a map")
	if err != nil {
		return err
	}
	var seen uint32
	for range n {
		kstart := d.off
		key, err := d.text(field)
		if err != nil {
			return err
		}
		i := indexOf(names, key)
		if i < 0 {
			return d.fail(field, kstart, "unknown field %q", key)
		}
		seen |= 1 << i
		if err := fn(i, join(field, key)); err != nil {
			return err
		}
	}
	for i, name := range names {
		if seen&(1<<i) == 0 && !strings.HasSuffix(name, "?") {
			return d.fail(field, start, "missing field %q", name)
		}
	}
	return nil
}

func indexOf(names []string, key string) int {
	for i, n := range names {
		if strings.TrimSuffix(n, "?") == key {
			return i
		}
	}
	return -1
}

func join(field, key string) string {
	if field == "" {
		return key
	}
	return field + "." + key
}

func (d *decoder) stringMap(field string) (map[string]string, error) {
	n, err := d.want(field, 5, "a map")
	if err != nil {
		return nil, err
	}
	if n == 0 {
		return nil, nil
	}
	m := make(map[string]string, n)
	for range n {
		k, err := d.text(field)
		if err != nil {
			return nil, err
		}
		v, err := d.text(field + "[" + strconv.Quote(k) + "]")
		if err != nil {
			return nil, err
		}
		m[k] = v
	}
	return m, nil
}

var (
	manifestFields   = []string{"manifest_version", "package", "files", "storage_receipts", "retention_summary", "provenance"}
	packageFields    = []string{"name", "version", "created_at", "labels"}
	receiptFields    = []string{"content_address", "backend_id", "key"}
	retentionFields  = []string{"class", "hold"}
	provenanceFields = []string{"producer", "facts"}
	producerFields   = []string{"tool", "version?"} // version: legacy, see Producer
)

func (d *decoder) manifest() (Manifest, error) {
	var m Manifest
	err := d.fields("", manifestFields, func(i int, f string) error {
		var err error
		switch i {
		case 0:
			start := d.off
			var v uint64
			if v, err = d.uint(f); err == nil && v != Version {
				err = d.fail(f, start, "unsupported manifest_version %d (this build reads %d)", v, Version)
			}
		case 1:
			m.Package, err = d.pkg(f)
		case 2:
			m.Files, err = d.files(f)
		case 3:
			m.StorageReceipts, err = d.receipts(f)
		case 4:
			err = d.fields(f, retentionFields, func(i int, f string) error {
				var err error
				if i == 0 {
					m.Retention.Class, err = d.text(f)
				} else {
					m.Retention.Hold, err = d.bool(f)
				}
				return err
			})
		case 5:
			err = d.fields(f, provenanceFields, func(i int, f string) error {
				if i == 1 {
					var err error
					m.Provenance.Facts, err = d.stringMap(f)
					return err
				}
				return d.fields(f, producerFields, func(i int, f string) error {
					var err error
					if i == 0 {
						m.Provenance.Producer.Tool, err = d.text(f)
						return err
					}
					// The legacy version is written only when it is not
					// empty (Encode): an empty one present would not
					// survive a re-encoding, so these bytes are not the
					// manifest's canonical form.
					start := d.off
					if m.Provenance.Producer.Version, err = d.text(f); err == nil && m.Provenance.Producer.Version == "" {
						err = d.fail(f, start, "empty; a producer without a version omits the field")
					}
					return err
				})
			})
		}
		return err
	})
	return m, err
}

func (d *decoder) pkg(field string) (Package, error) {
	var p Package
	err := d.fields(field, packageFields, func(i int, f string) error {
		var err error
		switch i {
		case 0:
			p.Name, err = d.text(f)
		case 1:
			p.Version, err = d.text(f)
		case 2:
			start := d.off
			var null bool
			p.CreatedAt, null, err = d.nullableText(f)
			if err == nil && !null {
				if cerr := CheckCreatedAt(p.CreatedAt); cerr != nil || p.CreatedAt == "" {
					err = d.fail(f, start, "%q is not an RFC 3339 UTC time of the form 2006-01-02T15:04:05Z (or null)", p.CreatedAt)
				}
			}
		case 3:
			p.Labels, err = d.stringMap(f)
		}
		return err
	})
	return p, err
}

func (d *decoder) files(field string) ([]records.File, error) {
	n, err := d.want(field, 4, "an array")
	if err != nil {
		return nil, err
	}
	if n == 0 {
		return nil, nil
	}
	// Field names are built only on error: this loop runs once per file.
	name := func(i int, sub string) string {
		s := field + "[" + strconv.Itoa(i) + "]"
		if sub != "" {
			s += "." + sub
		}
		return s
	}
	if n > uint64(len(d.b)-d.off) { // every entry takes at least a byte
		return nil, d.fail(field, d.off, "%d entries cannot fit in the %d bytes left", n, len(d.b)-d.off)
	}
	var fs []records.File
	if d.lists {
		fs = make([]records.File, 0, n)
	}
	paths := make([]string, n)
	var f records.File
	for i := range paths {
		start := d.off
		f = records.File{}
		if err := d.file(&f); err != nil {
			if e, ok := err.(*Error); ok {
				e.Field = name(i, e.Field)
			}
			return nil, err
		}
		if err := validateFile(f); err != nil {
			return nil, d.fail(name(i, ""), start, "%v", err)
		}
		if i > 0 {
			switch prev := paths[i-1]; {
			case prev == f.Path:
				return nil, d.fail(name(i, "path"), start, "duplicate path %q", f.Path)
			case prev > f.Path:
				return nil, d.fail(name(i, "path"), start, "%q is out of order after %q (files are sorted bytewise by path)", f.Path, prev)
			}
		}
		paths[i] = f.Path
		if d.lists {
			fs = append(fs, f)
		}
	}
	if file, under, bad := records.FileUnderFile(paths); bad {
		return nil, d.fail("files", d.off, "%q is a file and also a directory of %q (a package cannot hold both)", file, under)
	}
	return fs, nil
}

// file decodes one file entry; errors name the field relative to the
// entry ("" for the entry itself), and files prefixes them.
func (d *decoder) file(f *records.File) error {
	start := d.off
	n, err := d.want("", 5, "a map")
	if err != nil {
		return err
	}
	var seen uint8
	for range n {
		kstart := d.off
		key, err := d.textBytes("")
		if err != nil {
			return err
		}
		switch string(key) {
		case "path":
			seen |= 1
			f.Path, err = d.text("path")
		case "size":
			seen |= 2
			f.Size, err = d.uint("size")
		case "sha256":
			seen |= 4
			f.SHA256, err = d.digest("sha256")
		case "content_address":
			seen |= 8
			f.ContentAddress, err = d.digest("content_address")
		default:
			return d.fail("", kstart, "unknown field %q", key)
		}
		if err != nil {
			return err
		}
	}
	if seen != 15 {
		for i, name := range []string{"path", "size", "sha256", "content_address"} {
			if seen&(1<<i) == 0 {
				return d.fail("", start, "missing field %q", name)
			}
		}
	}
	return nil
}

func (d *decoder) receipts(field string) ([]Receipt, error) {
	n, err := d.want(field, 4, "an array")
	if err != nil {
		return nil, err
	}
	if n == 0 {
		return nil, nil
	}
	if n > uint64(len(d.b)-d.off) {
		return nil, d.fail(field, d.off, "%d entries cannot fit in the %d bytes left", n, len(d.b)-d.off)
	}
	var rs []Receipt
	if d.lists {
		rs = make([]Receipt, n)
	}
	var one, prev Receipt
	for i := range int(n) {
		r := &one
		if d.lists {
			r = &rs[i]
		} else {
			prev, one = one, Receipt{}
		}
		err := d.fields(fmt.Sprintf("%s[%d]", field, i), receiptFields, func(j int, f string) error {
			var err error
			switch j {
			case 0:
				r.ContentAddress, err = d.digest(f)
			case 1:
				r.BackendID, err = d.text(f)
			case 2:
				r.Key, err = d.text(f)
			}
			return err
		})
		if err != nil {
			return nil, err
		}
		if !d.lists {
			// Decode checks the kept list in validate; here each receipt
			// is checked against the one before and dropped.
			var p *Receipt
			if i > 0 {
				p = &prev
			}
			if err := checkReceipt(i, p, one); err != nil {
				return nil, err
			}
		}
	}
	return rs, nil
}
