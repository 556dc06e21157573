package ref

import (
	"errors"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	hex := strings.Repeat("ab", 32)
	good := []struct {
		in                 string
		name, version, tag string
		digest             bool
	}{
		{"app@1.2.3", "app", "1.2.3", "", false},
		{"team/app@1.0.0-rc.1+b7", "team/app", "1.0.0-rc.1+b7", "", false},
		{"app:stable", "app", "", "stable", false},
		{"app:_x.y-Z", "app", "", "_x.y-Z", false},
		{"app@blake3:" + hex, "app", "", "", true},
	}
	for _, c := range good {
		r, err := Parse(c.in)
		if err != nil {
			t.Errorf("Parse(%q): %v", c.in, err)
			continue
		}
		if r.Name != c.name || r.Version != c.version || r.Tag != c.tag || r.Digest.IsZero() == c.digest {
			t.Errorf("Parse(%q) = %+v", c.in, r)
		}
		if r.String() != c.in {
			t.Errorf("Parse(%q).String() = %q", c.in, r.String())
		}
	}
	bad := []string{
		"", "app", "@1", ":t", "App@1", "app@", "app:", "app:-x", "app:.x", "app:a/b",
		"app@1 2", "app@a:b", "app@sha256:" + hex, "app@blake3:" + hex[:10], "app@blake3:" + strings.ToUpper(hex),
		"app:" + strings.Repeat("a", 129), "a//b@1", "app@v\\1",
	}
	for _, s := range bad {
		if r, err := Parse(s); err == nil || !errors.Is(err, ErrInvalid) {
			t.Errorf("Parse(%q) = %+v, %v; want ErrInvalid", s, r, err)
		}
	}
	if _, err := ParseVersion("app:stable"); !errors.Is(err, ErrInvalid) {
		t.Errorf("ParseVersion of a tag: %v", err)
	}
	if r, err := ParseVersion("app@1"); err != nil || !r.IsVersion() {
		t.Errorf("ParseVersion(app@1) = %+v, %v", r, err)
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"app@1.2.3", "app:stable", "app@blake3:" + strings.Repeat("0", 64), "a/b@c", "x:y@z"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := Parse(s)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("Parse(%q): error %v does not wrap ErrInvalid", s, err)
			}
			return
		}
		if r.String() != s {
			t.Fatalf("Parse(%q).String() = %q", s, r.String())
		}
	})
}
