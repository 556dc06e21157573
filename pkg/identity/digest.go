// Package identity names bytes. A [Digest] is an algorithm plus the raw
// output of that algorithm; its text form, the content address, is
// "<algorithm>:<lowercase hex>" (DESIGN.md §3) and [Parse] is the only way
// a key or address enters the system. Digests are small comparable values:
// == compares them and they work as map keys. The zero Digest is invalid.
//
// [Sum] and [Hasher] compute the dual digest of a stream in one pass:
// BLAKE3, the primary that names objects, and SHA-256, carried beside it so
// that every object stays addressable by OCI tools.
package identity

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// MaxSize is the largest digest, in bytes, that a Digest can hold.
const MaxSize = 64

// ErrInvalidAddress is wrapped by every error that Parse returns.
var ErrInvalidAddress = errors.New("invalid content address")

// Digest is the output of one hash algorithm over some bytes. It is
// immutable, comparable with ==, and usable as a map key. The zero value is
// invalid: IsZero reports true, String returns "", and no API accepts it as
// the address of an object.
type Digest struct {
	alg Algorithm
	n   uint8
	sum [MaxSize]byte
}

// ContentAddress is a Digest in its role as the name of stored bytes. The two
// names denote one type; the text form "<algorithm>:<lowercase hex>" is the
// content address.
type ContentAddress = Digest

// NewDigest returns the Digest of algorithm alg with the raw value sum. It
// fails if alg is not registered in the built-in set or sum has the wrong
// length for it.
func NewDigest(alg Algorithm, sum []byte) (Digest, error) { return builtin.NewDigest(alg, sum) }

// NewDigest is like the package-level NewDigest, for the algorithms of r.
func (r *Algorithms) NewDigest(alg Algorithm, sum []byte) (Digest, error) {
	a, ok := r.lookup(alg)
	if !ok {
		return Digest{}, fmt.Errorf("identity: %w: unknown algorithm %q", ErrInvalidAddress, string(alg))
	}
	if len(sum) != a.size {
		return Digest{}, fmt.Errorf("identity: %w: %s digest must be %d bytes, got %d", ErrInvalidAddress, alg, a.size, len(sum))
	}
	d := Digest{alg: alg, n: uint8(len(sum))}
	copy(d.sum[:], sum)
	return d, nil
}

// Parse parses the strict text form "<algorithm>:<lowercase hex>". It rejects
// unknown algorithms, upper-case hex, a wrong length, whitespace and anything
// else, with an error that says which rule was broken and wraps
// ErrInvalidAddress.
func Parse(s string) (Digest, error) { return builtin.Parse(s) }

// Parse is like the package-level Parse, for the algorithms of r.
func (r *Algorithms) Parse(s string) (Digest, error) {
	name, hexPart, ok := strings.Cut(s, ":")
	if !ok {
		return Digest{}, parseError(s, "missing ':' between algorithm and hex digest")
	}
	if name == "" {
		return Digest{}, parseError(s, "empty algorithm name")
	}
	a, ok := r.lookup(Algorithm(name))
	if !ok {
		return Digest{}, parseError(s, fmt.Sprintf("unknown algorithm %q (known: %s)", name, r.names()))
	}
	if len(hexPart) != 2*a.size {
		return Digest{}, parseError(s, fmt.Sprintf("%s digest must be %d hex digits, got %d", name, 2*a.size, len(hexPart)))
	}
	for i := 0; i < len(hexPart); i++ {
		c := hexPart[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return Digest{}, parseError(s, fmt.Sprintf("byte %d of the hex digest is %q, not a lowercase hex digit", i, c))
		}
	}
	d := Digest{alg: a.name, n: uint8(a.size)}
	if _, err := hex.Decode(d.sum[:a.size], []byte(hexPart)); err != nil {
		return Digest{}, parseError(s, err.Error())
	}
	return d, nil
}

func parseError(s, why string) error {
	const max = 80
	if len(s) > max {
		s = s[:max] + "…"
	}
	return fmt.Errorf("identity: %w %q: %s", ErrInvalidAddress, s, why)
}

// MustParse is like Parse but panics on error. It is meant for constants in
// tests and examples.
func MustParse(s string) Digest {
	d, err := Parse(s)
	if err != nil {
		panic(err)
	}
	return d
}

// Algorithm returns the digest's algorithm, or "" for the zero Digest.
func (d Digest) Algorithm() Algorithm { return d.alg }

// IsZero reports whether d is the invalid zero Digest.
func (d Digest) IsZero() bool { return d.n == 0 }

// Bytes returns a copy of the raw digest value.
func (d Digest) Bytes() []byte { return append([]byte(nil), d.sum[:d.n]...) }

// Size returns the length of the raw digest value in bytes (0 for the zero
// Digest).
func (d Digest) Size() int { return int(d.n) }

// TextLen returns len(d.String()) without building the string.
func (d Digest) TextLen() int {
	if d.IsZero() {
		return 0
	}
	return len(d.alg) + 1 + 2*int(d.n)
}

// AppendText implements encoding.TextAppender: it appends d.String() to b
// without allocating more than b's growth, and refuses the zero Digest.
func (d Digest) AppendText(b []byte) ([]byte, error) {
	if d.IsZero() {
		return b, fmt.Errorf("identity: %w: zero digest", ErrInvalidAddress)
	}
	b = append(b, d.alg...)
	b = append(b, ':')
	return hex.AppendEncode(b, d.sum[:d.n]), nil
}

// Compare orders d and e as their String forms sort bytewise, without
// building them (for one algorithm, lowercase hex keeps the order of the
// raw bytes): -1, 0 or +1.
func (d Digest) Compare(e Digest) int {
	if d.alg != e.alg {
		return strings.Compare(d.String(), e.String())
	}
	return bytes.Compare(d.sum[:d.n], e.sum[:e.n])
}

// Hex returns the value as lowercase hex, without the algorithm prefix.
func (d Digest) Hex() string { return hex.EncodeToString(d.sum[:d.n]) }

// String returns the content address "<algorithm>:<lowercase hex>", or "" for
// the zero Digest. Parse(d.String()) == d for every non-zero d.
func (d Digest) String() string {
	if d.IsZero() {
		return ""
	}
	return string(d.alg) + ":" + d.Hex()
}

// MarshalText implements encoding.TextMarshaler; it refuses the zero Digest.
func (d Digest) MarshalText() ([]byte, error) {
	if d.IsZero() {
		return nil, fmt.Errorf("identity: %w: zero digest", ErrInvalidAddress)
	}
	return []byte(d.String()), nil
}

// UnmarshalText implements encoding.TextUnmarshaler with the rules of Parse.
// On error *d is left unchanged.
func (d *Digest) UnmarshalText(b []byte) error {
	p, err := Parse(string(b))
	if err != nil {
		return err
	}
	*d = p
	return nil
}
