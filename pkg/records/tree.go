package records

import "strings"

// FileUnderFile looks for two package paths that cannot both be files of
// one package because one would have to be a directory: file is a path of
// the list and under lies below it (under starts with file + "/"), as "x"
// and "x/y". It reports the first such pair found, and ok false when every
// path can be a file. It costs one map lookup per segment of each path.
func FileUnderFile(paths []string) (file, under string, ok bool) {
	set := make(map[string]struct{}, len(paths))
	for _, p := range paths {
		set[p] = struct{}{}
	}
	for _, p := range paths {
		for i := strings.IndexByte(p, '/'); i >= 0; i = next(p, i) {
			if _, hit := set[p[:i]]; hit {
				return p[:i], p, true
			}
		}
	}
	return "", "", false
}

// Ancestors returns the proper directory prefixes of the package path p,
// shortest first: "a/b/c" gives "a" and "a/b".
func Ancestors(p string) []string {
	var out []string
	for i := strings.IndexByte(p, '/'); i >= 0; i = next(p, i) {
		out = append(out, p[:i])
	}
	return out
}

// next is the index of the '/' after the one at i, or -1.
func next(p string, i int) int {
	j := strings.IndexByte(p[i+1:], '/')
	if j < 0 {
		return -1
	}
	return i + 1 + j
}
