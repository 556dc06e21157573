package manifest

import (
	"testing"

	"github.com/artifactstore/artifact-store/pkg/records"
)

// FuzzRelativize: whatever paths and root come in, Relativize either
// refuses them or returns package paths that pass records.CheckPath.
func FuzzRelativize(f *testing.F) {
	f.Add("", "a/b", "a/c")
	f.Add("/r", "/r/x", "/r/../etc/passwd")
	f.Add("", "../x", "./y")
	f.Add("r", "r//a\x00", "r/\xff")
	f.Fuzz(func(t *testing.T, root, p1, p2 string) {
		rel, _, err := Relativize(root, []string{p1, p2})
		if err != nil {
			return
		}
		for _, p := range rel {
			if err := records.CheckPath(p); err != nil {
				t.Fatalf("Relativize(%q, %q, %q) gave %q: %v", root, p1, p2, p, err)
			}
		}
	})
}
