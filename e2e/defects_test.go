package e2e

// Regression tests for the defects of issue 14, each through the built
// tools as the defect was seen. Each test fails on the code the issue
// describes.

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/artifactstore/artifact-store/internal/tooltest"
	"github.com/artifactstore/artifact-store/pkg/db"
	"github.com/artifactstore/artifact-store/pkg/db/dbtest"
)

// storeEnv is the environment of a throwaway store in dir.
func storeEnv(dir string) []string {
	return []string{
		"ARTIFACTSTORE_DATABASE_URL=sqlite:" + filepath.Join(dir, "s.db"),
		"ARTIFACTSTORE_STORAGE_LOCAL_ROOT=" + filepath.Join(dir, "objects"),
		"ARTIFACTSTORE_ACTOR=e2e",
	}
}

// TestMigrateRefusesNewerSchema (issue 14 item 8): as-events migrate on a
// schema migrated by a newer release exits 6, like every other tool,
// instead of printing the version and exiting 0.
func TestMigrateRefusesNewerSchema(t *testing.T) {
	for _, d := range []db.Dialect{db.SQLite, db.Postgres} {
		t.Run(string(d), func(t *testing.T) {
			u := dbtest.URL(t, d)
			env := []string{"ARTIFACTSTORE_DATABASE_URL=" + u}
			if r := tooltest.Run(t, "", nil, env, "as-events", "migrate"); r.Code != 0 {
				t.Fatalf("first migrate: exit %d: %s", r.Code, r.Stderr)
			}
			ctx := context.Background()
			conn, err := db.Open(ctx, u)
			if err != nil {
				t.Fatal(err)
			}
			_, err = conn.SQL.ExecContext(ctx, `INSERT INTO goose_db_version (version_id, is_applied) VALUES (99999, true)`)
			conn.Close()
			if err != nil {
				t.Fatal(err)
			}
			for _, args := range [][]string{{"migrate"}, {"migrate", "--fresh"}, {"head"}} {
				r := tooltest.Run(t, "", nil, env, "as-events", args...)
				if r.Code != 6 || !strings.Contains(string(r.Stderr), "newer than this program") {
					t.Errorf("as-events %v on a newer schema: exit %d, stderr %q; want exit 6 naming the newer schema", args, r.Code, r.Stderr)
				}
			}
		})
	}
}

// TestSQLiteURLHostRefused (issue 14 item 10): sqlite://localhost/tmp/x.db
// is refused (a host part), instead of creating ./localhost/tmp/x.db.
func TestSQLiteURLHostRefused(t *testing.T) {
	dir := t.TempDir()
	abs := filepath.Join(dir, "abs.db")
	for _, u := range []string{"sqlite://localhost" + abs, "sqlite://x.db"} {
		r := tooltest.Run(t, dir, nil, []string{"ARTIFACTSTORE_DATABASE_URL=" + u}, "as-events", "head", "--json")
		if r.Code == 0 || !strings.Contains(string(r.Stderr), "host") {
			t.Errorf("%s: exit %d, stderr %q; want a refusal naming the host part", u, r.Code, r.Stderr)
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("a refused URL created %v in the working directory", entries)
	}
	// The absolute form still works.
	if r := tooltest.Run(t, dir, nil, []string{"ARTIFACTSTORE_DATABASE_URL=sqlite://" + abs}, "as-events", "head", "--json"); r.Code != 0 {
		t.Errorf("sqlite://%s: exit %d: %s", abs, r.Code, r.Stderr)
	}
}
