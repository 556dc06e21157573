package manifest

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"

	"github.com/artifactstore/artifact-store/pkg/scan"
)

// ErrMismatch is returned (wrapped) by callers of Verify that found
// differences; the exit-code table maps it to the integrity code.
var ErrMismatch = errors.New("manifest: the directory differs from the manifest")

// Difference is one way a directory differs from a manifest.
type Difference struct {
	Kind   string // "missing", "unreadable", "changed" or "extra"
	Path   string // the package path
	Detail string // what differs, for "unreadable" and "changed"
}

// String renders d as the line as-manifest verify prints.
func (d Difference) String() string {
	if d.Detail == "" {
		return fmt.Sprintf("%-8s %s", d.Kind, d.Path)
	}
	return fmt.Sprintf("%-8s %s: %s", d.Kind, d.Path, d.Detail)
}

// Verify compares the directory root with m: every file of m must be at its
// path under root with its size and both digests, and root must hold no
// other regular file. root is resolved first (a symbolic link to a
// directory verifies the directory it names). Files are digested jobs at a
// time. It returns the differences — first those of m's files, in m's
// path order, then the extra files, sorted — and an error only when the
// comparison itself could not be made.
func Verify(ctx context.Context, m Manifest, root string, jobs int) ([]Difference, error) {
	resolved, err := filepath.EvalSymlinks(root)
	if err != nil {
		return nil, fmt.Errorf("manifest: verify: root %s: %w", root, err)
	}
	if st, err := os.Stat(resolved); err != nil {
		return nil, fmt.Errorf("manifest: verify: root %s: %w", root, err)
	} else if !st.IsDir() {
		return nil, fmt.Errorf("manifest: verify: root %s is not a directory", root)
	}
	var diffs []Difference
	byPath := make(map[string]int, len(m.Files))
	for i, f := range m.Files {
		byPath[filepath.Join(resolved, filepath.FromSlash(f.Path))] = i
	}
	paths := func(yield func(string) bool) {
		for _, f := range m.Files {
			if !yield(filepath.Join(resolved, filepath.FromSlash(f.Path))) {
				return
			}
		}
	}
	err = scan.Files(ctx, paths, jobs, func(r scan.Result) error {
		f := m.Files[byPath[r.Path]]
		switch {
		case r.Err != nil && errors.Is(r.Err, fs.ErrNotExist):
			diffs = append(diffs, Difference{Kind: "missing", Path: f.Path})
		case r.Err != nil:
			diffs = append(diffs, Difference{Kind: "unreadable", Path: f.Path, Detail: r.Err.Error()})
		case r.Dir:
			diffs = append(diffs, Difference{Kind: "changed", Path: f.Path, Detail: "now a directory"})
		case r.Sum != f.Sum():
			diffs = append(diffs, Difference{Kind: "changed", Path: f.Path,
				Detail: fmt.Sprintf("size %d, %s (manifest: size %d, %s)", r.Sum.Size, r.Sum.BLAKE3, f.Size, f.ContentAddress)})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	var extra []string
	err = filepath.WalkDir(resolved, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		if _, ok := byPath[p]; !ok {
			rel, _ := filepath.Rel(resolved, p)
			extra = append(extra, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("manifest: verify: %w", err)
	}
	slices.Sort(extra)
	for _, p := range extra {
		diffs = append(diffs, Difference{Kind: "extra", Path: p})
	}
	return diffs, nil
}
