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
	"time"

	"github.com/artifactstore/artifact-store/pkg/canonical"
	"github.com/artifactstore/artifact-store/pkg/db"
	"github.com/artifactstore/artifact-store/pkg/db/dbtest"
	"github.com/artifactstore/artifact-store/pkg/events"
	"github.com/artifactstore/artifact-store/pkg/identity"
	"github.com/artifactstore/artifact-store/pkg/ref"
	"pgregory.net/rapid"
)

// TestBulkReplayEqualsOrdinary: on random logs, replay through the bulk
// path (views_bulk.go) and through the ordinary one, statement by
// statement, both rolled back, give the same state digest, or both refuse
// the log. The logs mix the registry's own operations (batches of ingests
// with shared content, replacements, finalisation, tags, retention, holds,
// deletion) with events appended behind its back that the views may not
// accept (ingests into missing, finalised or ended packages, a path twice,
// stored objects, producer events), so that runs of held-back ingests end
// at every kind of event and at errors.
func TestBulkReplayEqualsOrdinary(t *testing.T) {
	for _, dialect := range []db.Dialect{db.SQLite, db.Postgres} {
		t.Run(string(dialect), func(t *testing.T) {
			if dialect == db.Postgres {
				dbtest.PostgresURL(t) // skips without a server
			}
			d := dbtest.Open(t, dialect)
			r := newRegistry(t, d)
			rapid.Check(t, func(rt *rapid.T) {
				emptyStore(rt, d)
				randomLog(rt, r)
				ord, oerr := r.replay(context.Background(), true, newViewWriter())
				bulk, berr := r.replay(context.Background(), true, newReplayWriter(dialect))
				if (oerr == nil) != (berr == nil) {
					rt.Fatalf("ordinary replay: %v; bulk replay: %v", oerr, berr)
				}
				if oerr == nil && (ord.After != bulk.After || ord.Events != bulk.Events) {
					rt.Fatalf("ordinary replay %v (%d events), bulk replay %v (%d events)", ord.After, ord.Events, bulk.After, bulk.Events)
				}
				if oerr == nil && ord.Before == ord.After {
					// The views the registry keeps equal a rebuild whenever
					// nothing was appended behind its back: check that the
					// read-only scratch path agrees too.
					if dialect == db.SQLite {
						ro, err := db.OpenWith(context.Background(), d.URL(), db.Options{ReadOnly: true})
						if err != nil {
							rt.Fatal(err)
						}
						defer ro.Close()
						res, err := New(ro, nil, Options{}).Replay(context.Background(), true)
						if err != nil || res.After != ord.After {
							rt.Fatalf("scratch check: %v, %v; want %v", res.After, err, ord.After)
						}
					}
				}
			})
		})
	}
}

// emptyStore empties the log and its views (a fresh database per case is
// slow on PostgreSQL).
func emptyStore(t fataler, d *db.DB) {
	t.Helper()
	ctx := context.Background()
	for _, v := range eventViews {
		if _, err := d.SQL.ExecContext(ctx, "DELETE FROM "+v); err != nil {
			t.Fatalf("empty %s: %v", v, err)
		}
	}
	if _, err := d.SQL.ExecContext(ctx, "DELETE FROM events"); err != nil {
		t.Fatalf("empty events: %v", err)
	}
	if _, err := d.SQL.ExecContext(ctx, "UPDATE event_head SET seq = 0, hash = $1", make([]byte, 32)); err != nil {
		t.Fatalf("reset event_head: %v", err)
	}
}

// randomLog appends a random mix of registry operations and raw events.
func randomLog(rt *rapid.T, r *Registry) {
	ctx := context.Background()
	pkgs := []ref.Ref{ref.Version("p", "1"), ref.Version("p", "2"), ref.Version("q", "1")}
	paths := []string{"a", "b/c", "d", "e/f/g"}
	bodies := []string{"", "x", "yy", "zzz"}
	steps := rapid.IntRange(1, 30).Draw(rt, "steps")
	for range steps {
		rf := rapid.SampledFrom(pkgs).Draw(rt, "pkg")
		switch rapid.IntRange(0, 11).Draw(rt, "op") {
		case 0:
			r.CreatePackage(ctx, rf, CreateOptions{RetentionClass: rapid.SampledFrom([]string{"", "release"}).Draw(rt, "class")})
		case 1, 2, 3:
			n := rapid.IntRange(1, 6).Draw(rt, "files")
			in := make([]Input, n)
			for i := range in {
				body := rapid.SampledFrom(bodies).Draw(rt, "body")
				in[i] = Input{Path: rapid.SampledFrom(paths).Draw(rt, "path"),
					Open: func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(body)), nil }}
			}
			r.IngestFiles(ctx, rf, in, BatchOptions{Workers: 2, Replace: rapid.Bool().Draw(rt, "replace")})
		case 4:
			body := rapid.SampledFrom(bodies).Draw(rt, "body")
			r.IngestFile(ctx, rf, rapid.SampledFrom(paths).Draw(rt, "path"), bytes.NewReader([]byte(body)), IngestOptions{Replace: rapid.Bool().Draw(rt, "replace")})
		case 5:
			r.FinalizePackage(ctx, rf, FinalizeOptions{})
		case 6:
			r.SetTag(ctx, rf, rapid.SampledFrom([]string{"latest", "stable"}).Draw(rt, "tag"))
		case 7:
			if rapid.Bool().Draw(rt, "place") {
				r.PlaceHold(ctx, rf, "because")
			} else {
				r.SetRetentionClass(ctx, rf, "release")
			}
		case 8:
			r.DeletePackage(ctx, rf, "test")
		case 9, 10:
			// Behind the registry's back: ingests it would have refused
			// or ordered otherwise.
			n := rapid.IntRange(1, 5).Draw(rt, "raw")
			evs := make([]events.Event, 0, n)
			for range n {
				loc := randomLocation(rt)
				var typ string
				var p any
				if rapid.IntRange(0, 3).Draw(rt, "kind") == 0 {
					typ, p = TypeObjectStored, objectStored{Location: loc}
				} else {
					typ, p = TypeFileIngested, fileIngested{Name: rf.Name, Version: rf.Version,
						Path: rapid.SampledFrom(paths).Draw(rt, "path"), Replace: rapid.Bool().Draw(rt, "replace"), Location: loc}
				}
				evs = append(evs, rawEvent(rt, typ, p))
			}
			if _, err := r.Log().Commit(ctx, evs...); err != nil {
				rt.Fatal(err)
			}
		case 11:
			ev := rawEvent(rt, "ci.build", map[string]string{"n": "1"})
			if _, err := r.Log().Commit(ctx, ev); err != nil {
				rt.Fatal(err)
			}
		}
	}
}

func randomLocation(rt *rapid.T) location {
	i := rapid.IntRange(0, 3).Draw(rt, "object")
	b3, err := identity.NewDigest(identity.BLAKE3, bytes.Repeat([]byte{byte(i + 1)}, 32))
	if err != nil {
		rt.Fatal(err)
	}
	s256, err := identity.NewDigest(identity.SHA256, bytes.Repeat([]byte{byte(i + 7)}, 32))
	if err != nil {
		rt.Fatal(err)
	}
	return location{ContentAddress: b3, SHA256: s256, Size: uint64(i * 10),
		BackendID: rapid.SampledFrom([]string{"local", "other"}).Draw(rt, "backend"), Key: fmt.Sprint("k", i)}
}

func rawEvent(rt *rapid.T, typ string, payload any) events.Event {
	b, err := canonical.Marshal(payload)
	if err != nil {
		rt.Fatal(err)
	}
	return events.Event{Type: typ, Actor: "raw", Time: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC), Payload: b}
}

// TestAppendRowEqualsMarshal: the state digest's row encoder writes what
// canonical.Marshal writes for the normalised row, and refuses what it
// refuses.
func TestAppendRowEqualsMarshal(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		n := rapid.IntRange(0, 30).Draw(rt, "cols")
		cols := make([]string, n)
		vals := make([]any, n)
		for i := range vals {
			cols[i] = fmt.Sprint("c", i)
			switch rapid.IntRange(0, 6).Draw(rt, "kind") {
			case 0:
				vals[i] = nil
			case 1:
				vals[i] = rapid.Bool().Draw(rt, "bool")
			case 2:
				vals[i] = rapid.String().Draw(rt, "text")
			case 3:
				vals[i] = string(rapid.SliceOf(rapid.Byte()).Draw(rt, "bytes-as-text"))
			case 4:
				vals[i] = rapid.Int64().Draw(rt, "int")
			case 5:
				vals[i] = rapid.SliceOf(rapid.Byte()).Draw(rt, "bytes")
			case 6:
				vals[i] = rapid.Float64().Draw(rt, "float")
			}
		}
		got, gerr := appendRow([]byte{0xff}, cols, vals)
		row := make([]any, n)
		var werr error
		for i, v := range vals {
			if row[i], werr = rowValue(cols[i], v); werr != nil {
				break
			}
		}
		var want []byte
		if werr == nil {
			want, werr = canonical.Marshal(row)
		}
		if (gerr == nil) != (werr == nil) {
			rt.Fatalf("appendRow error %v, Marshal error %v", gerr, werr)
		}
		if gerr == nil && !bytes.Equal(got, append([]byte{0xff}, want...)) {
			rt.Fatalf("appendRow %x, Marshal %x", got, want)
		}
	})
}

// TestReplayRestoresIndexes: a replay that commits leaves every index as
// the migrations made it (on SQLite the bulk path drops the secondary
// indexes of the tables it fills and creates them again at the end), and
// the views equal a rebuild.
func TestReplayRestoresIndexes(t *testing.T) {
	for _, dialect := range []db.Dialect{db.SQLite, db.Postgres} {
		t.Run(string(dialect), func(t *testing.T) {
			if dialect == db.Postgres {
				dbtest.PostgresURL(t) // skips without a server
			}
			ctx := context.Background()
			d := dbtest.Open(t, dialect)
			r := newRegistry(t, d)
			rf := ref.Version("p", "1")
			if err := r.CreatePackage(ctx, rf, CreateOptions{}); err != nil {
				t.Fatal(err)
			}
			in := make([]Input, 20)
			for i := range in {
				body := fmt.Sprint("body ", i%7)
				in[i] = Input{Path: fmt.Sprintf("d%d/f%d", i%3, i),
					Open: func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(body)), nil }}
			}
			if _, err := r.IngestFiles(ctx, rf, in, BatchOptions{Workers: 2}); err != nil {
				t.Fatal(err)
			}
			before := indexDefinitions(t, d)
			for _, ix := range []string{"artifact_files_content_address", "storage_locations_digest_sha256"} {
				if !slices.ContainsFunc(before, func(s string) bool { return strings.HasPrefix(s, ix+": ") }) {
					t.Fatalf("no index %s before the replay: %q", ix, before)
				}
			}
			if _, err := r.Replay(ctx, false); err != nil {
				t.Fatal(err)
			}
			if after := indexDefinitions(t, d); !slices.Equal(after, before) {
				t.Fatalf("indexes after a replay:\n%q\nwant\n%q", after, before)
			}
			assertReplayIdentical(t, r)

			// A chain broken at its last event aborts the replay after the
			// indexes were dropped and every row written: the views and the
			// indexes stay as they were.
			live, err := r.StateDigest(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := d.SQL.ExecContext(ctx, `UPDATE events SET hash = $1 WHERE seq = (SELECT MAX(seq) FROM events)`, make([]byte, 32)); err != nil {
				t.Fatal(err)
			}
			if _, err := r.Replay(ctx, false); !errors.Is(err, events.ErrChainBroken) {
				t.Fatalf("replay of a broken chain: %v, want ErrChainBroken", err)
			}
			if after := indexDefinitions(t, d); !slices.Equal(after, before) {
				t.Fatalf("indexes after a refused replay:\n%q\nwant\n%q", after, before)
			}
			if now, err := r.StateDigest(ctx); err != nil || now != live {
				t.Fatalf("views after a refused replay: %v, %v; want %v", now, err, live)
			}
		})
	}
}

// indexDefinitions lists every index of d's schema as "name: definition".
func indexDefinitions(t *testing.T, d *db.DB) []string {
	t.Helper()
	q := `SELECT name || ': ' || sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL ORDER BY name`
	if d.Dialect() == db.Postgres {
		q = `SELECT indexname || ': ' || indexdef FROM pg_indexes WHERE schemaname = current_schema() ORDER BY indexname`
	}
	rows, err := d.SQL.QueryContext(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var defs []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		defs = append(defs, s)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return defs
}

// TestCheckSnapshotWhileWritten: a writer that commits while
// as-replay --check reads a read-only store does not make the check
// compare the views of one moment with a rebuild of another's log. The
// "before" digest taken on a connection of its own sees the new head and
// is dropped for one taken in the check's own snapshot.
func TestCheckSnapshotWhileWritten(t *testing.T) {
	ctx := context.Background()
	d := dbtest.Open(t, db.SQLite)
	w := newRegistry(t, d)
	if err := w.CreatePackage(ctx, ref.Version("p", "1"), CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	ro, err := db.OpenWith(ctx, d.URL(), db.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	r := New(ro, nil, Options{})
	moved := false
	r.gc = &gcHooks{at: func(point string) {
		if point != "replay.aside" || moved {
			return
		}
		moved = true
		if err := w.CreatePackage(ctx, ref.Version("q", "1"), CreateOptions{}); err != nil {
			t.Error(err)
		}
	}}
	res, err := r.Replay(ctx, true)
	if err != nil {
		t.Fatal(err)
	}
	if !moved {
		t.Fatal("the hook did not run")
	}
	if res.Events != 1 || res.Before != res.After {
		t.Fatalf("check while written: %d events, views %v, rebuild %v; want 1 event and equal digests", res.Events, res.Before, res.After)
	}
	res, err = r.Replay(ctx, true)
	if err != nil || res.Events != 2 || res.Before != res.After {
		t.Fatalf("check after the write: %d events, views %v, rebuild %v, %v", res.Events, res.Before, res.After, err)
	}
}

// TestReplayFewConnections: a database limited to one connection has none
// for the "before" digest to read on beside the rebuild; the replay takes
// it in its own transaction instead of waiting for a second. With two, the
// digest has its own but the log is read in the replay's transaction (no
// third for a read beside it); with three, both are beside it.
func TestReplayFewConnections(t *testing.T) {
	ctx := context.Background()
	d := dbtest.Open(t, db.SQLite)
	r := newRegistry(t, d)
	rf := ref.Version("p", "1")
	if err := r.CreatePackage(ctx, rf, CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.IngestFiles(ctx, rf, []Input{{Path: "a",
		Open: func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader("a")), nil }}}, BatchOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{1, 2, 3} {
		d.SQL.SetMaxOpenConns(n)
		assertReplayIdentical(t, r)
	}
}
