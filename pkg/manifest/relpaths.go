package manifest

import (
	"fmt"

	"github.com/artifactstore/artifact-store/pkg/records"
)

// Relativize makes paths relative to root exactly as Builder does (root ""
// means the deepest directory that contains every path) and checks each
// result as a package path. It returns the relative paths in input order
// and the root used, so that a caller can keep reading files by the path it
// was given while recording them by package path.
func Relativize(root string, paths []string) ([]string, string, error) {
	r := cleanPath(root)
	if root == "" {
		cleaned := make([]string, len(paths))
		for i, p := range paths {
			cleaned[i] = cleanPath(p)
		}
		r = commonDirOf(cleaned)
	}
	out := make([]string, len(paths))
	for i, p := range paths {
		rel, err := relative(r, cleanPath(p))
		if err == nil {
			err = records.CheckPath(rel)
		}
		if err != nil {
			return nil, "", fmt.Errorf("manifest: record %d: path %q: %w", i+1, p, err)
		}
		out[i] = rel
	}
	return out, r, nil
}
