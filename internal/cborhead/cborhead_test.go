package cborhead

import (
	"errors"
	"testing"

	"github.com/fxamacker/cbor/v2"
	"pgregory.net/rapid"
)

// TestAppendRead: every head Append writes is what cbor/v2 writes for the
// same item, Read gives back its major type and argument, and it is in
// shortest form.
func TestAppendRead(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		n := rapid.OneOf(rapid.Uint64Range(0, 30), rapid.Uint64Range(0, 1<<17), rapid.Uint64()).Draw(t, "n")
		b := Append(nil, 0, n)
		want, err := cbor.Marshal(n)
		if err != nil {
			t.Fatal(err)
		}
		if string(b) != string(want) {
			t.Fatalf("Append(0, %d) = %x, cbor/v2 writes %x", n, b, want)
		}
		h, err := Read(append(b, 0xff))
		if err != nil || h.Major != 0 || h.Arg != n || h.Len != len(b) || !h.Shortest() {
			t.Fatalf("Read(%x) = %+v, %v", b, h, err)
		}
	})
}

func TestReadRefuses(t *testing.T) {
	for _, c := range []struct {
		in   []byte
		want error
	}{
		{nil, ErrTruncated},
		{[]byte{0x19, 0x01}, ErrTruncated},
		{[]byte{0x1b, 0, 0, 0, 0, 0, 0, 0}, ErrTruncated},
		{[]byte{0x1c}, ErrReserved},
		{[]byte{0x7e}, ErrReserved},
	} {
		if _, err := Read(c.in); !errors.Is(err, c.want) {
			t.Errorf("Read(%x) = %v, want %v", c.in, err, c.want)
		}
	}
	if h, _ := Read([]byte{0x18, 0x05}); h.Shortest() {
		t.Errorf("0x18 0x05 is not shortest form")
	}
}

func FuzzRead(f *testing.F) {
	f.Add([]byte{0x1b, 1, 2, 3, 4, 5, 6, 7, 8})
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := Read(b)
		if err != nil {
			return
		}
		if h.Len > len(b) {
			t.Fatalf("Len %d beyond input %d", h.Len, len(b))
		}
		if h.Info >= 24 && h.Info <= 27 && h.Major != 7 && h.Shortest() {
			if got := Append(nil, h.Major, h.Arg); string(got) != string(b[:h.Len]) {
				t.Fatalf("shortest head %x re-encodes as %x", b[:h.Len], got)
			}
		}
	})
}

// TestAppendText: AppendText writes what cbor/v2 writes for a string, for
// strings and byte slices alike.
func TestAppendText(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		s := rapid.StringN(0, 300, -1).Draw(t, "s")
		want, err := cbor.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		if got := AppendText([]byte{0xff}, s); string(got[1:]) != string(want) || got[0] != 0xff {
			t.Fatalf("AppendText(%q) = %x, cbor/v2 writes %x", s, got, want)
		}
		if got := AppendText(nil, []byte(s)); string(got) != string(want) {
			t.Fatalf("AppendText([]byte(%q)) = %x, cbor/v2 writes %x", s, got, want)
		}
	})
}
