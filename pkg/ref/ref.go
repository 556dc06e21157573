// Package ref is the one package reference type (docs/adr/0010-tags-and-expiry.md):
//
//	name@version        an immutable version
//	name:tag            a mutable tag (OCI tag grammar)
//	name@blake3:<hex>   a package by its manifest digest
//
// Parse accepts all three forms, ParseVersion only the first (for tools
// that create a version). Name, version and tag rules live here and nowhere
// else; pkg/manifest and pkg/registry call them.
package ref

import (
	"errors"
	"fmt"
	"strings"

	"github.com/artifactstore/artifact-store/pkg/identity"
)

// ErrInvalid is wrapped by every error this package returns: the text is
// not a valid reference, name, version or tag.
var ErrInvalid = errors.New("invalid package reference")

// Limits on the parts of a reference.
const (
	MaxNameLen    = 128
	MaxVersionLen = 128
	MaxTagLen     = 128
)

// Ref names a package. Name is always set; exactly one of Version, Tag and
// Digest is. The zero Ref is invalid.
type Ref struct {
	Name    string
	Version string          // name@version
	Tag     string          // name:tag
	Digest  identity.Digest // name@blake3:<hex>, a manifest digest
}

// Version returns the reference name@version.
func Version(name, version string) Ref { return Ref{Name: name, Version: version} }

// IsVersion reports whether r names a version directly (name@version).
func (r Ref) IsVersion() bool { return r.Version != "" }

// String returns the text form that Parse accepts.
func (r Ref) String() string {
	switch {
	case r.Version != "":
		return r.Name + "@" + r.Version
	case r.Tag != "":
		return r.Name + ":" + r.Tag
	case !r.Digest.IsZero():
		return r.Name + "@" + r.Digest.String()
	}
	return r.Name
}

// Parse parses any of the three forms. A name holds no ':' or '@', so the
// first of them decides the form; after '@' a text that starts with
// "blake3:" is a manifest digest (versions hold no ':').
func Parse(s string) (Ref, error) {
	i := strings.IndexAny(s, "@:")
	if i < 0 {
		return Ref{}, fmt.Errorf("%w %q: want name@version, name:tag or name@blake3:<hex>", ErrInvalid, s)
	}
	name, rest := s[:i], s[i+1:]
	if err := CheckName(name); err != nil {
		return Ref{}, err
	}
	if s[i] == ':' {
		if err := CheckTag(rest); err != nil {
			return Ref{}, err
		}
		return Ref{Name: name, Tag: rest}, nil
	}
	if alg, _, ok := strings.Cut(rest, ":"); ok {
		if alg != string(identity.BLAKE3) {
			return Ref{}, fmt.Errorf("%w %q: a package digest is blake3:<64 hex>, not %s", ErrInvalid, s, alg)
		}
		d, err := identity.Parse(rest)
		if err != nil {
			return Ref{}, fmt.Errorf("%w %q: %w", ErrInvalid, s, err)
		}
		return Ref{Name: name, Digest: d}, nil
	}
	if err := CheckVersion(rest); err != nil {
		return Ref{}, err
	}
	return Ref{Name: name, Version: rest}, nil
}

// ParseVersion parses name@version and refuses the tag and digest forms.
func ParseVersion(s string) (Ref, error) {
	r, err := Parse(s)
	if err != nil {
		return Ref{}, err
	}
	if !r.IsVersion() {
		return Ref{}, fmt.Errorf("%w %q: want name@version here, not a tag or digest", ErrInvalid, s)
	}
	return r, nil
}

// CheckName reports whether s is a valid package name: at most 128 bytes of
// one or more '/'-separated segments, each [a-z0-9][a-z0-9._-]* (an OCI
// repository name).
func CheckName(s string) error {
	bad := func(why string) error { return fmt.Errorf("%w: package name %q: %s", ErrInvalid, s, why) }
	if s == "" {
		return bad("empty")
	}
	if len(s) > MaxNameLen {
		return bad(fmt.Sprintf("longer than %d bytes", MaxNameLen))
	}
	for seg := range strings.SplitSeq(s, "/") {
		if seg == "" {
			return bad("empty '/'-separated segment")
		}
		if !isLowerAlnum(seg[0]) {
			return bad("each segment must start with a-z or 0-9")
		}
		for i := 1; i < len(seg); i++ {
			if c := seg[i]; !isLowerAlnum(c) && c != '.' && c != '_' && c != '-' {
				return bad(fmt.Sprintf("byte %q not allowed (a-z 0-9 . _ - and '/' between segments)", c))
			}
		}
	}
	return nil
}

// CheckVersion reports whether s is a valid package version: 1 to 128
// printable ASCII bytes other than space, '@', ':', '/' and '\'.
func CheckVersion(s string) error {
	bad := func(why string) error { return fmt.Errorf("%w: package version %q: %s", ErrInvalid, s, why) }
	if s == "" {
		return bad("empty")
	}
	if len(s) > MaxVersionLen {
		return bad(fmt.Sprintf("longer than %d bytes", MaxVersionLen))
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || c == '@' || c == ':' || c == '/' || c == '\\' {
			return bad(fmt.Sprintf("byte %q not allowed (printable ASCII without space, '@', ':', '/', '\\')", c))
		}
	}
	return nil
}

// CheckTag reports whether s is a valid tag: the OCI tag grammar
// [A-Za-z0-9_][A-Za-z0-9._-]{0,127}.
func CheckTag(s string) error {
	bad := func(why string) error { return fmt.Errorf("%w: tag %q: %s", ErrInvalid, s, why) }
	if s == "" {
		return bad("empty")
	}
	if len(s) > MaxTagLen {
		return bad(fmt.Sprintf("longer than %d bytes", MaxTagLen))
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		ok := isLowerAlnum(c) || 'A' <= c && c <= 'Z' || c == '_' || i > 0 && (c == '.' || c == '-')
		if !ok {
			return bad(fmt.Sprintf("byte %q not allowed at %d (OCI tag grammar [A-Za-z0-9_][A-Za-z0-9._-]*)", c, i))
		}
	}
	return nil
}

func isLowerAlnum(c byte) bool { return 'a' <= c && c <= 'z' || '0' <= c && c <= '9' }
