package records

import (
	"slices"
	"testing"
)

func TestFileUnderFile(t *testing.T) {
	for _, tc := range []struct {
		paths       []string
		file, under string
	}{
		{[]string{"x", "x/y"}, "x", "x/y"},
		{[]string{"a/b/c", "b", "a/b"}, "a/b", "a/b/c"},
		{[]string{"a/b/c/d", "a"}, "a", "a/b/c/d"},
		{[]string{"x", "x-y", "x.y", "xy/z"}, "", ""},
		{[]string{"a/b", "a/c", "a/b2/x"}, "", ""},
		{nil, "", ""},
	} {
		file, under, ok := FileUnderFile(tc.paths)
		if ok != (tc.file != "") || file != tc.file || under != tc.under {
			t.Errorf("FileUnderFile(%q) = %q, %q, %v; want %q, %q", tc.paths, file, under, ok, tc.file, tc.under)
		}
	}
}

func TestAncestors(t *testing.T) {
	for p, want := range map[string][]string{"a": nil, "a/b": {"a"}, "a/b/c": {"a", "a/b"}} {
		if got := Ancestors(p); !slices.Equal(got, want) {
			t.Errorf("Ancestors(%q) = %q, want %q", p, got, want)
		}
	}
}
