package ref

import (
	"slices"
	"strconv"
	"testing"

	"pgregory.net/rapid"
)

func TestCompareVersionsTable(t *testing.T) {
	// Each list is in ascending natural order.
	for _, asc := range [][]string{
		{"1.2.0", "1.9.0", "1.10.0", "1.10.1", "2.0.0", "10.0.0"},
		{"1.0", "1.0.0", "1.0.0-rc1", "1.0.0-rc2", "1.0.0-rc10"},
		{"0", "00", "01", "1", "2", "9", "10", "99", "100"},
		{"a", "a1", "a2", "a10", "b"},
		{"1-", "1.", "1a"}, // after a digit run: other bytes bytewise
		{"2026.01.02", "2026.1.3", "2026.12.1"},
	} {
		for i := range asc {
			for j := range asc {
				got := CompareVersions(asc[i], asc[j])
				want := 0
				if i < j {
					want = -1
				} else if i > j {
					want = 1
				}
				if got != want {
					t.Errorf("CompareVersions(%q, %q) = %d, want %d", asc[i], asc[j], got, want)
				}
			}
		}
	}
}

var versionGen = rapid.StringMatching(`[0-9a-z.\-]{0,12}`)

// TestCompareVersionsProperties: a total order (antisymmetric, transitive,
// zero only for equal texts) that orders plain integers numerically.
func TestCompareVersionsProperties(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		a, b, c := versionGen.Draw(t, "a"), versionGen.Draw(t, "b"), versionGen.Draw(t, "c")
		ab, ba := CompareVersions(a, b), CompareVersions(b, a)
		if ab != -ba {
			t.Fatalf("not antisymmetric: %q %q: %d %d", a, b, ab, ba)
		}
		if (ab == 0) != (a == b) {
			t.Fatalf("CompareVersions(%q, %q) = %d", a, b, ab)
		}
		if ab <= 0 && CompareVersions(b, c) <= 0 && CompareVersions(a, c) > 0 {
			t.Fatalf("not transitive: %q <= %q <= %q but %q > %q", a, b, c, a, c)
		}
		x, y := rapid.Uint32().Draw(t, "x"), rapid.Uint32().Draw(t, "y")
		p := rapid.StringMatching(`[a-z.]{0,3}`).Draw(t, "prefix")
		want := 0
		if x < y {
			want = -1
		} else if x > y {
			want = 1
		}
		if got := CompareVersions(p+strconv.FormatUint(uint64(x), 10), p+strconv.FormatUint(uint64(y), 10)); got != want {
			t.Fatalf("%s%d vs %s%d: got %d want %d", p, x, p, y, got, want)
		}
		vs := []string{a, b, c}
		slices.SortFunc(vs, CompareVersions)
		if !slices.IsSortedFunc(vs, CompareVersions) {
			t.Fatalf("sort disagrees with order: %q", vs)
		}
	})
}

func FuzzCompareVersions(f *testing.F) {
	f.Add("1.10.0", "1.9.0")
	f.Add("01", "1")
	f.Add("", "a")
	f.Fuzz(func(t *testing.T, a, b string) {
		ab, ba := CompareVersions(a, b), CompareVersions(b, a)
		if ab != -ba || (ab == 0) != (a == b) || ab < -1 || ab > 1 {
			t.Fatalf("CompareVersions(%q, %q) = %d, reverse %d", a, b, ab, ba)
		}
	})
}
