package registry

import (
	"errors"
	"path"
	"strings"
	"testing"
	"time"

	"github.com/artifactstore/artifact-store/pkg/ref"
)

// The filter parsers take text from the command line: any input gives a
// value or an error wrapping ErrInvalid (or ref.ErrInvalid), never a panic.

func FuzzParseLabel(f *testing.F) {
	for _, s := range []string{"team=build", "k=", "=v", "a=b=c", "", "\xff=1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		k, v, err := ParseLabel(s)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("ParseLabel(%q): %v does not wrap ErrInvalid", s, err)
			}
			return
		}
		if k == "" || k+"="+v != s {
			t.Fatalf("ParseLabel(%q) = %q, %q", s, k, v)
		}
	})
}

func FuzzParseTime(f *testing.F) {
	for _, s := range []string{"7d", "36h", "2026-12-01", "2026-12-01T10:00:00Z", "-1h", "99999999d", "1e9h", ""} {
		f.Add(s)
	}
	now := time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, s string) {
		if d, err := ParseDuration(s); err == nil && d < 0 {
			t.Fatalf("ParseDuration(%q) = %v, negative", s, d)
		} else if err != nil && !errors.Is(err, ErrInvalid) {
			t.Fatalf("ParseDuration(%q): %v", s, err)
		}
		tm, err := ParseTime(s, now)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("ParseTime(%q): %v", s, err)
			}
			return
		}
		if y := tm.Year(); y < 1 || y > 9999 {
			t.Fatalf("ParseTime(%q) = %v, outside the years a view time holds", s, tm)
		}
		if _, err := parseViewTime(viewTime(tm)); err != nil {
			t.Fatalf("ParseTime(%q) = %v does not round-trip as a view time: %v", s, tm, err)
		}
	})
}

func FuzzGlob(f *testing.F) {
	for _, s := range []string{"app", "tools/*", "a?p", "[a-", "\\", "*", ""} {
		f.Add(s, "app")
	}
	f.Fuzz(func(t *testing.T, glob, name string) {
		if err := CheckGlob(glob); err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("CheckGlob(%q): %v", glob, err)
			}
			return
		}
		// The SQL prefix List pushes down never drops a name the glob matches.
		if ok, _ := path.Match(glob, name); ok && !strings.HasPrefix(name, literalPrefix(glob)) {
			t.Fatalf("glob %q matches %q but its literal prefix %q does not", glob, name, literalPrefix(glob))
		}
	})
}

func FuzzParseTagRef(f *testing.F) {
	for _, s := range []string{"app:stable", "app@1", "app", ":x", "a:b:c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, tag, err := ParseTagRef(s)
		if err != nil {
			if !errors.Is(err, ref.ErrInvalid) {
				t.Fatalf("ParseTagRef(%q): %v", s, err)
			}
			return
		}
		if n+":"+tag != s || ref.CheckTag(tag) != nil {
			t.Fatalf("ParseTagRef(%q) = %q, %q", s, n, tag)
		}
	})
}
