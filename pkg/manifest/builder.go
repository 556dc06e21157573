package manifest

import (
	"fmt"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/artifactstore/artifact-store/pkg/records"
)

// Builder turns file records, as as-digest writes them, into a Manifest.
// It adds nothing of its own: no clock, host name or randomness, so the
// same records and declarations give the same manifest on any machine, in
// any order, on any day.
//
// Record paths are made relative to Root by Relativize. With Root empty,
// the root is the deepest directory that contains every file (for
// 'find dist -type f', normally "dist"); a tree whose files all sit in one
// subdirectory then loses that subdirectory's name, so scripts should give
// Root.
type Builder struct {
	Root       string
	Package    Package
	Receipts   []Receipt // sorted by Manifest
	Retention  Retention
	Provenance Provenance

	// chunks hold the records in order, in fixed-size chunks so that a
	// large build never copies what it already holds.
	chunks [][]records.File
	n      int
}

const chunkSize = 4096

// Add adds one file record. It checks the record's shape (digests, size);
// paths are checked by Manifest, once the root is known.
func (b *Builder) Add(f records.File) error {
	if err := f.Validate(); err != nil {
		return fmt.Errorf("record %d: %w", b.n+1, err)
	}
	if len(b.chunks) == 0 || len(b.chunks[len(b.chunks)-1]) == chunkSize {
		b.chunks = append(b.chunks, make([]records.File, 0, chunkSize))
	}
	last := &b.chunks[len(b.chunks)-1]
	*last = append(*last, f)
	b.n++
	return nil
}

// Len returns the number of records added.
func (b *Builder) Len() int { return b.n }

// record returns the i'th record added (0-based).
func (b *Builder) record(i int) *records.File { return &b.chunks[i/chunkSize][i%chunkSize] }

// Manifest returns the manifest of the records added so far: paths made
// relative to the root and checked as package paths, files sorted, every
// rule of Validate met. Errors about a file name its record (1-based, in
// the order added).
func (b *Builder) Manifest() (Manifest, error) {
	// Sort small (path, index) pairs rather than whole records.
	type entry struct {
		path  string
		index int // into the records
	}
	paths := make([]string, b.n)
	for i := range paths {
		paths[i] = b.record(i).Path
	}
	rel, _, err := Relativize(b.Root, paths)
	if err != nil {
		return Manifest{}, err
	}
	es := make([]entry, b.n)
	for i, p := range rel {
		es[i] = entry{p, i}
	}
	slices.SortFunc(es, func(x, y entry) int { return strings.Compare(x.path, y.path) })
	files := make([]records.File, len(es))
	for i, e := range es {
		if i > 0 && es[i-1].path == e.path {
			return Manifest{}, fmt.Errorf("manifest: records %d and %d: duplicate path %q", min(es[i-1].index, e.index)+1, max(es[i-1].index, e.index)+1, e.path)
		}
		files[i] = *b.record(e.index)
		files[i].Path = e.path
	}
	if file, under, bad := records.FileUnderFile(rel); bad {
		return Manifest{}, fmt.Errorf("manifest: %q is a file and also a directory of %q (a package cannot hold both)", file, under)
	}
	rs := slices.Clone(b.Receipts)
	SortReceipts(rs)
	m := Manifest{
		Package:         b.Package,
		Files:           files,
		StorageReceipts: rs,
		Retention:       b.Retention,
		Provenance:      b.Provenance,
	}
	if len(m.Files) == 0 {
		m.Files = nil
	}
	if len(m.StorageReceipts) == 0 {
		m.StorageReceipts = nil
	}
	if err := m.Validate(); err != nil {
		return Manifest{}, err
	}
	return m, nil
}

// cleanPath cleans p lexically as a '/'-separated path; "" stays "".
func cleanPath(p string) string {
	if p == "" {
		return ""
	}
	return path.Clean(filepath.ToSlash(p))
}

// commonDirOf returns the deepest directory containing every one of the
// cleaned paths: "." when there is none in common (or no paths), "/" for
// absolute paths sharing only the root.
func commonDirOf(paths []string) string {
	if len(paths) == 0 {
		return "."
	}
	common := path.Dir(paths[0])
	for _, p := range paths[1:] {
		for common != "." && !isUnder(p, common) {
			if common == "/" {
				return "."
			}
			common = path.Dir(common)
		}
		if common == "." {
			break
		}
	}
	return common
}

// isUnder reports whether the cleaned path p lies strictly below dir.
func isUnder(p, dir string) bool {
	if dir == "/" {
		return len(p) > 1 && p[0] == '/'
	}
	return len(p) > len(dir) && p[len(dir)] == '/' && p[:len(dir)] == dir
}

// relative returns p relative to root (both cleaned).
func relative(root, p string) (string, error) {
	if root == "." {
		return p, nil
	}
	if !isUnder(p, root) {
		return "", fmt.Errorf("not under the root %q", root)
	}
	if root == "/" {
		return p[1:], nil
	}
	return p[len(root)+1:], nil
}
