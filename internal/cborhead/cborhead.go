// Package cborhead reads and writes the head of a CBOR data item (RFC 8949
// §3): the initial byte and its argument. It is the one place the project
// hand-encodes heads; the canonical checker (pkg/canonical), the manifest
// decoder (pkg/manifest) and the event record (pkg/events) all use it, so
// they cannot disagree on what a head is (docs/adr/0003-manifest-canonicalisation.md).
package cborhead

import "errors"

// Errors of [Read]; callers add the offset and the field.
var (
	// ErrTruncated: the input ends inside the head.
	ErrTruncated = errors.New("unexpected end of input in an item head")
	// ErrReserved: additional information 28–30, which RFC 8949 reserves.
	ErrReserved = errors.New("reserved additional information")
)

// Head is one decoded item head.
type Head struct {
	Major byte   // major type, 0–7
	Info  byte   // additional information, 0–31
	Arg   uint64 // the argument; for Info < 24 (and for major type 7) Info itself
	Len   int    // bytes the head occupies
}

// Read decodes the head at the start of b. For Info 31 (indefinite length
// or break) and for major type 7 it reads only the initial byte and sets
// Arg = Info, leaving the judgement to the caller; for Info 24–27 it reads
// the 1, 2, 4 or 8 argument bytes big-endian. It never reads past b.
func Read(b []byte) (Head, error) {
	if len(b) == 0 {
		return Head{}, ErrTruncated
	}
	h := Head{Major: b[0] >> 5, Info: b[0] & 0x1f, Len: 1}
	switch {
	case h.Info < 24 || h.Info == 31 || h.Major == 7:
		h.Arg = uint64(h.Info)
		return h, nil
	case h.Info > 27:
		return h, ErrReserved
	}
	n := 1 << (h.Info - 24)
	if len(b)-1 < n {
		return h, ErrTruncated
	}
	for _, x := range b[1 : 1+n] {
		h.Arg = h.Arg<<8 | uint64(x)
	}
	h.Len += n
	return h, nil
}

// Shortest reports whether h's argument is in the shortest form RFC 8949
// §4.2.1 requires (an argument below 24 in the initial byte, else the
// fewest argument bytes that hold it).
func (h Head) Shortest() bool {
	switch h.Info {
	case 24:
		return h.Arg >= 24
	case 25:
		return h.Arg > 0xff
	case 26:
		return h.Arg > 0xffff
	case 27:
		return h.Arg > 0xffffffff
	}
	return true
}

// Append appends the head of an item of the major type with argument n,
// in shortest form.
func Append(b []byte, major byte, n uint64) []byte {
	m := major << 5
	switch {
	case n < 24:
		return append(b, m|byte(n))
	case n <= 0xff:
		return append(b, m|24, byte(n))
	case n <= 0xffff:
		return append(b, m|25, byte(n>>8), byte(n))
	case n <= 0xffffffff:
		return append(b, m|26, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	default:
		return append(b, m|27, byte(n>>56), byte(n>>48), byte(n>>40), byte(n>>32), byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
}

// AppendText appends s as a CBOR text string (major type 3), its head in
// shortest form. The caller vouches that s is UTF-8.
func AppendText[S ~string | ~[]byte](b []byte, s S) []byte {
	return append(Append(b, 3, uint64(len(s))), s...)
}
