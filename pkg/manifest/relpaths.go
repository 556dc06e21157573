package manifest

import (
	"fmt"
	"path/filepath"

	"github.com/artifactstore/artifact-store/pkg/records"
)

// Relativize makes record paths relative to root and checks each result as
// a package path: the one rule as-put, as-manifest and Builder share.
// Paths are cleaned lexically ("./a//b" is "a/b"). A root given is made
// absolute against the working directory, and so is every path, so that a
// relative root with absolute paths (or the reverse) means what it says.
// Root "" means the deepest directory that contains every path, without
// consulting the working directory. It returns the relative paths in input
// order and the root used, so that a caller can keep reading files by the
// path it was given while recording them by package path.
func Relativize(root string, paths []string) ([]string, string, error) {
	if root != "" {
		abs, err := filepath.Abs(root)
		if err != nil {
			return nil, "", fmt.Errorf("manifest: root %q: %w", root, err)
		}
		r := cleanPath(abs)
		absPaths := make([]string, len(paths))
		for i, p := range paths {
			if absPaths[i], err = filepath.Abs(p); err != nil {
				return nil, "", fmt.Errorf("manifest: record %d: path %q: %w", i+1, p, err)
			}
		}
		rel, _, err := relativizeTo(r, absPaths, paths)
		if err != nil {
			return nil, "", err
		}
		return rel, r, nil
	}
	return relativizeTo("", paths, paths)
}

// relativizeTo makes paths relative to the cleaned root r ("": the common
// directory); errors name a path as shown[i], the spelling given.
func relativizeTo(r string, paths, shown []string) ([]string, string, error) {
	if r == "" {
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
			return nil, "", fmt.Errorf("manifest: record %d: path %q: %w", i+1, shown[i], err)
		}
		out[i] = rel
	}
	return out, r, nil
}
