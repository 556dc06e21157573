package ref

import "strings"

// CompareVersions orders versions naturally (docs/adr/0010-tags-and-expiry.md,
// "Version order"): both are split into runs of ASCII digits and runs of
// other bytes, and the runs are compared pairwise from the left. Two digit
// runs compare as numbers (so 1.10.0 sorts after 1.9.0); any other pair
// compares bytewise. When every run so far is equal, the version with fewer
// runs comes first (1.0 before 1.0.1, and 1.0.0 before 1.0.0-rc1: this is
// not SemVer precedence). Two digit runs equal as numbers but spelt with
// other leading zeros ("01" and "1") compare bytewise ("01" first), so the
// order is total: CompareVersions(a, b) == 0 only when a == b. It returns
// -1, 0 or +1.
func CompareVersions(a, b string) int {
	for a != "" && b != "" {
		ra, rb := run(a), run(b)
		a, b = a[len(ra):], b[len(rb):]
		var c int
		if isDigit(ra[0]) && isDigit(rb[0]) {
			c = compareNumeric(ra, rb)
		} else {
			c = strings.Compare(ra, rb)
		}
		if c != 0 {
			return c
		}
	}
	switch {
	case a == "" && b == "":
		return 0
	case a == "":
		return -1
	}
	return 1
}

// compareNumeric compares two digit runs as numbers, then bytewise.
func compareNumeric(a, b string) int {
	ta, tb := strings.TrimLeft(a, "0"), strings.TrimLeft(b, "0")
	if len(ta) != len(tb) {
		if len(ta) < len(tb) {
			return -1
		}
		return 1
	}
	if c := strings.Compare(ta, tb); c != 0 {
		return c
	}
	return strings.Compare(a, b) // same number: "01" before "1" bytewise
}

// run returns the leading run of s: its digits, or its bytes up to the
// first digit. s is not empty.
func run(s string) string {
	d := isDigit(s[0])
	i := 1
	for i < len(s) && isDigit(s[i]) == d {
		i++
	}
	return s[:i]
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }
