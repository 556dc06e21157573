package canonical

import (
	"bytes"
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/artifactstore/artifact-store/internal/cborhead"
)

// Error locates the first violation that Check found.
type Error struct {
	Offset int    // byte offset into the checked input
	Reason string // what is wrong there
}

func (e *Error) Error() string {
	return fmt.Sprintf("canonical: %s at byte %d: %s", ErrNotCanonical.Error(), e.Offset, e.Reason)
}

// Unwrap makes errors.Is(err, ErrNotCanonical) true.
func (e *Error) Unwrap() error { return ErrNotCanonical }

// Check reports whether b is exactly one data item in canonical form within
// the data model and DefaultLimits: shortest-form heads, definite lengths,
// map keys that are text strings sorted bytewise and unique, valid UTF-8,
// no floats, tags, byte strings, negative integers, undefined or other simple
// values, integers below 2^53, and nothing after the item.
func Check(b []byte) error { return CheckLimits(b, DefaultLimits) }

// CheckLimits is Check with explicit limits.
func CheckLimits(b []byte, l Limits) error {
	if l.MaxBytes > 0 && len(b) > l.MaxBytes {
		return &Error{Offset: l.MaxBytes, Reason: fmt.Sprintf("input of %d bytes exceeds the limit of %d", len(b), l.MaxBytes)}
	}
	c := checker{b: b, lim: l}
	if len(b) == 0 {
		return &Error{Offset: 0, Reason: "empty input"}
	}
	if err := c.item(1); err != nil {
		if b[0] == '{' || b[0] == '[' {
			if e, ok := err.(*Error); ok && e.Offset == 0 {
				e.Reason += " (input looks like JSON, not CBOR)"
			}
		}
		return err
	}
	if c.off != len(b) {
		return &Error{Offset: c.off, Reason: fmt.Sprintf("%d trailing bytes after the data item", len(b)-c.off)}
	}
	return nil
}

type checker struct {
	b   []byte
	off int
	lim Limits
}

func (c *checker) fail(off int, format string, a ...any) error {
	return &Error{Offset: off, Reason: fmt.Sprintf(format, a...)}
}

// head reads an initial byte and its argument, insisting on the shortest
// form (RFC 8949 §4.2.1) and a definite length.
func (c *checker) head() (major byte, arg uint64, err error) {
	start := c.off
	if c.off >= len(c.b) {
		return 0, 0, c.fail(start, "unexpected end of input")
	}
	h, err := cborhead.Read(c.b[c.off:])
	switch {
	case errors.Is(err, cborhead.ErrReserved):
		return 0, 0, c.fail(start, "reserved additional information %d", h.Info)
	case err != nil:
		return 0, 0, c.fail(start, "%v", err)
	}
	c.off += h.Len
	if h.Major == 7 {
		switch h.Info {
		case 20, 21, 22: // false, true, null
			return h.Major, h.Arg, nil
		case 23:
			return 0, 0, c.fail(start, "undefined is outside the data model")
		case 25, 26, 27:
			return 0, 0, c.fail(start, "floating-point number is outside the data model")
		case 31:
			return 0, 0, c.fail(start, "unexpected break byte")
		default:
			return 0, 0, c.fail(start, "simple value %d is outside the data model", h.Info)
		}
	}
	if h.Info == 31 {
		return 0, 0, c.fail(start, "indefinite-length item (major type %d)", h.Major)
	}
	if !h.Shortest() {
		return 0, 0, c.fail(start, "argument %d not in shortest form", h.Arg)
	}
	return h.Major, h.Arg, nil
}

func (c *checker) item(depth int) error {
	start := c.off
	major, arg, err := c.head()
	if err != nil {
		return err
	}
	switch major {
	case 0:
		if arg >= MaxSafeInteger {
			return c.fail(start, "integer %d is not below 2^53", arg)
		}
	case 1:
		return c.fail(start, "negative integer is outside the data model")
	case 2:
		return c.fail(start, "byte string is outside the data model")
	case 3:
		if arg > uint64(len(c.b)-c.off) {
			return c.fail(start, "text string of %d bytes runs past the end of input", arg)
		}
		s := c.b[c.off : c.off+int(arg)]
		if !utf8.Valid(s) {
			return c.fail(start, "text string is not valid UTF-8")
		}
		c.off += int(arg)
	case 4, 5:
		if c.lim.MaxDepth > 0 && depth > c.lim.MaxDepth {
			return c.fail(start, "nesting deeper than %d", c.lim.MaxDepth)
		}
		if c.lim.MaxItems > 0 && arg > uint64(c.lim.MaxItems) {
			return c.fail(start, "container of %d items exceeds the limit of %d", arg, c.lim.MaxItems)
		}
		// Every item takes at least one byte; a larger count cannot fit.
		if arg > uint64(len(c.b)-c.off) {
			return c.fail(start, "container of %d items runs past the end of input", arg)
		}
		if major == 4 {
			for range arg {
				if err := c.item(depth + 1); err != nil {
					return err
				}
			}
			return nil
		}
		var prev []byte
		for i := range arg {
			kstart := c.off
			if kstart < len(c.b) && c.b[kstart]>>5 != 3 {
				return c.fail(kstart, "map key is not a text string")
			}
			if err := c.item(depth + 1); err != nil {
				return err
			}
			key := c.b[kstart:c.off]
			if i > 0 {
				switch bytes.Compare(prev, key) {
				case 0:
					return c.fail(kstart, "duplicate map key %q", keyText(key))
				case 1:
					return c.fail(kstart, "map key %q out of canonical order", keyText(key))
				}
			}
			prev = key
			if err := c.item(depth + 1); err != nil {
				return err
			}
		}
	case 6:
		return c.fail(start, "tag %d is outside the data model", arg)
	}
	return nil
}

// keyText returns the text of an encoded text-string key, for messages.
func keyText(enc []byte) string {
	c := checker{b: enc}
	if _, n, err := c.head(); err == nil && uint64(len(enc)-c.off) == n {
		s := string(enc[c.off:])
		if len(s) > 64 {
			s = s[:64] + "…"
		}
		return s
	}
	return "?"
}
