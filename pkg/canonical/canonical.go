// Package canonical is artifact-store's one CBOR configuration: RFC 8949
// §4.2.1 core deterministic encoding, restricted to the JSON-compatible data
// model of DESIGN.md §4 (maps with text keys, arrays, text strings,
// non-negative integers below 2^53, booleans and null).
//
// [Marshal] produces canonical bytes. [Check] proves that bytes are exactly
// canonical in a single pass, naming the byte offset of the first violation,
// and [Unmarshal] decodes only what Check accepts, so that a value decodes
// if and only if re-encoding it gives back the same bytes. Manifests,
// file records and event payloads all go through this package.
package canonical

import (
	"errors"
	"fmt"
	"reflect"

	"github.com/fxamacker/cbor/v2"
)

// ErrNotCanonical is wrapped by every error that Check and Unmarshal return
// for input outside canonical CBOR or the data model.
var ErrNotCanonical = errors.New("not canonical CBOR")

// MaxSafeInteger is the first integer the data model refuses: 2^53, the
// limit of integers that JSON tools read exactly.
const MaxSafeInteger = 1 << 53

// Limits bound what Check accepts, so that hostile input cannot exhaust
// memory or stack.
type Limits struct {
	MaxDepth int // nesting of arrays and maps; the top-level item is depth 1
	MaxItems int // elements of one array or pairs of one map
	MaxBytes int // length of the whole input
}

// DefaultLimits admit a manifest of a million files and any sane record:
// depth 16, 4,194,304 items per container, 1 GiB of input.
var DefaultLimits = Limits{MaxDepth: 16, MaxItems: 1 << 22, MaxBytes: 1 << 30}

// encMode is the one encoder configuration. Every option is tied to the rule
// it implements; it is built once and never changed.
var encMode = mustEncMode(cbor.EncOptions{
	// RFC 8949 §4.2.1: map keys sorted bytewise lexicographically by their
	// deterministic encodings.
	Sort: cbor.SortCoreDeterministic,
	// §4.2.1: indefinite-length items must not appear.
	IndefLength: cbor.IndefLengthForbidden,
	// The data model has no tags; refuse to emit any.
	TagsMd: cbor.TagsForbidden,
	// Floats are outside the data model; these only matter if one slips
	// through, and Check refuses the output anyway.
	ShortestFloat: cbor.ShortestFloat16,
	NaNConvert:    cbor.NaNConvert7e00,
	InfConvert:    cbor.InfConvertFloat16,
	// Strings are always valid UTF-8 text strings (major type 3).
	String: cbor.StringToTextString,
	// Digest and similar value types appear as their text form.
	TextMarshaler: cbor.TextMarshalerTextString,
	// nil slices and maps encode as empty containers, never as null, so
	// that a value and its decoded copy encode alike.
	NilContainers: cbor.NilContainerAsEmpty,
})

// decMode decodes input that Check has already proven canonical; its
// options are a second line of defence and make unknown fields an error.
var decMode = mustDecMode(cbor.DecOptions{
	DupMapKey:         cbor.DupMapKeyEnforcedAPF,
	IndefLength:       cbor.IndefLengthForbidden,
	TagsMd:            cbor.TagsForbidden,
	MaxNestedLevels:   DefaultLimits.MaxDepth,
	MaxArrayElements:  DefaultLimits.MaxItems,
	MaxMapPairs:       DefaultLimits.MaxItems,
	UTF8:              cbor.UTF8RejectInvalid,
	ExtraReturnErrors: cbor.ExtraDecErrorUnknownField,
	DefaultMapType:    reflect.TypeOf(map[string]any(nil)),
	FieldNameMatching: cbor.FieldNameMatchingCaseSensitive,
	TextUnmarshaler:   cbor.TextUnmarshalerTextString,
})

func mustEncMode(o cbor.EncOptions) cbor.EncMode {
	m, err := o.EncMode()
	if err != nil {
		panic(err)
	}
	return m
}

func mustDecMode(o cbor.DecOptions) cbor.DecMode {
	m, err := o.DecMode()
	if err != nil {
		panic(err)
	}
	return m
}

// Marshal returns the canonical encoding of v, and fails if the result is
// outside the data model (a float, a negative integer, a byte string, an
// integer at or above 2^53).
func Marshal(v any) ([]byte, error) {
	b, err := encMode.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("canonical: encode: %w", err)
	}
	if err := Check(b); err != nil {
		return nil, fmt.Errorf("canonical: encode: value outside the data model: %w", err)
	}
	return b, nil
}

// Unmarshal checks that data is exactly one canonical item (Check) and
// decodes it into v. Unknown struct fields are an error. On error v may
// have been partly written; callers that must not see that decode into a
// fresh value and copy it out on success.
func Unmarshal(data []byte, v any) error {
	if err := Check(data); err != nil {
		return err
	}
	if err := decMode.Unmarshal(data, v); err != nil {
		return fmt.Errorf("canonical: decode: %w", err)
	}
	return nil
}

// RawMessage is one CBOR data item kept as bytes, as read from a stream.
type RawMessage = cbor.RawMessage
