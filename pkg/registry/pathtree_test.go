package registry

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/artifactstore/artifact-store/pkg/db"
	"github.com/artifactstore/artifact-store/pkg/db/dbtest"
	"github.com/artifactstore/artifact-store/pkg/records"
	"github.com/artifactstore/artifact-store/pkg/ref"
	"pgregory.net/rapid"
)

// TestFileUnderFileRefused (issue 14 item 6): a package never holds both
// "x" and "x/y" — not in one batch, not across ingests in either order —
// and a refused ingest stores nothing.
func TestFileUnderFileRefused(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		r := newRegistry(t, d)
		input := func(p string) Input {
			b := []byte("bytes of " + p)
			s := sumOf(b)
			return Input{Path: p, Expect: &s, Open: func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }}
		}
		ingest := func(pkg ref.Ref, paths ...string) error {
			var in []Input
			for _, p := range paths {
				in = append(in, input(p))
			}
			_, err := r.IngestFiles(ctx, pkg, in, BatchOptions{Workers: 2})
			return err
		}
		for _, tc := range []struct {
			name         string
			first, then  []string
			want, stored []string
		}{
			{"one batch", nil, []string{"a", "x", "x/y"}, []string{`"x" and "x/y"`}, nil},
			{"file then below", []string{"x", "x-1"}, []string{"b", "x/y/z"}, []string{`holds the file "x"`, `"x/y/z"`}, []string{"x", "x-1"}},
			{"below then file", []string{"x/y/z", "x0"}, []string{"b", "x/y"}, []string{`holds "x/y/z"`, `"x/y" cannot be added`}, []string{"x/y/z", "x0"}},
			{"siblings fine", []string{"x/y", "x-"}, []string{"x/z", "x.y", "xy"}, nil, []string{"x-", "x.y", "x/y", "x/z", "xy"}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				pkg := ref.Version("tree", strings.ReplaceAll(tc.name, " ", "-"))
				if err := r.CreatePackage(ctx, pkg, CreateOptions{}); err != nil {
					t.Fatal(err)
				}
				if tc.first != nil {
					if err := ingest(pkg, tc.first...); err != nil {
						t.Fatal(err)
					}
				}
				err := ingest(pkg, tc.then...)
				if tc.want == nil {
					if err != nil {
						t.Fatalf("ingest %q: %v", tc.then, err)
					}
				} else {
					if !errors.Is(err, ErrConflict) {
						t.Fatalf("ingest %q after %q: %v, want ErrConflict", tc.then, tc.first, err)
					}
					for _, w := range tc.want {
						if !strings.Contains(err.Error(), w) {
							t.Errorf("error %q does not name %s", err, w)
						}
					}
				}
				fs, err := r.Files(ctx, pkg)
				if err != nil {
					t.Fatal(err)
				}
				var got []string
				for _, f := range fs {
					got = append(got, f.Path)
				}
				slices.Sort(got)
				if !slices.Equal(got, tc.stored) {
					t.Errorf("package holds %q, want %q", got, tc.stored)
				}
				if tc.want == nil {
					if _, err := r.FinalizePackage(ctx, pkg, FinalizeOptions{}); err != nil {
						t.Errorf("finalize: %v", err)
					}
				}
			})
		}
	})
}

// TestPathLookupsAnyPath: lookupFiles and filesBelow (which on SQLite pass
// their paths as one JSON list) find exactly the stored paths, whatever
// characters the paths hold: JSON's escapes (quote, control characters,
// <, >, &, U+2028), non-ASCII runes, and paths of every length.
func TestPathLookupsAnyPath(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		r := newRegistry(t, d)
		runes := []rune{'a', '0', '-', '.', '"', '<', '>', '&', '\t', '\n', '\x01', '\x1f', '\x7f', 'é', '\u2028', '😀', ' '}
		segment := rapid.Custom(func(t *rapid.T) string {
			s := string(rapid.SliceOfN(rapid.SampledFrom(runes), 1, 3).Draw(t, "seg"))
			if s == "." || s == ".." {
				s += "a"
			}
			return s
		})
		path := rapid.Custom(func(t *rapid.T) string {
			return strings.Join(rapid.SliceOfN(segment, 1, 3).Draw(t, "segs"), "/")
		})
		if _, err := filesBelow(ctx, d.SQL, d.Dialect(), ref.Version("none", "1"), nil); err != nil {
			t.Fatalf("filesBelow of no paths: %v", err)
		}
		n := 0
		rapid.Check(t, func(rt *rapid.T) {
			stored := rapid.SliceOfNDistinct(path, 1, 12, func(s string) string { return s }).Draw(rt, "stored")
			if _, _, bad := records.FileUnderFile(stored); bad {
				rt.Skip("stored paths contradict each other")
			}
			queries := append(rapid.SliceOfN(path, 0, 12).Draw(rt, "queries"), stored[:len(stored)/2]...)
			for _, p := range stored {
				queries = append(queries, records.Ancestors(p)...)
			}
			n++
			pkg := ref.Version("any", fmt.Sprintf("v%d", n))
			if err := r.CreatePackage(ctx, pkg, CreateOptions{}); err != nil {
				rt.Fatal(err)
			}
			var in []Input
			for _, p := range stored {
				b := []byte("bytes of " + p)
				s := sumOf(b)
				in = append(in, Input{Path: p, Expect: &s, Open: func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }})
			}
			if _, err := r.IngestFiles(ctx, pkg, in, BatchOptions{Workers: 2}); err != nil {
				rt.Fatal(err)
			}
			have, err := lookupFiles(ctx, d.SQL, d.Dialect(), pkg, queries)
			if err != nil {
				rt.Fatal(err)
			}
			below, err := filesBelow(ctx, d.SQL, d.Dialect(), pkg, queries)
			if err != nil {
				rt.Fatal(err)
			}
			for _, q := range queries {
				_, got := have[q]
				if want := slices.Contains(stored, q); got != want {
					rt.Errorf("lookupFiles(%q): found %v, want %v", q, got, want)
				}
				b, got := below[q]
				want := slices.ContainsFunc(stored, func(s string) bool { return strings.HasPrefix(s, q+"/") })
				if got != want || got && !strings.HasPrefix(b, q+"/") {
					rt.Errorf("filesBelow(%q) = %q, %v; want a file below it: %v", q, b, got, want)
				}
			}
			for p, f := range have {
				if f.Path != p {
					rt.Errorf("lookupFiles keyed %q holds the file %q", p, f.Path)
				}
			}
		})
	})
}
