// Package manifest is artifact-store's Manifest v1 (DESIGN.md §4, ADR 0003):
// the description of a package whose BLAKE3 digest over its canonical CBOR
// encoding (RFC 8949 §4.2.1, package canonical) is the package's identity,
// with a byte-exact RFC 8785 (JCS) JSON projection for people and JSON tools.
//
// [Encode] and [Decode] convert between a [Manifest] and canonical CBOR;
// [JCS] and [FromJCS] between a Manifest and canonical JSON. Both decoders
// are strict: they accept exactly the bytes their encoder produces for some
// valid Manifest, and nothing else, so that accepted input re-encodes to
// itself. A [Builder] turns file records into a Manifest; it adds no
// wall-clock time, host name or randomness of its own.
package manifest

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/artifactstore/artifact-store/pkg/identity"
	"github.com/artifactstore/artifact-store/pkg/records"
	"github.com/artifactstore/artifact-store/pkg/ref"
)

// Version is the only manifest_version this package reads and writes.
const Version = 1

// MaxBytes is the largest manifest, in either encoding, that Decode and
// FromJCS read: 256 MiB, room for about a million files.
const MaxBytes = 256 << 20

// TimeLayout is the one spelling of created_at: RFC 3339 in UTC with whole
// seconds, so that one instant has one encoding.
const TimeLayout = "2006-01-02T15:04:05Z"

// Limits on declared text, so that hostile manifests stay small.
const (
	maxNameLen     = 128
	maxVersionLen  = 128
	maxKeyLen      = 128
	maxValueLen    = 4096
	maxLabelsCount = 256
)

// ErrInvalid is wrapped by every error about a manifest's content or
// encoding, so that callers can tell bad input from I/O failures.
var ErrInvalid = errors.New("invalid manifest")

// Error names the field (e.g. "files[3].path") and, when known, the byte
// offset of the first problem found.
type Error struct {
	Field  string // "" for the whole manifest
	Offset int    // byte offset in the decoded input, or -1
	Err    error  // what is wrong
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("manifest: ")
	if e.Field != "" {
		b.WriteString(e.Field)
		b.WriteString(": ")
	}
	b.WriteString(e.Err.Error())
	if e.Offset >= 0 {
		fmt.Fprintf(&b, " (byte %d)", e.Offset)
	}
	return b.String()
}

// Unwrap returns both ErrInvalid and the cause.
func (e *Error) Unwrap() []error { return []error{ErrInvalid, e.Err} }

func fieldErr(field string, format string, a ...any) error {
	return &Error{Field: field, Offset: -1, Err: fmt.Errorf(format, a...)}
}

// Manifest is a package's Manifest v1. The zero value is not valid: a
// manifest has at least a producer. Empty lists and maps are nil after
// Decode; nil and empty encode alike.
type Manifest struct {
	Package         Package
	Files           []records.File // sorted bytewise by Path, unique, valid package paths
	StorageReceipts []Receipt      // sorted by (ContentAddress, BackendID, Key), unique
	Retention       Retention
	Provenance      Provenance
}

// Package is what the producer declares about the package.
type Package struct {
	// Name and Version are both empty (an unnamed set of files) or both
	// valid; see CheckName and CheckVersion.
	Name    string
	Version string
	// CreatedAt is "" (encoded as null) or a time in TimeLayout. It is
	// only ever what the producer declared (a flag, SOURCE_DATE_EPOCH).
	CreatedAt string
	Labels    map[string]string
}

// Ref returns "name@version", or "" for an unnamed package.
func (p Package) Ref() string {
	if p.Name == "" {
		return ""
	}
	return p.Name + "@" + p.Version
}

// Receipt records that a backend holds an object.
type Receipt struct {
	ContentAddress identity.Digest `cbor:"content_address" json:"content_address"`
	BackendID      string          `cbor:"backend_id" json:"backend_id"`
	Key            string          `cbor:"key" json:"key"`
}

// Retention is the retention_summary: the declared class ("" for none) and
// whether a hold applies.
type Retention struct {
	Class string `cbor:"class" json:"class"`
	Hold  bool   `cbor:"hold" json:"hold"`
}

// Provenance says who produced the manifest and from what.
type Provenance struct {
	Producer Producer          `cbor:"producer" json:"producer"`
	Facts    map[string]string `cbor:"facts" json:"facts"` // e.g. git_commit, ci_pipeline
}

// Producer is the tool that produced the manifest. Only its name is part
// of the identity: a new release of the tools gives the same package the
// same digest (docs/adr/0003-manifest-canonicalisation.md, "Identity across
// tool builds"); the build is recorded in the log instead.
type Producer struct {
	Tool string `cbor:"tool" json:"tool"`
	// Version is absent in manifests made now. Manifests made before that
	// rule carry the producing build here; they still decode, unchanged.
	Version string `cbor:"version,omitempty" json:"version,omitempty"`
}

// TotalSize returns the sum of the files' sizes.
func (m Manifest) TotalSize() uint64 {
	var n uint64
	for _, f := range m.Files {
		n += f.Size
	}
	return n
}

func isLowerAlnum(c byte) bool { return 'a' <= c && c <= 'z' || '0' <= c && c <= '9' }

// checkKey validates a label or fact key: 1 to 128 bytes of
// [A-Za-z0-9._/-], starting with a letter or digit.
func checkKey(s string) error {
	if s == "" {
		return errors.New("empty key")
	}
	if len(s) > maxKeyLen {
		return fmt.Errorf("key longer than %d bytes", maxKeyLen)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		alnum := isLowerAlnum(c) || 'A' <= c && c <= 'Z'
		if i == 0 && !alnum {
			return fmt.Errorf("key %q must start with a letter or digit", s)
		}
		if !alnum && c != '.' && c != '_' && c != '-' && c != '/' {
			return fmt.Errorf("key %q: byte %q not allowed (A-Z a-z 0-9 . _ - /)", s, c)
		}
	}
	return nil
}

// checkText validates free text: valid UTF-8 without NUL, at most max bytes.
func checkText(s string, max int, allowEmpty bool) error {
	switch {
	case s == "" && !allowEmpty:
		return errors.New("empty")
	case len(s) > max:
		return fmt.Errorf("longer than %d bytes", max)
	case !utf8.ValidString(s):
		return errors.New("not valid UTF-8")
	case strings.IndexByte(s, 0) >= 0:
		return errors.New("contains NUL")
	}
	return nil
}

// checkIdent validates backend ids and retention classes:
// [a-z0-9][a-z0-9._-]*, at most 64 bytes.
func checkIdent(s string) error {
	if s == "" {
		return errors.New("empty")
	}
	if len(s) > 64 {
		return errors.New("longer than 64 bytes")
	}
	if !isLowerAlnum(s[0]) {
		return fmt.Errorf("%q must start with a-z or 0-9", s)
	}
	for i := 1; i < len(s); i++ {
		if c := s[i]; !isLowerAlnum(c) && c != '.' && c != '_' && c != '-' {
			return fmt.Errorf("%q: byte %q not allowed (a-z 0-9 . _ -)", s, c)
		}
	}
	return nil
}

func checkMap(field string, m map[string]string) error {
	if len(m) > maxLabelsCount {
		return fieldErr(field, "%d entries, more than %d", len(m), maxLabelsCount)
	}
	for k, v := range m {
		if err := checkKey(k); err != nil {
			return fieldErr(field, "%v", err)
		}
		if err := checkText(v, maxValueLen, true); err != nil {
			return fieldErr(field+"["+quoteKey(k)+"]", "%v", err)
		}
	}
	return nil
}

func quoteKey(k string) string { return fmt.Sprintf("%q", k) }

// CheckCreatedAt reports whether s is "" or a time spelled in TimeLayout.
func CheckCreatedAt(s string) error {
	if s == "" {
		return nil
	}
	t, err := time.Parse(TimeLayout, s)
	if err != nil || t.Format(TimeLayout) != s {
		return fmt.Errorf("%q is not an RFC 3339 UTC time of the form 2006-01-02T15:04:05Z", s)
	}
	return nil
}

// FormatTime returns t in TimeLayout. Fractions of a second are refused
// rather than dropped.
func FormatTime(t time.Time) (string, error) {
	if t.Nanosecond() != 0 {
		return "", fmt.Errorf("manifest: created_at %s has a fraction of a second; declare whole seconds", t.Format(time.RFC3339Nano))
	}
	if y := t.UTC().Year(); y < 0 || y > 9999 {
		return "", fmt.Errorf("manifest: created_at year %d outside 0000-9999", y)
	}
	return t.UTC().Format(TimeLayout), nil
}

// Validate reports the first rule m breaks, naming the field.
func (m Manifest) Validate() error { return m.validate(true) }

// validate is Validate, skipping the files when the caller (Decode) has
// already checked them one by one.
func (m Manifest) validate(files bool) error {
	p := m.Package
	if p.Name != "" || p.Version != "" {
		if err := ref.CheckName(p.Name); err != nil {
			return fieldErr("package.name", "%v", err)
		}
		if err := ref.CheckVersion(p.Version); err != nil {
			return fieldErr("package.version", "%v", err)
		}
	}
	if err := CheckCreatedAt(p.CreatedAt); err != nil {
		return fieldErr("package.created_at", "%v", err)
	}
	if err := checkMap("package.labels", p.Labels); err != nil {
		return err
	}
	for i, f := range m.Files {
		if !files {
			break
		}
		if err := validateFile(f); err != nil {
			return fieldErr(fmt.Sprintf("files[%d]", i), "%v", err)
		}
		if i > 0 {
			switch prev := m.Files[i-1].Path; {
			case prev == f.Path:
				return fieldErr(fmt.Sprintf("files[%d].path", i), "duplicate path %q", f.Path)
			case prev > f.Path:
				return fieldErr(fmt.Sprintf("files[%d].path", i), "%q is out of order after %q (files are sorted bytewise by path)", f.Path, prev)
			}
		}
	}
	if files {
		paths := make([]string, len(m.Files))
		for i, f := range m.Files {
			paths[i] = f.Path
		}
		if file, under, bad := records.FileUnderFile(paths); bad {
			return fieldErr("files", "%q is a file and also a directory of %q (a package cannot hold both)", file, under)
		}
	}
	for i, r := range m.StorageReceipts {
		var prev *Receipt
		if i > 0 {
			prev = &m.StorageReceipts[i-1]
		}
		if err := checkReceipt(i, prev, r); err != nil {
			return err
		}
	}
	if m.Retention.Class != "" {
		if err := checkIdent(m.Retention.Class); err != nil {
			return fieldErr("retention_summary.class", "%v", err)
		}
	}
	pr := m.Provenance
	if err := checkText(pr.Producer.Tool, maxNameLen, false); err != nil {
		return fieldErr("provenance.producer.tool", "%v", err)
	}
	if pr.Producer.Version != "" {
		if err := checkText(pr.Producer.Version, maxVersionLen, false); err != nil {
			return fieldErr("provenance.producer.version", "%v", err)
		}
	}
	return checkMap("provenance.facts", pr.Facts)
}

// checkReceipt checks storage_receipts[i], r, which follows prev (nil for
// the first).
func checkReceipt(i int, prev *Receipt, r Receipt) error {
	field := func() string { return "storage_receipts[" + strconv.Itoa(i) + "]" }
	if r.ContentAddress.Algorithm() != identity.BLAKE3 {
		return fieldErr(field()+".content_address", "must be a blake3 address")
	}
	if err := checkIdent(r.BackendID); err != nil {
		return fieldErr(field()+".backend_id", "%v", err)
	}
	if err := checkText(r.Key, maxValueLen, false); err != nil {
		return fieldErr(field()+".key", "%v", err)
	}
	if prev != nil {
		switch c := compareReceipts(*prev, r); {
		case c == 0:
			return fieldErr(field(), "duplicate receipt")
		case c > 0:
			return fieldErr(field(), "out of order (receipts are sorted by content_address, backend_id, key)")
		}
	}
	return nil
}

// validateFile checks a manifest's file entry: a valid record whose path is
// a valid package path.
func validateFile(f records.File) error {
	if err := records.CheckPath(f.Path); err != nil {
		return err
	}
	return f.Validate()
}

func compareReceipts(a, b Receipt) int {
	if c := a.ContentAddress.Compare(b.ContentAddress); c != 0 {
		return c
	}
	if c := strings.Compare(a.BackendID, b.BackendID); c != 0 {
		return c
	}
	return strings.Compare(a.Key, b.Key)
}

// SortReceipts sorts receipts into manifest order.
func SortReceipts(rs []Receipt) { slices.SortFunc(rs, compareReceipts) }

// wire is the encoded shape (ADR 0003). Its fields are exactly the keys of
// the encoding; canonical.Marshal orders them.
type wire struct {
	ManifestVersion  uint64         `cbor:"manifest_version" json:"manifest_version"`
	Package          wirePackage    `cbor:"package" json:"package"`
	Files            []records.File `cbor:"files" json:"files"`
	StorageReceipts  []Receipt      `cbor:"storage_receipts" json:"storage_receipts"`
	RetentionSummary Retention      `cbor:"retention_summary" json:"retention_summary"`
	Provenance       Provenance     `cbor:"provenance" json:"provenance"`
}

type wirePackage struct {
	Name      string            `cbor:"name" json:"name"`
	Version   string            `cbor:"version" json:"version"`
	CreatedAt *string           `cbor:"created_at" json:"created_at"` // nil: null
	Labels    map[string]string `cbor:"labels" json:"labels"`
}

// toWire returns m's encoded shape; empty lists and maps are non-nil so
// that JSON writes [] and {} (CBOR does so for nil too).
func (m Manifest) toWire() wire {
	w := wire{
		ManifestVersion: Version,
		Package: wirePackage{
			Name:    m.Package.Name,
			Version: m.Package.Version,
			Labels:  m.Package.Labels,
		},
		Files:            m.Files,
		StorageReceipts:  m.StorageReceipts,
		RetentionSummary: m.Retention,
		Provenance:       m.Provenance,
	}
	if m.Package.CreatedAt != "" {
		s := m.Package.CreatedAt
		w.Package.CreatedAt = &s
	}
	if w.Package.Labels == nil {
		w.Package.Labels = map[string]string{}
	}
	if w.Files == nil {
		w.Files = []records.File{}
	}
	if w.StorageReceipts == nil {
		w.StorageReceipts = []Receipt{}
	}
	if w.Provenance.Facts == nil {
		w.Provenance.Facts = map[string]string{}
	}
	return w
}

// Digest returns the manifest's identity: the blake3 content address of
// its canonical CBOR encoding.
func Digest(m Manifest) (identity.Digest, error) {
	b, err := Encode(m)
	if err != nil {
		return identity.Digest{}, err
	}
	return DigestOf(b), nil
}

// DigestOf returns the blake3 content address of encoded manifest bytes.
// It does not check them; use it on the output of Encode or on bytes that
// Decode accepted.
func DigestOf(b []byte) identity.Digest {
	d, err := identity.NewAlgorithms().Of(identity.BLAKE3, b)
	if err != nil {
		panic(err) // blake3 is always registered
	}
	return d
}
