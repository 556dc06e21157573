package health_test

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/artifactstore/artifact-store/pkg/db"
	"github.com/artifactstore/artifact-store/pkg/db/dbtest"
	"github.com/artifactstore/artifact-store/pkg/events"
	"github.com/artifactstore/artifact-store/pkg/health"
	"github.com/artifactstore/artifact-store/pkg/storage"
	"github.com/artifactstore/artifact-store/pkg/storage/local"
	"github.com/jackc/pgx/v5"
)

// localBackend opens a local backend on a fresh root and returns it with
// its root directory.
func localBackend(t *testing.T) (*local.Backend, string) {
	t.Helper()
	root := filepath.Join(t.TempDir(), "objects")
	b, err := local.Open(root, local.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b, root
}

// get serves one request through the handler and decodes the report.
func get(t *testing.T, c *health.Checker) (int, health.Report, map[string]any) {
	t.Helper()
	rec := httptest.NewRecorder()
	c.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/health", nil))
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	var rep health.Report
	if err := json.Unmarshal(rec.Body.Bytes(), &rep); err != nil {
		t.Fatalf("decoding %s: %v", rec.Body, err)
	}
	var raw map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &raw); err != nil {
		t.Fatal(err)
	}
	return rec.Code, rep, raw
}

// field walks a decoded JSON document by keys.
func field(t *testing.T, m map[string]any, keys ...string) any {
	t.Helper()
	var v any = m
	for _, k := range keys {
		mm, ok := v.(map[string]any)
		if !ok {
			t.Fatalf("%v: not an object at %q", keys, k)
		}
		if v, ok = mm[k]; !ok {
			t.Fatalf("%v: no field %q", keys, k)
		}
	}
	return v
}

func checker(d health.Database, backends map[string]health.BackendProber) *health.Checker {
	return health.New(health.Options{Database: d, Backends: backends, Version: "test", Timeout: 5 * time.Second})
}

func TestHealthy(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		if _, err := events.New(d).Commit(ctx, events.Event{Type: "ci.job-finished", Actor: "t", Time: time.Now(), Payload: []byte{0xa0}}); err != nil {
			t.Fatal(err)
		}
		b, root := localBackend(t)
		code, rep, raw := get(t, checker(health.FromDB(d), map[string]health.BackendProber{"local": b}))
		if code != http.StatusOK || rep.Status != "ok" {
			t.Fatalf("code %d, report %+v", code, rep)
		}
		st, err := d.SchemaStatus(ctx)
		if err != nil {
			t.Fatal(err)
		}
		dc := rep.Checks.Database
		if !dc.OK || dc.RTTMillis == nil || dc.SchemaVersion != st.Latest || dc.LatestVersion != st.Latest || dc.MigrationsPending || dc.Dialect != string(d.Dialect()) {
			t.Errorf("database check %+v", dc)
		}
		if el := rep.Checks.EventLog; !el.OK || el.HeadSeq != 1 || !strings.HasPrefix(el.HeadHash, "blake3:") {
			t.Errorf("event_log check %+v", el)
		}
		bc := rep.Checks.Backends["local"]
		if !bc.OK || !bc.Reachable || bc.TotalBytes <= 0 || bc.FreeBytes < 0 || !strings.Contains(bc.Detail, root) {
			t.Errorf("backend check %+v", bc)
		}
		if r := rep.Checks.Registry; !r.OK || r.Version != "test" || r.Backends != 1 {
			t.Errorf("registry check %+v", r)
		}
		// The wire names the issue promises.
		for _, path := range [][]string{
			{"checks", "database", "rtt_ms"}, {"checks", "database", "schema_version"},
			{"checks", "database", "latest_version"}, {"checks", "database", "migrations_pending"},
			{"checks", "event_log", "head_seq"}, {"checks", "event_log", "head_hash"},
			{"checks", "backends", "local", "reachable"}, {"checks", "backends", "local", "free_bytes"},
			{"checks", "backends", "local", "total_bytes"}, {"checks", "registry", "ok"}, {"time"},
		} {
			field(t, raw, path...)
		}
		if _, err := time.Parse(time.RFC3339, field(t, raw, "time").(string)); err != nil {
			t.Errorf("time: %v", err)
		}
	})
}

func TestLazySQLiteDefault(t *testing.T) {
	u := "sqlite:" + filepath.Join(t.TempDir(), "data", "store.db")
	b, _ := localBackend(t)
	// Opened as a check opens it, a missing store is a failure, and stays
	// missing: a health check never creates one.
	ro := lazy(u, db.Options{})
	defer ro.Close()
	wantFail(t, checker(ro, map[string]health.BackendProber{"local": b}), "fail", "database", "event_log")
	if _, err := os.Stat(mustPath(t, u)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the health check created the database: %v", err)
	}
	l := lazy(u, db.Options{Create: true})
	defer l.Close()
	code, rep, _ := get(t, checker(l, map[string]health.BackendProber{"local": b}))
	if code != http.StatusOK || !rep.Checks.Database.OK || rep.Checks.Database.SchemaVersion == 0 {
		t.Fatalf("code %d, report %+v", code, rep)
	}
}

// lazy is a LazyDB over url opened with o.
func lazy(url string, o db.Options) *health.LazyDB {
	d, _ := db.DialectOf(url)
	return health.Lazy(func(ctx context.Context) (*db.DB, error) { return db.OpenWith(ctx, url, o) }, string(d))
}

// wantFail asserts a 503 whose failing checks are exactly names.
func wantFail(t *testing.T, c *health.Checker, status string, names ...string) health.Report {
	t.Helper()
	code, rep, _ := get(t, c)
	if code != http.StatusServiceUnavailable || rep.Status != status {
		t.Fatalf("code %d status %q, want 503 %q; report %+v", code, rep.Status, status, rep)
	}
	if got := strings.Join(rep.Failing(), ","); got != strings.Join(names, ",") {
		t.Errorf("failing %q, want %q; report %+v", got, strings.Join(names, ","), rep)
	}
	return rep
}

func TestDatabaseGone(t *testing.T) {
	t.Run("sqlite_closed", func(t *testing.T) {
		d := dbtest.SQLite(t)
		b, _ := localBackend(t)
		d.Close()
		rep := wantFail(t, checker(health.FromDB(d), map[string]health.BackendProber{"local": b}), "fail", "database", "event_log")
		if !strings.Contains(rep.Checks.Database.Error, "closed") || rep.Checks.Database.RTTMillis != nil {
			t.Errorf("database check %+v", rep.Checks.Database)
		}
	})
	t.Run("postgres_dropped", func(t *testing.T) {
		u := dbtest.PostgresURL(t)
		ctx := context.Background()
		d, err := db.Open(ctx, u)
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		if err := d.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
		b, _ := localBackend(t)
		c := checker(health.FromDB(d), map[string]health.BackendProber{"local": b})
		if code, rep, _ := get(t, c); code != http.StatusOK {
			t.Fatalf("before the drop: %d %+v", code, rep)
		}
		admin, err := pgx.Connect(ctx, os.Getenv(dbtest.EnvURL))
		if err != nil {
			t.Fatal(err)
		}
		defer admin.Close(ctx)
		name := strings.TrimPrefix(mustPath(t, u), "/")
		if _, err := admin.Exec(ctx, "DROP DATABASE "+name+" WITH (FORCE)"); err != nil {
			t.Fatal(err)
		}
		wantFail(t, c, "fail", "database", "event_log")
	})
	t.Run("postgres_unreachable", func(t *testing.T) {
		l := lazy("postgres://as@127.0.0.1:1/nothing?sslmode=disable&connect_timeout=1", db.Options{})
		defer l.Close()
		b, _ := localBackend(t)
		rep := wantFail(t, checker(l, map[string]health.BackendProber{"local": b}), "fail", "database", "event_log")
		if rep.Checks.Database.Dialect != "postgres" || rep.Checks.Database.Error == "" {
			t.Errorf("database check %+v", rep.Checks.Database)
		}
	})
}

func mustPath(t *testing.T, raw string) string {
	t.Helper()
	i := strings.Index(raw, "://")
	rest := raw[i+3:]
	j := strings.Index(rest, "/")
	p := rest[j:]
	if k := strings.IndexByte(p, '?'); k >= 0 {
		p = p[:k]
	}
	return p
}

func TestBackendRootGone(t *testing.T) {
	for _, tc := range []struct {
		name   string
		break_ func(root string) error
	}{
		{"removed", os.RemoveAll},
		{"replaced_by_file", func(root string) error {
			if err := os.RemoveAll(root); err != nil {
				return err
			}
			return os.WriteFile(root, []byte("not a directory"), 0o644)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := dbtest.SQLite(t)
			b, root := localBackend(t)
			c := checker(health.FromDB(d), map[string]health.BackendProber{"local": b})
			if code, _, _ := get(t, c); code != http.StatusOK {
				t.Fatalf("healthy store: %d", code)
			}
			if err := tc.break_(root); err != nil {
				t.Fatal(err)
			}
			rep := wantFail(t, c, "fail", "backends.local")
			bc := rep.Checks.Backends["local"]
			if bc.Reachable || !strings.Contains(bc.Error, "unreachable") {
				t.Errorf("backend check %+v", bc)
			}
		})
	}
}

func TestSomeBackendsDown(t *testing.T) {
	d := dbtest.SQLite(t)
	good, _ := localBackend(t)
	bad, root := localBackend(t)
	os.RemoveAll(root)
	wantFail(t, checker(health.FromDB(d), map[string]health.BackendProber{"local": good, "spare": bad}), "degraded", "backends.spare")
}

func TestSchemaBehind(t *testing.T) {
	t.Run("postgres_not_migrated", func(t *testing.T) {
		d, err := db.Open(context.Background(), dbtest.PostgresURL(t))
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		b, _ := localBackend(t)
		rep := wantFail(t, checker(health.FromDB(d), map[string]health.BackendProber{"local": b}), "fail", "database", "event_log")
		dc := rep.Checks.Database
		if !dc.MigrationsPending || dc.SchemaVersion != 0 || dc.LatestVersion == 0 || dc.RTTMillis == nil || !strings.Contains(dc.Error, "migrate") {
			t.Errorf("database check %+v", dc)
		}
	})
	// Migrated, then the newest goose version row removed: the schema
	// looks one version behind while the event log still answers.
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		if _, err := d.SQL.ExecContext(ctx, `DELETE FROM goose_db_version WHERE version_id = (SELECT max(version_id) FROM goose_db_version)`); err != nil {
			t.Fatal(err)
		}
		b, _ := localBackend(t)
		rep := wantFail(t, checker(health.FromDB(d), map[string]health.BackendProber{"local": b}), "degraded", "database")
		dc := rep.Checks.Database
		if !dc.MigrationsPending || dc.SchemaVersion != dc.LatestVersion-1 {
			t.Errorf("database check %+v", dc)
		}
	})
}

// blockingDB is a Database whose every call blocks, ignoring its context,
// until release is closed.
type blockingDB struct{ release chan struct{} }

func (b blockingDB) Ping(context.Context) error { <-b.release; return nil }
func (b blockingDB) SchemaStatus(context.Context) (db.SchemaStatus, error) {
	<-b.release
	return db.SchemaStatus{}, nil
}
func (b blockingDB) Head(context.Context) (events.Head, error) {
	<-b.release
	return events.Head{}, nil
}
func (b blockingDB) Dialect() string { return "postgres" }

type proberFunc func(ctx context.Context) (storage.Health, error)

func (f proberFunc) Health(ctx context.Context) (storage.Health, error) { return f(ctx) }

func TestHungProbesTimeOut(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	hungBackend := proberFunc(func(context.Context) (storage.Health, error) {
		<-release
		return storage.Health{Reachable: true}, nil
	})
	const timeout = 300 * time.Millisecond
	c := health.New(health.Options{Database: blockingDB{release}, Backends: map[string]health.BackendProber{"local": hungBackend}, Timeout: timeout})
	t0 := time.Now()
	rep := wantFail(t, c, "fail", "backends.local", "database", "event_log")
	// Concurrent probes: all three time out together, not one after another.
	if el := time.Since(t0); el > 2*timeout {
		t.Errorf("took %s with a %s probe timeout", el, timeout)
	}
	for name, msg := range map[string]string{"database": rep.Checks.Database.Error, "event_log": rep.Checks.EventLog.Error, "backend": rep.Checks.Backends["local"].Error} {
		if !strings.Contains(msg, "timed out after 300ms") {
			t.Errorf("%s error %q", name, msg)
		}
	}
}

// A PostgreSQL "server" that accepts connections and never answers: the
// real driver, really hung.
func TestHungPostgresServer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		var conns []net.Conn
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	}()
	l := lazy("postgres://as@"+ln.Addr().String()+"/as?sslmode=disable", db.Options{})
	defer l.Close()
	b, _ := localBackend(t)
	const timeout = 400 * time.Millisecond
	c := health.New(health.Options{Database: l, Backends: map[string]health.BackendProber{"local": b}, Timeout: timeout})
	t0 := time.Now()
	rep := wantFail(t, c, "fail", "database", "event_log")
	if el := time.Since(t0); el > 3*timeout {
		t.Errorf("took %s with a %s probe timeout", el, timeout)
	}
	if !strings.Contains(rep.Checks.Database.Error, "timed out") {
		t.Errorf("database error %q", rep.Checks.Database.Error)
	}
}

func TestConcurrentProbes(t *testing.T) {
	d := dbtest.SQLite(t)
	slow := proberFunc(func(ctx context.Context) (storage.Health, error) {
		select {
		case <-time.After(300 * time.Millisecond):
			return storage.Health{Reachable: true, FreeBytes: 1, TotalBytes: 2}, nil
		case <-ctx.Done():
			return storage.Health{}, ctx.Err()
		}
	})
	c := health.New(health.Options{Database: health.FromDB(d), Backends: map[string]health.BackendProber{"a": slow, "b": slow, "c": slow}, Timeout: 2 * time.Second})
	t0 := time.Now()
	code, rep, _ := get(t, c)
	if code != http.StatusOK {
		t.Fatalf("%d %+v", code, rep)
	}
	if el := time.Since(t0); el > 800*time.Millisecond {
		t.Errorf("three 300ms probes took %s: not concurrent", el)
	}
}

func TestMethods(t *testing.T) {
	d := dbtest.SQLite(t)
	b, _ := localBackend(t)
	c := checker(health.FromDB(d), map[string]health.BackendProber{"local": b})
	for _, m := range []string{http.MethodPost, http.MethodPut, http.MethodDelete} {
		rec := httptest.NewRecorder()
		c.ServeHTTP(rec, httptest.NewRequest(m, "/health", strings.NewReader("{}")))
		if rec.Code != http.StatusMethodNotAllowed || rec.Header().Get("Allow") != "GET, HEAD" {
			t.Errorf("%s: %d, Allow %q", m, rec.Code, rec.Header().Get("Allow"))
		}
	}
	rec := httptest.NewRecorder()
	c.ServeHTTP(rec, httptest.NewRequest(http.MethodHead, "/health", nil))
	if rec.Code != http.StatusOK || rec.Body.Len() != 0 {
		t.Errorf("HEAD: %d, body %q", rec.Code, rec.Body)
	}
	os.RemoveAll(b.Root())
	rec = httptest.NewRecorder()
	c.ServeHTTP(rec, httptest.NewRequest(http.MethodHead, "/health", nil))
	if rec.Code != http.StatusServiceUnavailable {
		t.Errorf("HEAD on a broken store: %d", rec.Code)
	}
}

func TestNothingConfigured(t *testing.T) {
	rep := wantFail(t, health.New(health.Options{}), "fail", "backends", "database", "event_log", "registry")
	if !strings.Contains(rep.Checks.Registry.Error, "no database") {
		t.Errorf("registry %+v", rep.Checks.Registry)
	}
}

func TestLiveHook(t *testing.T) {
	d := dbtest.SQLite(t)
	b, _ := localBackend(t)
	c := health.New(health.Options{Database: health.FromDB(d), Backends: map[string]health.BackendProber{"local": b},
		Live: func(context.Context) error { return context.Canceled }})
	rep := wantFail(t, c, "fail", "registry")
	if rep.Checks.Registry.Error == "" {
		t.Errorf("registry %+v", rep.Checks.Registry)
	}
}

// A probe that hangs is not started again by later requests: they wait for
// the run in flight, time out on time, and say so.
func TestHungProbeNotRestarted(t *testing.T) {
	release := make(chan struct{})
	var mu sync.Mutex
	starts := 0
	hung := proberFunc(func(context.Context) (storage.Health, error) {
		mu.Lock()
		starts++
		mu.Unlock()
		<-release
		return storage.Health{Reachable: true}, nil
	})
	d := dbtest.SQLite(t)
	const timeout = 100 * time.Millisecond
	c := health.New(health.Options{Database: health.FromDB(d), Backends: map[string]health.BackendProber{"local": hung}, Timeout: timeout})
	before := runtime.NumGoroutine()
	var last health.Report
	for range 10 {
		t0 := time.Now()
		last = c.Check(context.Background())
		if el := time.Since(t0); el > 3*timeout {
			t.Errorf("check took %s", el)
		}
	}
	if g := runtime.NumGoroutine(); g > before+3 {
		t.Errorf("goroutines grew from %d to %d", before, g)
	}
	mu.Lock()
	if starts != 1 {
		t.Errorf("hung probe started %d times", starts)
	}
	mu.Unlock()
	if e := last.Checks.Backends["local"].Error; !strings.Contains(e, "has not returned") {
		t.Errorf("error %q", e)
	}
	close(release)
	// Once it returns, the next check runs it afresh and passes.
	deadline := time.Now().Add(5 * time.Second)
	for !c.Check(context.Background()).OK() {
		if time.Now().After(deadline) {
			t.Fatal("did not recover after the probe returned")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Concurrent requests share one run of each probe.
func TestConcurrentRequestsShareProbes(t *testing.T) {
	d := dbtest.SQLite(t)
	var n atomic.Int32
	slow := proberFunc(func(ctx context.Context) (storage.Health, error) {
		n.Add(1)
		time.Sleep(200 * time.Millisecond)
		return storage.Health{Reachable: true}, nil
	})
	c := health.New(health.Options{Database: health.FromDB(d), Backends: map[string]health.BackendProber{"local": slow}})
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			if rep := c.Check(context.Background()); !rep.OK() {
				t.Errorf("report %+v", rep)
			}
		})
	}
	wg.Wait()
	if got := n.Load(); got != 1 {
		t.Errorf("8 concurrent checks ran the probe %d times", got)
	}
}

// TestIntegrity: the integrity check is ok with nothing known corrupt and a
// recent verification; a corrupt object, an oldest verification beyond
// MaxVerifyAge, or a failing probe each make the status degraded (never
// fail) and name "integrity".
func TestIntegrity(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		b, _ := localBackend(t)
		now := time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC)
		for _, tc := range []struct {
			name   string
			in     health.Integrity
			err    error
			maxAge time.Duration
			ok     bool
		}{
			{"clean", health.Integrity{Objects: 3, Oldest: now.Add(-time.Hour)}, nil, 24 * time.Hour, true},
			{"no limit", health.Integrity{Objects: 3, Oldest: now.Add(-1000 * time.Hour)}, nil, 0, true},
			{"empty store", health.Integrity{}, nil, time.Hour, true},
			{"corrupt", health.Integrity{Objects: 3, Corrupt: 1, Oldest: now.Add(-time.Hour)}, nil, 0, false},
			{"too old", health.Integrity{Objects: 3, Oldest: now.Add(-25 * time.Hour)}, nil, 24 * time.Hour, false},
			{"probe fails", health.Integrity{}, errors.New("no object_checks table"), 0, false},
		} {
			t.Run(tc.name, func(t *testing.T) {
				c := health.New(health.Options{
					Database: health.FromDB(d), Backends: map[string]health.BackendProber{"local": b},
					Version: "test", Timeout: 5 * time.Second, Now: func() time.Time { return now },
					Integrity:    func(context.Context) (health.Integrity, error) { return tc.in, tc.err },
					MaxVerifyAge: tc.maxAge,
				})
				code, rep, raw := get(t, c)
				ic := rep.Checks.Integrity
				if ic == nil || ic.OK != tc.ok || ic.CorruptObjects != tc.in.Corrupt || ic.Objects != tc.in.Objects {
					t.Fatalf("integrity check %+v", ic)
				}
				field(t, raw, "checks", "integrity", "corrupt_objects")
				wantStatus, wantCode := health.StatusOK, http.StatusOK
				if !tc.ok {
					wantStatus, wantCode = health.StatusDegraded, http.StatusServiceUnavailable
					if ic.Error == "" || !strings.Contains(strings.Join(rep.Failing(), ","), "integrity") {
						t.Errorf("not ok without a reason: %+v, failing %v", ic, rep.Failing())
					}
				}
				if rep.Status != wantStatus || code != wantCode {
					t.Fatalf("status %q code %d, want %q %d", rep.Status, code, wantStatus, wantCode)
				}
			})
		}
	})
}
