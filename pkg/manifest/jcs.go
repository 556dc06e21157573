package manifest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/artifactstore/artifact-store/pkg/canonical"
	"github.com/gowebpki/jcs"
)

// JCS validates m and returns its RFC 8785 canonical JSON: the byte-exact
// projection of the CBOR encoding for people and JSON tools. It carries
// the same data; CBORFromJCS maps it back to the canonical CBOR bytes.
func JCS(m Manifest) ([]byte, error) {
	if err := m.Validate(); err != nil {
		return nil, err
	}
	b, err := json.Marshal(m.toWire())
	if err != nil {
		return nil, fmt.Errorf("manifest: encode JSON: %w", err)
	}
	out, err := jcs.Transform(b)
	if err != nil {
		return nil, fmt.Errorf("manifest: JCS: %w", err)
	}
	return out, nil
}

// FromJCS parses a manifest's canonical JSON as strictly as Decode parses
// CBOR: the input must be exactly RFC 8785 canonical (no whitespace, keys
// sorted, no duplicate keys, numbers and strings in their one spelling),
// hold only non-negative integers below 2^53 and no more nesting than
// canonical.DefaultLimits, and then pass every rule of Decode. On success
// JCS of the result gives back b exactly.
func FromJCS(b []byte) (Manifest, error) {
	c, err := CBORFromJCS(b)
	if err != nil {
		return Manifest{}, err
	}
	return Decode(c)
}

// CBORFromJCS converts canonical JSON into canonical CBOR of the same data
// model value, refusing anything that is not canonical JSON or lies outside
// the data model. It does not check the manifest schema; Decode does.
func CBORFromJCS(b []byte) ([]byte, error) {
	if len(b) > MaxBytes {
		return nil, &Error{Offset: MaxBytes, Err: fmt.Errorf("input of %d bytes exceeds the limit of %d", len(b), MaxBytes)}
	}
	if off, err := checkJSONDepth(b, canonical.DefaultLimits.MaxDepth); err != nil {
		return nil, &Error{Offset: off, Err: err}
	}
	t, err := jcs.Transform(b)
	if err != nil {
		return nil, &Error{Offset: -1, Err: fmt.Errorf("not canonical JSON: %w", err)}
	}
	if !bytes.Equal(t, b) {
		off := 0
		for off < len(t) && off < len(b) && t[off] == b[off] {
			off++
		}
		return nil, &Error{Offset: off, Err: errors.New("not RFC 8785 canonical JSON (whitespace, key order, or number or string spelling differs)")}
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, &Error{Offset: -1, Err: fmt.Errorf("JSON: %w", err)}
	}
	v, err = fromJSONValue(v, "")
	if err != nil {
		return nil, err
	}
	c, err := canonical.Marshal(v)
	if err != nil {
		return nil, &Error{Offset: -1, Err: err}
	}
	return c, nil
}

// fromJSONValue replaces json.Numbers with uint64, refusing fractions,
// exponents, negative numbers and integers at or above 2^53.
func fromJSONValue(v any, field string) (any, error) {
	switch x := v.(type) {
	case json.Number:
		u, err := strconv.ParseUint(string(x), 10, 64)
		if err != nil || u >= canonical.MaxSafeInteger {
			return nil, fieldErr(field, "number %s is not a non-negative integer below 2^53", x)
		}
		return u, nil
	case []any:
		for i, e := range x {
			e, err := fromJSONValue(e, fmt.Sprintf("%s[%d]", field, i))
			if err != nil {
				return nil, err
			}
			x[i] = e
		}
	case map[string]any:
		for k, e := range x {
			e, err := fromJSONValue(e, join(field, k))
			if err != nil {
				return nil, err
			}
			x[k] = e
		}
	}
	return v, nil
}

// checkJSONDepth refuses JSON nested deeper than max before any recursive
// parser sees it.
func checkJSONDepth(b []byte, max int) (int, error) {
	depth, inString, escaped := 0, false, false
	for i, c := range b {
		switch {
		case inString:
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
		case c == '"':
			inString = true
		case c == '[' || c == '{':
			depth++
			if depth > max {
				return i, fmt.Errorf("nesting deeper than %d", max)
			}
		case c == ']' || c == '}':
			depth--
		}
	}
	return 0, nil
}
