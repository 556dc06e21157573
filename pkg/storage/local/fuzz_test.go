package local

import (
	"path"
	"strconv"
	"strings"
	"testing"
)

// FuzzTempPID: the temp-name parser that decides which files CleanStale may
// remove never panics, accepts only positive pids, and reads back the pid
// of every name tempName makes.
func FuzzTempPID(f *testing.F) {
	for _, s := range []string{"123-00aa.tmp", "0-x", "-1-x", "junk", "999999999999999999999-x", "+5-x", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		pid, ok := tempPID(name)
		if ok {
			if pid <= 0 {
				t.Fatalf("tempPID(%q) = %d, accepted", name, pid)
			}
			p, _, _ := strings.Cut(name, "-")
			if n, err := strconv.Atoi(p); err != nil || n != pid || strings.Trim(p, "0123456789") != "" {
				t.Fatalf("tempPID(%q) = %d", name, pid)
			}
		}
		if len(name) > 0 && name[0] >= '1' && name[0] <= '9' {
			n := int(name[0] - '0')
			if got, ok := tempPID(path.Base(tempName(n))); !ok || got != n {
				t.Fatalf("tempName(%d) reads back as %d, %v", n, got, ok)
			}
		}
	})
}
