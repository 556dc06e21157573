package db_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/artifactstore/artifact-store/pkg/db"
	"github.com/artifactstore/artifact-store/pkg/db/dbtest"
)

// column is one column of the logical schema.
type column struct {
	Name    string
	Family  string // integer, text, bytes, boolean
	NotNull bool
}

type table struct {
	Columns []column
	Key     []string // primary key columns in order
}

func family(t *testing.T, typ string) string {
	switch strings.ToLower(typ) {
	case "integer", "bigint":
		return "integer"
	case "text":
		return "text"
	case "blob", "bytea":
		return "bytes"
	case "boolean":
		return "boolean"
	}
	t.Fatalf("column type %q has no family", typ)
	return ""
}

// logicalSchema reads tables, columns (type families, nullability) and
// primary keys from the catalogue, leaving out goose's version table.
func logicalSchema(t *testing.T, d *db.DB) map[string]table {
	t.Helper()
	ctx := context.Background()
	out := map[string]table{}
	var names []string
	q := `SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'`
	if d.Dialect() == db.SQLite {
		q = `SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'`
	}
	rows, err := d.SQL.QueryContext(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != "goose_db_version" {
			names = append(names, n)
		}
	}
	rows.Close()
	for _, n := range names {
		var tb table
		if d.Dialect() == db.SQLite {
			rows, err := d.SQL.QueryContext(ctx, fmt.Sprintf("SELECT name, type, \"notnull\", pk FROM pragma_table_info('%s') ORDER BY cid", n))
			if err != nil {
				t.Fatal(err)
			}
			pk := map[int]string{}
			for rows.Next() {
				var c column
				var typ string
				var nn, k int
				if err := rows.Scan(&c.Name, &typ, &nn, &k); err != nil {
					t.Fatal(err)
				}
				c.Family, c.NotNull = family(t, typ), nn == 1 || k > 0
				tb.Columns = append(tb.Columns, c)
				if k > 0 {
					pk[k] = c.Name
				}
			}
			rows.Close()
			for i := 1; i <= len(pk); i++ {
				tb.Key = append(tb.Key, pk[i])
			}
		} else {
			rows, err := d.SQL.QueryContext(ctx, `SELECT column_name, data_type, is_nullable FROM information_schema.columns
				WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position`, n)
			if err != nil {
				t.Fatal(err)
			}
			for rows.Next() {
				var c column
				var typ, nullable string
				if err := rows.Scan(&c.Name, &typ, &nullable); err != nil {
					t.Fatal(err)
				}
				c.Family, c.NotNull = family(t, typ), nullable == "NO"
				tb.Columns = append(tb.Columns, c)
			}
			rows.Close()
			rows, err = d.SQL.QueryContext(ctx, `SELECT k.column_name FROM information_schema.table_constraints c
				JOIN information_schema.key_column_usage k ON k.constraint_name = c.constraint_name AND k.table_schema = c.table_schema AND k.table_name = c.table_name
				WHERE c.table_schema = current_schema() AND c.table_name = $1 AND c.constraint_type = 'PRIMARY KEY' ORDER BY k.ordinal_position`, n)
			if err != nil {
				t.Fatal(err)
			}
			for rows.Next() {
				var k string
				if err := rows.Scan(&k); err != nil {
					t.Fatal(err)
				}
				tb.Key = append(tb.Key, k)
			}
			rows.Close()
		}
		out[n] = tb
	}
	return out
}

func TestMigrationsSameLogicalSchema(t *testing.T) {
	ctx := context.Background()
	lite := logicalSchema(t, dbtest.SQLite(t))
	pg := dbtest.Postgres(t)
	pgs := logicalSchema(t, pg)
	want := []string{"artifact_files", "artifact_packages", "event_head", "events", "gc_objects", "metadata_schemas",
		"object_checks", "oci_blobs", "oci_manifests", "oci_tags", "oci_uploads", "package_tags",
		"retention_classes", "retention_state", "storage_locations"}
	for name, s := range map[string]map[string]table{"sqlite": lite, "postgres": pgs} {
		got := slices.Sorted(func(yield func(string) bool) {
			for k := range s {
				if !yield(k) {
					return
				}
			}
		})
		if !slices.Equal(got, want) {
			t.Errorf("%s tables = %v, want %v", name, got, want)
		}
	}
	for n, lt := range lite {
		if pt := pgs[n]; !reflect.DeepEqual(lt, pt) {
			t.Errorf("table %s differs:\n sqlite   %+v\n postgres %+v", n, lt, pt)
		}
	}
	// Every column DESIGN.md §6 names is there.
	has := func(tbl, col string) {
		for _, c := range lite[tbl].Columns {
			if c.Name == col {
				return
			}
		}
		t.Errorf("table %s has no column %s", tbl, col)
	}
	for _, tbl := range []string{"artifact_files", "storage_locations"} {
		for _, c := range []string{"digest_algorithm", "digest_primary", "digest_sha256", "content_address"} {
			has(tbl, c)
		}
	}
	has("storage_locations", "retrieval_tier")
	has("storage_locations", "restore_status")
	has("artifact_packages", "manifest_digest")

	// The five seeded retention classes, alike on both.
	for _, d := range []*db.DB{dbtest.SQLite(t), pg} {
		var n int
		if err := d.SQL.QueryRowContext(ctx, `SELECT count(*) FROM retention_classes`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 5 {
			t.Errorf("%s: %d retention classes, want 5", d.Dialect(), n)
		}
	}
}

func TestSchemaStatusAndFresh(t *testing.T) {
	ctx := context.Background()
	for _, dialect := range []db.Dialect{db.SQLite, db.Postgres} {
		t.Run(string(dialect), func(t *testing.T) {
			d, err := db.Open(ctx, dbtest.URL(t, dialect))
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			st, err := d.SchemaStatus(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if dialect == db.Postgres {
				// PostgreSQL is never migrated implicitly.
				if !st.Pending || st.Current != 0 || st.Latest < 3 {
					t.Fatalf("fresh postgres status = %+v", st)
				}
				if err := d.CheckSchema(ctx); !errors.Is(err, db.ErrSchemaBehind) || !strings.Contains(err.Error(), "as-events migrate") {
					t.Fatalf("CheckSchema = %v, want ErrSchemaBehind naming as-events migrate", err)
				}
				if err := d.Migrate(ctx); err != nil {
					t.Fatal(err)
				}
			}
			if err := d.CheckSchema(ctx); err != nil {
				t.Fatal(err)
			}
			if _, err := d.SQL.ExecContext(ctx, `UPDATE event_head SET seq = 7`); err != nil {
				t.Fatal(err)
			}
			// A package referencing a seeded retention class must not stop
			// a fresh start (the seed's down migration empties the views).
			if _, err := d.SQL.ExecContext(ctx, `INSERT INTO artifact_packages (name, version, retention_class, labels, state, created_seq, updated_seq)
				VALUES ('p', '1', 'standard', $1, 'open', 1, 1)`, []byte{0xa0}); err != nil {
				t.Fatal(err)
			}
			if _, err := d.SQL.ExecContext(ctx, `INSERT INTO retention_state (package_name, package_version, retention_class, hold, updated_seq)
				VALUES ('p', '1', 'standard', FALSE, 1)`); err != nil {
				t.Fatal(err)
			}
			if err := d.MigrateFresh(ctx); err != nil {
				t.Fatal(err)
			}
			var seq int
			if err := d.SQL.QueryRowContext(ctx, `SELECT seq FROM event_head`).Scan(&seq); err != nil || seq != 0 {
				t.Fatalf("after fresh: seq %d, %v", seq, err)
			}
			if err := d.Migrate(ctx); err != nil { // idempotent
				t.Fatal(err)
			}
		})
	}
}

func TestSQLitePragmas(t *testing.T) {
	d := dbtest.SQLite(t)
	ctx := context.Background()
	for pragma, want := range map[string]string{"journal_mode": "wal", "synchronous": "2", "foreign_keys": "1", "busy_timeout": "30000", "cache_size": "-8192"} {
		var got string
		if err := d.SQL.QueryRowContext(ctx, "PRAGMA "+pragma).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Errorf("PRAGMA %s = %s, want %s", pragma, got, want)
		}
	}
}

// TestGrowCache: a replay's transaction gets the 64 MiB page cache, the
// pool's other connections keep 8 MiB.
func TestGrowCache(t *testing.T) {
	d := dbtest.SQLite(t)
	ctx := context.Background()
	tx, err := d.SQL.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if err := d.GrowCache(ctx, tx); err != nil {
		t.Fatal(err)
	}
	var inTx, other int
	if err := tx.QueryRowContext(ctx, "PRAGMA cache_size").Scan(&inTx); err != nil {
		t.Fatal(err)
	}
	if err := d.SQL.QueryRowContext(ctx, "PRAGMA cache_size").Scan(&other); err != nil {
		t.Fatal(err)
	}
	if inTx != -65536 || other != -8192 {
		t.Fatalf("cache_size in the replay's transaction %d, elsewhere %d; want -65536 and -8192", inTx, other)
	}
}

func TestOpenURLs(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	for _, u := range []string{"sqlite:" + filepath.Join(dir, "a", "x.db"), "sqlite://" + filepath.Join(dir, "y.db")} {
		d, err := db.Open(ctx, u)
		if err != nil {
			t.Fatalf("Open(%s): %v", u, err)
		}
		d.Close()
	}
	for _, u := range []string{"", "mysql://x", "sqlite:", "sqlite:x.db?mode=ro", "postgres://%zz"} {
		if _, err := db.Open(ctx, u); !errors.Is(err, db.ErrBadURL) {
			t.Errorf("Open(%q) = %v, want ErrBadURL", u, err)
		}
	}
}

// TestConcurrentFirstOpen: several openers of one new embedded store at
// once (parallel tools in CI) all succeed, and the schema is current.
func TestConcurrentFirstOpen(t *testing.T) {
	url := "sqlite:" + filepath.Join(t.TempDir(), "new.db")
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d, err := db.Open(ctx, url)
			if err == nil {
				err = d.CheckSchema(ctx)
				d.Close()
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("opener %d: %v", i, err)
		}
	}
}

// TestPostgresIdleConnectionTerminated: an idle pooled connection whose
// server process was terminated is not handed to the next query.
func TestPostgresIdleConnectionTerminated(t *testing.T) {
	url := dbtest.URL(t, db.Postgres)
	ctx := t.Context()
	d, err := db.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	admin, err := db.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	var pid int
	if err := d.SQL.QueryRowContext(ctx, "SELECT pg_backend_pid()").Scan(&pid); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.SQL.ExecContext(ctx, "SELECT pg_terminate_backend($1)", pid); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond) // the server ends the process asynchronously
	var got int
	if err := d.SQL.QueryRowContext(ctx, "SELECT pg_backend_pid()").Scan(&got); err != nil || got == pid {
		t.Fatalf("query after the idle connection's backend was terminated: pid %d (was %d), %v", got, pid, err)
	}
}
