package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/artifactstore/artifact-store/internal/tooltest"
	"github.com/artifactstore/artifact-store/pkg/db"
)

// TestRestoredCopyCheck (issue 21): OPERATOR.md's "check a restored copy"
// recipe catches missing objects. On an intact copy every step passes; after
// one fan-out directory of objects is deleted, as-events verify and
// as-replay --check still pass (they read the log and the views only) but
// as-scrub --presence and the full as-scrub exit 4 naming the missing
// object.
func TestRestoredCopyCheck(t *testing.T) {
	sqlite3 := tooltest.RequirePeer(t, "sqlite3") // the backup recipe's tool
	e := newEnv(t, db.SQLite)
	src := t.TempDir()
	for i := range 40 {
		os.WriteFile(filepath.Join(src, "f"+string(rune('a'+i%26))+string(rune('a'+i/26))), []byte(strings.Repeat("x", i+1)), 0o644)
	}
	e.ok(`as-digest ` + src + ` | as-put --package app@1.2.3 --root ` + src + ` --finalize > /dev/null`)
	backup := t.TempDir()
	store := strings.TrimPrefix(e.dbURL, "sqlite:")
	e.ok(sqlite3 + ` ` + store + ` ".backup '` + backup + `/store.db'" && cp -a ` + e.root + ` ` + backup + `/objects`)
	recipe := func() []int {
		var codes []int
		for _, c := range []string{
			"as-events --db sqlite:" + backup + "/store.db verify",
			"as-replay --db sqlite:" + backup + "/store.db --storage-root " + backup + "/objects --check",
			"as-scrub --db sqlite:" + backup + "/store.db --storage-root " + backup + "/objects --presence --json",
			"as-scrub --db sqlite:" + backup + "/store.db --storage-root " + backup + "/objects --json",
		} {
			_, code := e.sh(c)
			codes = append(codes, code)
		}
		return codes
	}
	if got := recipe(); got[0]+got[1]+got[2]+got[3] != 0 {
		t.Fatalf("intact copy: exit codes %v, want all 0", got)
	}
	// Delete one fan-out directory of objects in the copy.
	var fan string
	objects := filepath.Join(backup, "objects")
	filepath.WalkDir(objects, func(p string, d os.DirEntry, err error) error {
		if rel, _ := filepath.Rel(objects, p); err == nil && !d.IsDir() && fan == "" && !strings.HasPrefix(rel, "tmp"+string(filepath.Separator)) {
			fan = filepath.Dir(p)
		}
		return nil
	})
	if fan == "" {
		t.Fatal("no object in the copy")
	}
	os.RemoveAll(fan)
	got := recipe()
	if got[0] != 0 || got[1] != 0 {
		t.Errorf("log and views checks: exit %v; they check no objects and should pass", got[:2])
	}
	if got[2] != 4 || got[3] != 4 {
		t.Fatalf("after deleting %s: as-scrub --presence exit %d, as-scrub exit %d; want 4 and 4", fan, got[2], got[3])
	}
	out, _ := e.sh("as-scrub --db sqlite:" + backup + "/store.db --storage-root " + backup + "/objects --presence --json")
	if !strings.Contains(out, "missing") {
		t.Errorf("as-scrub --presence does not name the missing object:\n%s", out)
	}
}
