package canonical

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/fxamacker/cbor/v2"
	"pgregory.net/rapid"
)

// vector is one file of testdata: hex bytes and, for good_ vectors, the
// JSON value they decode to.
type vector struct {
	name string
	good bool
	data []byte
	json string
}

func loadVectors(t testing.TB) []vector {
	t.Helper()
	paths, err := filepath.Glob("testdata/*.txt")
	if err != nil || len(paths) == 0 {
		t.Fatalf("no vectors: %v", err)
	}
	var vs []vector
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		v := vector{name: strings.TrimSuffix(filepath.Base(p), ".txt")}
		v.good = strings.HasPrefix(v.name, "good_")
		if !v.good && !strings.HasPrefix(v.name, "fail_") {
			t.Fatalf("%s: vector names start with good_ or fail_", p)
		}
		for line := range strings.Lines(string(b)) {
			k, val, _ := strings.Cut(strings.TrimRight(line, "\n"), " ")
			switch k {
			case "hex":
				if v.data, err = hex.DecodeString(val); err != nil {
					t.Fatalf("%s: %v", p, err)
				}
			case "json":
				v.json = val
			}
		}
		vs = append(vs, v)
	}
	return vs
}

// fromJSON decodes JSON into the data model's Go values (uint64 numbers).
func fromJSON(t testing.TB, s string) any {
	t.Helper()
	d := json.NewDecoder(strings.NewReader(s))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		t.Fatal(err)
	}
	var conv func(any) any
	conv = func(v any) any {
		switch x := v.(type) {
		case json.Number:
			var u uint64
			if err := json.Unmarshal([]byte(x), &u); err != nil {
				t.Fatal(err)
			}
			return u
		case []any:
			for i := range x {
				x[i] = conv(x[i])
			}
		case map[string]any:
			for k := range x {
				x[k] = conv(x[k])
			}
		}
		return v
	}
	return conv(v)
}

func TestVectors(t *testing.T) {
	for _, v := range loadVectors(t) {
		t.Run(v.name, func(t *testing.T) {
			err := Check(v.data)
			if !v.good {
				var ce *Error
				if err == nil {
					t.Fatalf("Check accepted %x", v.data)
				}
				if !errors.As(err, &ce) || !errors.Is(err, ErrNotCanonical) || ce.Offset < 0 || ce.Offset > len(v.data) {
					t.Fatalf("Check error %v: want a *Error with an offset inside the input", err)
				}
				var x any
				if Unmarshal(v.data, &x) == nil {
					t.Fatalf("Unmarshal accepted %x", v.data)
				}
				return
			}
			if err != nil {
				t.Fatalf("Check: %v", err)
			}
			want := fromJSON(t, v.json)
			var got any
			if err := Unmarshal(v.data, &got); err != nil {
				t.Fatalf("Unmarshal: %v", err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("Unmarshal = %#v, want %#v", got, want)
			}
			enc, err := Marshal(want)
			if err != nil {
				t.Fatalf("Marshal: %v", err)
			}
			if !bytes.Equal(enc, v.data) {
				t.Fatalf("Marshal = %x, want %x", enc, v.data)
			}
		})
	}
}

func TestErrorOffsets(t *testing.T) {
	for _, tc := range []struct {
		hex    string
		offset int
		reason string
	}{
		{"a2616201616101", 4, "out of canonical order"},
		{"a2616101616102", 4, "duplicate map key"},
		{"8301021817", 3, "not in shortest form"},
		{"830102f93c00", 3, "floating-point"},
		{"0000", 1, "trailing"},
		{"830102", 0, "runs past the end of input"}, {"83010262", 3, "runs past the end of input"},
		{"a1616120", 3, "negative"},
	} {
		b, _ := hex.DecodeString(tc.hex)
		var ce *Error
		if err := Check(b); !errors.As(err, &ce) || ce.Offset != tc.offset || !strings.Contains(ce.Reason, tc.reason) {
			t.Errorf("Check(%s) = %v, want %q at byte %d", tc.hex, err, tc.reason, tc.offset)
		}
	}
}

func TestLimits(t *testing.T) {
	if err := CheckLimits([]byte{0x83, 1, 2, 3}, Limits{MaxItems: 2}); err == nil {
		t.Error("MaxItems not enforced")
	}
	if err := CheckLimits([]byte{0x83, 1, 2, 3}, Limits{MaxBytes: 3}); err == nil {
		t.Error("MaxBytes not enforced")
	}
	if err := CheckLimits([]byte{0x81, 0x81, 0x80}, Limits{MaxDepth: 2}); err == nil {
		t.Error("MaxDepth not enforced")
	}
	if err := CheckLimits([]byte{0x81, 0x80}, Limits{MaxDepth: 2}); err != nil {
		t.Error(err)
	}
}

func TestMarshalRefuses(t *testing.T) {
	for _, v := range []any{-1, 1.5, []byte{1}, uint64(1) << 53, map[int]int{1: 2}} {
		if b, err := Marshal(v); err == nil {
			t.Errorf("Marshal(%#v) = %x, want an error", v, b)
		}
	}
}

func TestUnmarshalUnknownField(t *testing.T) {
	type rec struct {
		A uint64 `cbor:"a"`
	}
	b, _ := Marshal(map[string]any{"a": 1, "b": 2})
	var r rec
	if err := Unmarshal(b, &r); err == nil {
		t.Fatal("unknown field accepted")
	}
}

// genValue generates values of the data model, nested at most depth deep.
func genValue(depth int) *rapid.Generator[any] {
	scalars := []*rapid.Generator[any]{
		rapid.Uint64Range(0, MaxSafeInteger-1).AsAny(),
		rapid.Uint64Range(0, 300).AsAny(),
		rapid.Bool().AsAny(),
		rapid.Just[any](nil),
		rapid.String().AsAny(),
		rapid.StringOf(rapid.RuneFrom([]rune("ab\u00fc\u6c34\U00010151\"\\\x00\x7f"))).AsAny(),
	}
	if depth <= 1 {
		return rapid.OneOf(scalars...)
	}
	inner := genValue(depth - 1)
	return rapid.OneOf(append(scalars,
		rapid.Custom(func(t *rapid.T) any {
			n := rapid.IntRange(0, 5).Draw(t, "n")
			a := make([]any, n)
			for i := range a {
				a[i] = inner.Draw(t, "elem")
			}
			return a
		}),
		rapid.Custom(func(t *rapid.T) any {
			return rapid.MapOfN(rapid.String(), inner, 0, 5).Draw(t, "map")
		}).AsAny(),
	)...)
}

func TestPropertyRoundTrip(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		v := genValue(4).Draw(t, "v")
		b, err := Marshal(v)
		if err != nil {
			t.Fatalf("Marshal: %v", err)
		}
		if err := Check(b); err != nil {
			t.Fatalf("Check(Marshal(v)): %v", err)
		}
		var got any
		if err := Unmarshal(b, &got); err != nil {
			t.Fatalf("Unmarshal: %v", err)
		}
		if !reflect.DeepEqual(normal(got), normal(v)) {
			t.Fatalf("Unmarshal(Marshal(v)) = %#v, want %#v", got, v)
		}
	})
}

// normal maps the generator's map[string]any values and the decoder's
// alike (the generator produces the same types; this guards nil maps).
func normal(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = normal(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = normal(e)
		}
		return out
	}
	return v
}

// lenient decodes anything well-formed, so that a reference re-encoding
// can be compared with Check's verdict.
var lenient = func() cbor.DecMode {
	m, err := cbor.DecOptions{MaxNestedLevels: 64, DefaultMapType: reflect.TypeOf(map[string]any(nil))}.DecMode()
	if err != nil {
		panic(err)
	}
	return m
}()

// reencodes reports whether b decodes (leniently) and re-encodes to itself.
func reencodes(b []byte) bool {
	var v any
	if err := lenient.Unmarshal(b, &v); err != nil {
		return false
	}
	enc, err := Marshal(v)
	return err == nil && bytes.Equal(enc, b)
}

// checkAgreesWithReencoding is the core property: Check accepts b if and
// only if b decodes and re-encodes to exactly b.
func checkAgreesWithReencoding(t interface{ Fatalf(string, ...any) }, b []byte) {
	err := Check(b)
	re := reencodes(b)
	if (err == nil) != re {
		t.Fatalf("Check(%x) = %v, but decode+re-encode reproduces the input: %v", b, err, re)
	}
	if err == nil {
		var v any
		if uerr := Unmarshal(b, &v); uerr != nil {
			t.Fatalf("Check accepted %x but Unmarshal failed: %v", b, uerr)
		}
	}
}

func TestPropertyMutations(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		b, err := Marshal(genValue(4).Draw(t, "v"))
		if err != nil {
			t.Fatal(err)
		}
		b = bytes.Clone(b)
		for range rapid.IntRange(1, 3).Draw(t, "mutations") {
			switch op := rapid.IntRange(0, 3).Draw(t, "op"); {
			case op == 0 && len(b) > 0:
				i := rapid.IntRange(0, len(b)-1).Draw(t, "i")
				b[i] = rapid.Byte().Draw(t, "byte")
			case op == 1:
				i := rapid.IntRange(0, len(b)).Draw(t, "i")
				b = append(b[:i], append([]byte{rapid.Byte().Draw(t, "byte")}, b[i:]...)...)
			case op == 2 && len(b) > 0:
				i := rapid.IntRange(0, len(b)-1).Draw(t, "i")
				b = append(b[:i], b[i+1:]...)
			case op == 3:
				b = b[:rapid.IntRange(0, len(b)).Draw(t, "len")]
			}
		}
		checkAgreesWithReencoding(t, b)
	})
}

func FuzzCheck(f *testing.F) {
	for _, v := range loadVectors(f) {
		f.Add(v.data)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		checkAgreesWithReencoding(t, b)
	})
}
