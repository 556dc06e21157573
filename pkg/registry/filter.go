package registry

import (
	"fmt"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/artifactstore/artifact-store/pkg/ref"
)

// Parsers for the filters tools take (as-ls, as-retain). Each returns an
// error wrapping ErrInvalid that says what is wrong; none panics.

// CheckGlob reports whether glob is a valid path.Match pattern.
func CheckGlob(glob string) error {
	if _, err := path.Match(glob, ""); err != nil {
		return fmt.Errorf("%w: name pattern %q: %w", ErrInvalid, glob, err)
	}
	return nil
}

// ParseLabel parses KEY=VALUE (the value may be empty and may hold '=').
func ParseLabel(s string) (key, value string, err error) {
	k, v, ok := strings.Cut(s, "=")
	if !ok || k == "" {
		return "", "", fmt.Errorf("%w: label %q: want KEY=VALUE", ErrInvalid, s)
	}
	if !canonicalText(k) || !canonicalText(v) {
		return "", "", fmt.Errorf("%w: label %q: not valid UTF-8 text", ErrInvalid, s)
	}
	return k, v, nil
}

// ParseDuration parses a length of time: a Go duration ("36h", "90m") or a
// whole number of days ("7d"). It must not be negative.
func ParseDuration(s string) (time.Duration, error) {
	if d, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.ParseUint(d, 10, 32)
		if err != nil || n > 100000 { // beyond ~273 years a time.Duration overflows
			return 0, fmt.Errorf("%w: duration %q: want a number of days (7d) or a Go duration (36h)", ErrInvalid, s)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("%w: duration %q: want a number of days (7d) or a Go duration (36h), not negative", ErrInvalid, s)
	}
	return d, nil
}

// ParseTime parses a point in time: RFC 3339 ("2026-12-01T00:00:00Z"), a
// date ("2026-12-01", midnight UTC), or a duration (ParseDuration) meaning
// that long before now.
func ParseTime(s string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		if y := t.UTC().Year(); y < 1 || y > 9999 {
			return time.Time{}, fmt.Errorf("%w: time %q outside years 0001-9999", ErrInvalid, s)
		}
		return t.UTC(), nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	d, err := ParseDuration(s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%w: time %q: want RFC 3339, YYYY-MM-DD, or a duration ago (7d, 36h)", ErrInvalid, s)
	}
	t := now.Add(-d)
	if t.Year() < 1 {
		return time.Time{}, fmt.Errorf("%w: time %q is before year 1", ErrInvalid, s)
	}
	return t.UTC(), nil
}

// ParseTagRef parses NAME:TAG, the form as-tag --delete takes.
func ParseTagRef(s string) (name, tag string, err error) {
	rf, err := ref.Parse(s)
	if err != nil {
		return "", "", err
	}
	if rf.Tag == "" {
		return "", "", fmt.Errorf("%w %q: want NAME:TAG", ref.ErrInvalid, s)
	}
	return rf.Name, rf.Tag, nil
}
