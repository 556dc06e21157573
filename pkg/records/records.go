// Package records reads and writes the record streams that artifact-store's
// tools pass on pipes: an RFC 8742 CBOR sequence of canonical data items
// (package canonical), one record each, with no framing beyond CBOR itself.
// For people, the same records can be written as JSON lines.
//
// [File] is the one shape shared by as-digest output, manifest "files"
// entries and artifact_files rows.
package records

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/artifactstore/artifact-store/pkg/canonical"
	"github.com/artifactstore/artifact-store/pkg/identity"
)

// ErrInvalidRecord is wrapped by every error about a record's content.
var ErrInvalidRecord = errors.New("invalid record")

// ErrInvalidPath is wrapped by CheckPath's errors.
var ErrInvalidPath = errors.New("invalid package path")

// File describes one file by its path and dual digest. In as-digest output
// Path is the path as read; inside a package it is relative to the package
// root and satisfies CheckPath.
type File struct {
	Path           string          `cbor:"path" json:"path"`
	Size           uint64          `cbor:"size" json:"size"`
	ContentAddress identity.Digest `cbor:"content_address" json:"content_address"`
	SHA256         identity.Digest `cbor:"sha256" json:"sha256"`
}

// FileOf returns the record for path with the digests in s.
func FileOf(path string, s identity.Sum) File {
	return File{Path: path, Size: uint64(s.Size), ContentAddress: s.BLAKE3, SHA256: s.SHA256}
}

// Sum returns the dual digest that the record declares.
func (f File) Sum() identity.Sum {
	return identity.Sum{BLAKE3: f.ContentAddress, SHA256: f.SHA256, Size: int64(f.Size)}
}

// Validate checks what every file record must satisfy: a non-empty UTF-8
// path without NUL, a blake3 content address, a sha256 digest, and a size
// below 2^53.
func (f File) Validate() error {
	switch {
	case f.Path == "":
		return fmt.Errorf("records: %w: empty path", ErrInvalidRecord)
	case !utf8.ValidString(f.Path):
		return fmt.Errorf("records: %w: path %q is not valid UTF-8", ErrInvalidRecord, f.Path)
	case strings.IndexByte(f.Path, 0) >= 0:
		return fmt.Errorf("records: %w: path %q contains NUL", ErrInvalidRecord, f.Path)
	case f.ContentAddress.Algorithm() != identity.BLAKE3:
		return fmt.Errorf("records: %w: %s: content_address must be a blake3 address, got %q", ErrInvalidRecord, f.Path, f.ContentAddress.String())
	case f.SHA256.Algorithm() != identity.SHA256:
		return fmt.Errorf("records: %w: %s: sha256 must be a sha256 digest, got %q", ErrInvalidRecord, f.Path, f.SHA256.String())
	case f.Size >= canonical.MaxSafeInteger:
		return fmt.Errorf("records: %w: %s: size %d is not below 2^53", ErrInvalidRecord, f.Path, f.Size)
	}
	return nil
}

// CheckPath reports whether p is a valid path inside a package (DESIGN.md
// §4): relative, '/'-separated, valid UTF-8, no empty, "." or ".." segment,
// no leading or trailing '/', no NUL, no backslash.
func CheckPath(p string) error {
	bad := func(why string) error { return fmt.Errorf("records: %w %q: %s", ErrInvalidPath, p, why) }
	switch {
	case p == "":
		return bad("empty path")
	case !utf8.ValidString(p):
		return bad("not valid UTF-8")
	case strings.IndexByte(p, 0) >= 0:
		return bad("contains NUL")
	case strings.IndexByte(p, '\\') >= 0:
		return bad(`contains '\'; use '/' as the separator`)
	case strings.HasPrefix(p, "/"):
		return bad("absolute; package paths are relative")
	}
	for seg := range strings.SplitSeq(p, "/") {
		switch seg {
		case "":
			return bad("empty segment (a doubled, leading or trailing '/')")
		case ".", "..":
			return bad(fmt.Sprintf("%q segment", seg))
		}
	}
	return nil
}

// ReadFiles reads every file record from r (a CBOR sequence) to the end.
// An error names the record that is bad; nothing is returned with it.
func ReadFiles(r io.Reader) ([]File, error) {
	rd := NewReader(r)
	var out []File
	for {
		f, err := rd.ReadFile()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("reading file records: %w", err)
		}
		out = append(out, f)
	}
}
