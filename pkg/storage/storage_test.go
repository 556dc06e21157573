package storage

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"

	"pgregory.net/rapid"

	"github.com/artifactstore/artifact-store/pkg/identity"
)

func TestKey(t *testing.T) {
	d := identity.MustParse("blake3:af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262")
	k, err := Key(d)
	if err != nil || k != "blake3/af/13/af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262" {
		t.Fatalf("Key = %q, %v", k, err)
	}
	if _, err := Key(identity.Digest{}); !errors.Is(err, ErrInvalidKey) {
		t.Fatalf("Key(zero): %v", err)
	}
	if strings.Contains(k, "..") || strings.HasPrefix(k, "/") {
		t.Fatal("key escapes")
	}
}

// TestCheckRange compares CheckRange with slicing a bytes.Reader.
func TestCheckRange(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		size := rapid.Int64Range(0, 1000).Draw(t, "size")
		off := rapid.Int64Range(-3, size+3).Draw(t, "off")
		length := rapid.Int64Range(-3, size+3).Draw(t, "length")
		n, err := CheckRange(off, length, size)
		argErr := CheckRangeArgs(off, length)
		if off < 0 || length < -1 {
			if !errors.Is(err, ErrInvalidRange) || !errors.Is(argErr, ErrInvalidRange) {
				t.Fatalf("CheckRange(%d,%d,%d) = %d, %v / %v; want ErrInvalidRange", off, length, size, n, err, argErr)
			}
			return
		}
		if argErr != nil {
			t.Fatalf("CheckRangeArgs(%d,%d): %v", off, length, argErr)
		}
		if off > size {
			if !errors.Is(err, ErrInvalidRange) {
				t.Fatalf("CheckRange(%d,%d,%d) past EOF: %v", off, length, size, err)
			}
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		src := bytes.NewReader(make([]byte, size))
		var r io.Reader = io.NewSectionReader(src, off, size-off)
		if length >= 0 {
			r = io.LimitReader(r, length)
		}
		b, _ := io.ReadAll(r)
		if int64(len(b)) != n {
			t.Fatalf("CheckRange(%d,%d,%d) = %d, reference %d", off, length, size, n, len(b))
		}
	})
}

func TestErrors(t *testing.T) {
	d := identity.MustParse("blake3:af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262")
	e := &Error{Backend: "local", Op: "get", Address: d, Err: ErrNotFound}
	if !errors.Is(e, ErrNotFound) || !strings.Contains(e.Error(), d.String()) || !strings.Contains(e.Error(), "local") {
		t.Fatalf("Error: %v", e)
	}
	var m error = &Error{Backend: "local", Op: "commit", Err: &MismatchError{Want: d, Got: d, Size: 3}}
	var me *MismatchError
	if !errors.Is(m, ErrDigestMismatch) || !errors.As(m, &me) || me.Size != 3 {
		t.Fatalf("MismatchError: %v", m)
	}
}
