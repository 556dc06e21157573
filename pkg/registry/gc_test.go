package registry

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/artifactstore/artifact-store/pkg/config"
	"github.com/artifactstore/artifact-store/pkg/dataplane"
	"github.com/artifactstore/artifact-store/pkg/db"
	"github.com/artifactstore/artifact-store/pkg/db/dbtest"
	"github.com/artifactstore/artifact-store/pkg/identity"
	"github.com/artifactstore/artifact-store/pkg/ref"
	"github.com/artifactstore/artifact-store/pkg/storage"
	"github.com/artifactstore/artifact-store/pkg/storage/s3/s3test"
	"github.com/opencontainers/go-digest"
)

func TestMain(m *testing.M) { os.Exit(s3test.Main(m)) }

// backends are the data planes the GC tests run on: local, and S3 through
// the MinIO that s3test starts (skipped when there is none).
var backends = []struct {
	name string
	open func(t *testing.T) dataplane.DataPlane
}{
	{"local", func(t *testing.T) dataplane.DataPlane {
		dp, closeFn, err := dataplane.OpenLocal("local", t.TempDir(), false)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { closeFn() })
		return dp
	}},
	{"s3", func(t *testing.T) dataplane.DataPlane {
		srv := s3test.Start(t)
		loc := srv.NewBucket(t)
		t.Setenv("AWS_ACCESS_KEY_ID", srv.AccessKey)
		t.Setenv("AWS_SECRET_ACCESS_KEY", srv.SecretKey)
		t.Setenv("AWS_CONFIG_FILE", os.DevNull)
		t.Setenv("AWS_SHARED_CREDENTIALS_FILE", os.DevNull)
		cfg := config.S3{Endpoint: srv.Endpoint, Bucket: loc.Bucket, Prefix: loc.Prefix, Region: srv.Region, PathStyle: true}
		dp, closeFn, err := dataplane.OpenS3(t.Context(), "s3", cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { closeFn() })
		return dp
	}},
}

// eachStore runs f on every database × backend.
func eachStore(t *testing.T, f func(t *testing.T, d *db.DB, dp dataplane.DataPlane)) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			dbtest.Each(t, func(t *testing.T, d *db.DB) { f(t, d, b.open(t)) })
		})
	}
}

// sharedClock is one clock for several registries over one store.
type sharedClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *sharedClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(time.Second)
	return c.t
}

func newClock() *sharedClock { return &sharedClock{t: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)} }

// actor is one side of an interleaving: its hook reports each point it
// reaches and waits there until the scheduler lets it go on.
type actor struct {
	arrive  chan string
	proceed chan struct{}
	done    chan error
	mu      sync.Mutex
	free    bool           // run without pausing (after the schedule is spent)
	seen    map[string]int // points reached, for coverage
}

func newActor() *actor {
	return &actor{arrive: make(chan string), proceed: make(chan struct{}), done: make(chan error, 1)}
}

func (a *actor) hook(point string) {
	a.mu.Lock()
	if a.seen == nil {
		a.seen = map[string]int{}
	}
	a.seen[point]++
	free := a.free
	a.mu.Unlock()
	if free {
		return
	}
	a.arrive <- point
	<-a.proceed
}

// next waits for a's next point; "" when it finished (err its result).
func (a *actor) next() (point string, err error, finished bool) {
	select {
	case p := <-a.arrive:
		return p, nil, false
	case err := <-a.done:
		return "", err, true
	}
}

// interleavings returns every merge of a steps of side 'I' and b of 'S'.
func interleavings(a, b int) []string {
	if a == 0 {
		return []string{strings.Repeat("S", b)}
	}
	if b == 0 {
		return []string{strings.Repeat("I", a)}
	}
	var out []string
	for _, s := range interleavings(a-1, b) {
		out = append(out, "I"+s)
	}
	for _, s := range interleavings(a, b-1) {
		out = append(out, "S"+s)
	}
	return out
}

// runSchedule runs ingest and sweep, pausing each before every step, and
// lets them take their steps in the order of sched ('I' ingest, 'S' sweep).
// An ingest that must wait for a sweep (a tombstone) lets the sweep run to
// its end. Afterwards both run freely to completion.
func runSchedule(t *testing.T, sched string, ingest, sweep func() error, ia, sa *actor) (ingestErr, sweepErr error) {
	go func() { ia.done <- ingest() }()
	go func() { sa.done <- sweep() }()
	type state struct {
		a        *actor
		point    string
		finished bool
		err      error
	}
	sides := map[byte]*state{'I': {a: ia}, 'S': {a: sa}}
	for _, s := range sides {
		s.point, s.err, s.finished = s.a.next()
	}
	release := func(s *state) {
		s.a.proceed <- struct{}{}
		s.point, s.err, s.finished = s.a.next()
	}
	for i := 0; i < len(sched); i++ {
		s := sides[sched[i]]
		if s.finished {
			continue
		}
		release(s)
		// An ingest waiting on a tombstone: the sweep must move first.
		for !sides['I'].finished && sides['I'].point == "ingest.wait" && !sides['S'].finished {
			release(sides['S'])
		}
	}
	for _, k := range []byte{'S', 'I'} {
		s := sides[k]
		s.a.mu.Lock()
		s.a.free = true
		s.a.mu.Unlock()
		for !s.finished {
			release(s)
		}
	}
	return sides['I'].err, sides['S'].err
}

// TestGCInterleavings: an object is condemned; an ingest of the same bytes
// (which finds them present: the backend discards its copy) runs against a
// sweep with grace 0, in every interleaving of the ingest's two steps
// (store, commit) and the sweep's three (tombstone, delete, record). With
// the protocol, every interleaving ends with the ingested file readable
// and hashing right; with the naive protocol (no tombstone, no claim) some
// interleaving commits a reference to deleted bytes — the test must see it.
func TestGCInterleavings(t *testing.T) {
	eachStore(t, func(t *testing.T, d *db.DB, dp dataplane.DataPlane) {
		for _, naive := range []bool{false, true} {
			t.Run(fmt.Sprintf("naive=%v", naive), func(t *testing.T) {
				lost := interleave(t, d, dp, naive)
				switch {
				case naive && len(lost) == 0:
					t.Fatal("the naive protocol lost nothing: the test cannot detect the race")
				case !naive && len(lost) > 0:
					t.Fatalf("live blobs lost in schedules %v", lost)
				}
				t.Logf("naive=%v: %d schedules lost data %v", naive, len(lost), lost)
			})
		}
	})
}

func interleave(t *testing.T, d *db.DB, dp dataplane.DataPlane, naive bool) (lost []string) {
	ctx := context.Background()
	clock := newClock()
	base := New(d, dp, Options{Actor: "test", Now: clock.now})
	mode := "proto"
	if naive {
		mode = "naive"
	}
	waited, restored := 0, 0
	for n, sched := range interleavings(2, 3) {
		content := []byte(fmt.Sprintf("shared content %s %d %s", mode, n, sched))
		sum := sumOf(content)
		// An old package held the bytes, then dropped them (replaced).
		old := ref.Version("old-"+mode, fmt.Sprint(n))
		if err := base.CreatePackage(ctx, old, CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		if _, err := base.IngestFile(ctx, old, "f", bytes.NewReader(content), IngestOptions{}); err != nil {
			t.Fatal(err)
		}
		if _, err := base.IngestFile(ctx, old, "f", strings.NewReader("other "+string(content)), IngestOptions{Replace: true}); err != nil {
			t.Fatal(err)
		}
		if _, err := base.Mark(ctx, GCOptions{}); err != nil {
			t.Fatal(err)
		}
		if st := gcState(t, d, sum.BLAKE3, dp.BackendID()); st != "condemned" {
			t.Fatalf("after mark: state %q", st)
		}
		ia, sa := newActor(), newActor()
		ing := New(d, dp, Options{Actor: "ingest", Now: clock.now})
		ing.gc = &gcHooks{at: ia.hook, naive: naive}
		swp := New(d, dp, Options{Actor: "gc", Now: clock.now})
		swp.gc = &gcHooks{at: sa.hook, naive: naive}
		pkg := ref.Version("new-"+mode, fmt.Sprint(n))
		if err := base.CreatePackage(ctx, pkg, CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		ingErr, swpErr := runSchedule(t, sched, func() error {
			_, err := ing.IngestFiles(ctx, pkg, []Input{{Path: "f", Reopen: true, Open: func() (io.ReadCloser, error) {
				return io.NopCloser(bytes.NewReader(content)), nil
			}}}, BatchOptions{Workers: 1})
			return err
		}, func() error {
			_, err := swp.Sweep(ctx, GCOptions{Grace: 0})
			return err
		}, ia, sa)
		if ia.seen["ingest.wait"] > 0 {
			waited++
		}
		if ia.seen["ingest.store"] > 1 {
			restored++
		}
		if swpErr != nil {
			t.Fatalf("%s: sweep: %v", sched, swpErr)
		}
		if ingErr != nil {
			t.Fatalf("%s: ingest: %v", sched, ingErr)
		}
		rc, f, err := base.GetFile(ctx, pkg, "f", 0, -1)
		if err != nil {
			if errors.Is(err, dataplane.ErrNotFound) {
				lost = append(lost, sched)
				continue
			}
			t.Fatalf("%s: read back: %v", sched, err)
		}
		got, err := io.ReadAll(rc)
		rc.Close()
		if err != nil || !bytes.Equal(got, content) || f.Sum() != sum {
			t.Fatalf("%s: read back %q, %v", sched, got, err)
		}
		if !naive {
			if st := gcState(t, d, sum.BLAKE3, dp.BackendID()); st != "" {
				t.Fatalf("%s: a referenced object has GC state %q", sched, st)
			}
		}
	}
	if !naive {
		// The schedules must reach both hard cases: an ingest that met a
		// tombstone and waited, and one whose bytes were deleted after
		// it found them present and that stored them again.
		if waited == 0 || restored == 0 {
			t.Fatalf("coverage: %d schedules waited on a tombstone, %d stored again; want both > 0", waited, restored)
		}
		t.Logf("%d schedules waited on a tombstone, %d stored the bytes again", waited, restored)
		checkLog(t, base)
	}
	return lost
}

// gcState returns the object's GC state, "" for none.
func gcState(t *testing.T, d *db.DB, addr identity.Digest, backend string) string {
	t.Helper()
	var s string
	err := d.SQL.QueryRow(`SELECT state FROM gc_objects WHERE content_address = $1 AND backend_id = $2`, addr.String(), backend).Scan(&s)
	if err != nil && !strings.Contains(err.Error(), "no rows") {
		t.Fatal(err)
	}
	return s
}

// checkLog: the chain verifies and a replay rebuilds the views exactly.
func checkLog(t *testing.T, r *Registry) {
	t.Helper()
	ctx := context.Background()
	if err := r.Log().Verify(ctx); err != nil {
		t.Fatalf("verify: %v", err)
	}
	res, err := r.Replay(ctx, true)
	if err != nil {
		t.Fatal(err)
	}
	if res.Before != res.After {
		t.Fatalf("replay drift: %s → %s", res.Before, res.After)
	}
}

// TestGCMarkSweep: mark condemns exactly the unreferenced objects and the
// orphans; sweep respects the grace period, deletes their bytes (and only
// theirs), records each deletion; a dry run changes nothing.
func TestGCMarkSweep(t *testing.T) {
	eachStore(t, func(t *testing.T, d *db.DB, dp dataplane.DataPlane) {
		ctx := context.Background()
		clock := newClock()
		r := New(d, dp, Options{Actor: "test", Now: clock.now})
		p := ref.Version("app", "1")
		if err := r.CreatePackage(ctx, p, CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		keep, drop := []byte("kept bytes"), []byte("dropped bytes")
		for _, b := range [][]byte{drop, keep} {
			if _, err := r.IngestFile(ctx, p, "f", bytes.NewReader(b), IngestOptions{Replace: true}); err != nil {
				t.Fatal(err)
			}
		}
		// An orphan: bytes in the backend that no event names.
		orphan := []byte("orphan bytes of a crashed upload")
		if _, err := dp.IngestStream(ctx, bytes.NewReader(orphan), dataplane.IngestOptions{}); err != nil {
			t.Fatal(err)
		}
		head, _ := r.Log().Head(ctx)
		dry, err := r.Mark(ctx, GCOptions{DryRun: true, Orphans: true})
		if err != nil {
			t.Fatal(err)
		}
		if h, _ := r.Log().Head(ctx); h != head || dry.Objects != 2 || dry.Orphans != 1 || dry.Bytes != int64(len(drop)+len(orphan)) {
			t.Fatalf("dry-run mark: %+v, head %d → %d", dry, head.Seq, h.Seq)
		}
		var marked []GCObject
		res, err := r.Mark(ctx, GCOptions{Orphans: true, OnObject: func(o GCObject) { marked = append(marked, o) }})
		if err != nil || res != dry || len(marked) != 2 || marked[0].CondemnedAt.IsZero() {
			t.Fatalf("mark: %+v %v %+v", res, err, marked)
		}
		// Marking again condemns nothing new.
		if again, err := r.Mark(ctx, GCOptions{Orphans: true}); err != nil || again.Objects != 0 {
			t.Fatalf("second mark: %+v %v", again, err)
		}
		// Within the grace period nothing is swept.
		if res, err := r.Sweep(ctx, GCOptions{Grace: time.Hour}); err != nil || res.Objects != 0 {
			t.Fatalf("sweep within grace: %+v %v", res, err)
		}
		if res, err := r.Sweep(ctx, GCOptions{Grace: 0, DryRun: true}); err != nil || res.Objects != 2 {
			t.Fatalf("dry-run sweep: %+v %v", res, err)
		}
		for _, b := range [][]byte{drop, orphan} {
			if _, err := dp.StatObject(ctx, sumOf(b).BLAKE3); err != nil {
				t.Fatalf("a dry run deleted bytes: %v", err)
			}
		}
		res, err = r.Sweep(ctx, GCOptions{Grace: 0})
		if err != nil || res.Objects != 2 || res.Bytes != int64(len(drop)+len(orphan)) {
			t.Fatalf("sweep: %+v %v", res, err)
		}
		for _, b := range [][]byte{drop, orphan} {
			if _, err := dp.StatObject(ctx, sumOf(b).BLAKE3); !errors.Is(err, dataplane.ErrNotFound) {
				t.Fatalf("swept object still stored: %v", err)
			}
			if st := gcState(t, d, sumOf(b).BLAKE3, dp.BackendID()); st != "deleted" {
				t.Fatalf("swept object state %q", st)
			}
		}
		rc, _, err := r.GetFile(ctx, p, "f", 0, -1)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(rc)
		rc.Close()
		if !bytes.Equal(got, keep) {
			t.Fatalf("live file reads %q", got)
		}
		// Storing swept bytes again revives them.
		if _, err := r.IngestFile(ctx, p, "g", bytes.NewReader(drop), IngestOptions{}); err != nil {
			t.Fatal(err)
		}
		if st := gcState(t, d, sumOf(drop).BLAKE3, dp.BackendID()); st != "" {
			t.Fatalf("re-ingested object state %q", st)
		}
		if res, err := r.Mark(ctx, GCOptions{Orphans: true}); err != nil || res.Objects != 0 {
			t.Fatalf("mark after re-ingest: %+v %v", res, err)
		}
		checkLog(t, r)
	})
}

// errKilled stands for a SIGKILL: the run stops at a hook point and does
// nothing more.
var errKilled = errors.New("killed")

// TestGCStopAnywhere: a mark or sweep stopped at each of its points (its
// context cancelled there, so nothing after the point runs), then a plain
// re-run: the live file reads back, the garbage is gone, the log verifies
// and a replay rebuilds the views exactly.
func TestGCStopAnywhere(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		for _, point := range []string{"mark.condemn", "sweep.tombstone", "sweep.delete", "sweep.deleted"} {
			t.Run(point, func(t *testing.T) {
				ctx := context.Background()
				dp := backends[0].open(t)
				clock := newClock()
				r := New(d, dp, Options{Actor: "test", Now: clock.now})
				p := ref.Version("stop-"+strings.ReplaceAll(point, ".", "-"), "1")
				live, dead := []byte("live "+point), []byte("dead "+point)
				if err := r.CreatePackage(ctx, p, CreateOptions{}); err != nil {
					t.Fatal(err)
				}
				for _, b := range [][]byte{dead, live} {
					if _, err := r.IngestFile(ctx, p, "f", bytes.NewReader(b), IngestOptions{Replace: true}); err != nil {
						t.Fatal(err)
					}
				}
				kctx, kill := context.WithCancelCause(ctx)
				k := New(d, dp, Options{Actor: "gc", Now: clock.now})
				k.gc = &gcHooks{at: func(at string) {
					if at == point {
						kill(errKilled)
					}
				}}
				_, err := k.Mark(kctx, GCOptions{})
				if err == nil {
					_, err = k.Sweep(kctx, GCOptions{})
				}
				if err == nil {
					t.Fatalf("the run was not stopped at %s", point)
				}
				if _, err := r.Mark(ctx, GCOptions{}); err != nil {
					t.Fatal(err)
				}
				if _, err := r.Sweep(ctx, GCOptions{}); err != nil {
					t.Fatal(err)
				}
				if _, err := dp.StatObject(ctx, sumOf(dead).BLAKE3); !errors.Is(err, dataplane.ErrNotFound) {
					t.Fatalf("garbage survives the re-run: %v", err)
				}
				rc, _, err := r.GetFile(ctx, p, "f", 0, -1)
				if err != nil {
					t.Fatal(err)
				}
				got, _ := io.ReadAll(rc)
				rc.Close()
				if !bytes.Equal(got, live) {
					t.Fatalf("live file reads %q", got)
				}
				checkLog(t, r)
			})
		}
	})
}

// TestImportClaimsObjects: an import (as-oci import, an ORAS push that is a
// package) whose bytes were found present, and then swept before its
// transaction, stores them again instead of committing a package whose
// file names deleted bytes.
func TestImportClaimsObjects(t *testing.T) {
	eachStore(t, func(t *testing.T, d *db.DB, dp dataplane.DataPlane) {
		ctx := context.Background()
		clock := newClock()
		base := New(d, dp, Options{Actor: "test", Now: clock.now})
		content := []byte("bytes an import finds present, then a sweep deletes")
		old := ref.Version("old", "1")
		if err := base.CreatePackage(ctx, old, CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		for _, b := range [][]byte{content, []byte("other bytes")} {
			if _, err := base.IngestFile(ctx, old, "f", bytes.NewReader(b), IngestOptions{Replace: true}); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := base.Mark(ctx, GCOptions{}); err != nil {
			t.Fatal(err)
		}
		imp := New(d, dp, Options{Actor: "import", Now: clock.now})
		commits := 0
		imp.gc = &gcHooks{at: func(point string) {
			if point != "import.commit" {
				return
			}
			if commits++; commits == 1 {
				if res, err := base.Sweep(ctx, GCOptions{Grace: 0}); err != nil || res.Objects != 1 {
					t.Errorf("sweep before the import commits: %+v, %v", res, err)
				}
			}
		}}
		p := ref.Version("new", "1")
		if _, err := imp.ImportPackage(ctx, p, []Input{{Path: "f", Reopen: true, Open: func() (io.ReadCloser, error) {
			return io.NopCloser(bytes.NewReader(content)), nil
		}}}, ImportOptions{Workers: 1}); err != nil {
			t.Fatal(err)
		}
		if commits != 2 {
			t.Fatalf("the import committed %d times; want 2 (the swept object stored again)", commits)
		}
		rc, _, err := base.GetFile(ctx, p, "f", 0, -1)
		if err != nil {
			t.Fatalf("read the imported file back: %v", err)
		}
		got, err := io.ReadAll(rc)
		rc.Close()
		if err != nil || !bytes.Equal(got, content) {
			t.Fatalf("read back %q, %v", got, err)
		}
		checkLog(t, base)
	})
}

// TestOCIPushMeetsSweep: a blob push whose bytes a sweep is deleting is
// refused with ErrCollecting (a retry stores them anew), still an
// ErrConflict, and the retry after the sweep succeeds. It was a bare
// ErrConflict, which as-serve answered 403 DENIED: clients give up on
// that, and under as-gc with no grace pushes failed (TestReliabilityServeLoad).
func TestOCIPushMeetsSweep(t *testing.T) {
	eachStore(t, func(t *testing.T, d *db.DB, dp dataplane.DataPlane) {
		ctx := context.Background()
		clock := newClock()
		base := New(d, dp, Options{Actor: "test", Now: clock.now})
		content := []byte("bytes a push brings while a sweep deletes them")
		old := ref.Version("old", "1")
		if err := base.CreatePackage(ctx, old, CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		for _, b := range [][]byte{content, []byte("other bytes")} {
			if _, err := base.IngestFile(ctx, old, "f", bytes.NewReader(b), IngestOptions{Replace: true}); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := base.Mark(ctx, GCOptions{}); err != nil {
			t.Fatal(err)
		}
		dg := digest.FromBytes(content)
		var pushErr error
		sweeper := New(d, dp, Options{Actor: "gc", Now: clock.now})
		sweeper.gc = &gcHooks{at: func(point string) {
			if point == "sweep.delete" {
				_, pushErr = base.PutOCIBlob(ctx, "app", dg, bytes.NewReader(content), int64(len(content)), "")
			}
		}}
		if res, err := sweeper.Sweep(ctx, GCOptions{Grace: 0}); err != nil || res.Objects != 1 {
			t.Fatalf("sweep: %+v, %v", res, err)
		}
		if !errors.Is(pushErr, ErrCollecting) || !errors.Is(pushErr, ErrConflict) {
			t.Fatalf("push during the sweep's delete: %v; want ErrCollecting and ErrConflict", pushErr)
		}
		if _, err := base.PutOCIBlob(ctx, "app", dg, bytes.NewReader(content), int64(len(content)), ""); err != nil {
			t.Fatalf("the retried push: %v", err)
		}
		b, err := base.OCIBlobInfo(ctx, "app", dg)
		if err != nil {
			t.Fatalf("the pushed blob: %v", err)
		}
		rc, err := base.OpenOCIBlob(ctx, b, 0, -1)
		if err != nil {
			t.Fatalf("read the pushed blob: %v", err)
		}
		got, _ := io.ReadAll(rc)
		rc.Close()
		if !bytes.Equal(got, content) {
			t.Fatalf("read back %q", got)
		}
		checkLog(t, base)
	})
}

// TestNamedEqualsOneByOne: named, which looks up a whole page of listed
// objects in one statement, says of each object what the one-object query
// stillUnnamed runs for an orphan says: live, condemned, swept (before and
// after the listing) and unknown objects alike.
func TestNamedEqualsOneByOne(t *testing.T) {
	eachStore(t, func(t *testing.T, d *db.DB, dp dataplane.DataPlane) {
		ctx := context.Background()
		clock := newClock()
		r := New(d, dp, Options{Actor: "test", Now: clock.now})
		p := ref.Version("app", "1")
		if err := r.CreatePackage(ctx, p, CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		put := func(b []byte) {
			if _, err := r.IngestFile(ctx, p, "f", bytes.NewReader(b), IngestOptions{Replace: true}); err != nil {
				t.Fatal(err)
			}
		}
		swept, condemned, live := []byte("swept bytes"), []byte("condemned bytes"), []byte("live bytes")
		// An orphan (bytes no event names), condemned below: named only
		// by its GC state, which is not 'deleted'.
		orphan := []byte("orphan bytes")
		if _, err := dp.IngestStream(ctx, bytes.NewReader(orphan), dataplane.IngestOptions{}); err != nil {
			t.Fatal(err)
		}
		put(swept)
		put(condemned) // swept is unreferenced now
		if _, err := r.Mark(ctx, GCOptions{}); err != nil {
			t.Fatal(err)
		}
		if _, err := r.Sweep(ctx, GCOptions{Grace: 0}); err != nil {
			t.Fatal(err)
		}
		put(live) // condemned is unreferenced now
		if _, err := r.Mark(ctx, GCOptions{Orphans: true}); err != nil {
			t.Fatal(err)
		}
		if st := gcState(t, d, sumOf(swept).BLAKE3, dp.BackendID()); st != "deleted" {
			t.Fatalf("swept object state %q", st)
		}
		for _, b := range [][]byte{condemned, orphan} {
			if st := gcState(t, d, sumOf(b).BLAKE3, dp.BackendID()); st != "condemned" {
				t.Fatalf("state of %q: %q, want condemned", b, st)
			}
		}
		head, err := r.Log().Head(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var page []storage.Info
		// Unknown objects first and named ones last: a list that lost its
		// first or last items would show.
		for _, b := range [][]byte{[]byte("never stored"), swept, condemned, []byte("nor this"), orphan, live} {
			page = append(page, storage.Info{Address: sumOf(b).BLAKE3, Size: int64(len(b))})
		}
		for _, seen := range []uint64{0, head.Seq} {
			got, err := r.named(ctx, dp.BackendID(), page, seen)
			if err != nil {
				t.Fatal(err)
			}
			tx, err := d.SQL.BeginTx(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			for _, info := range page {
				unnamed, err := r.stillUnnamed(ctx, tx, gcObject{ContentAddress: info.Address, BackendID: dp.BackendID(), Orphan: true, seenAfter: seen})
				if err != nil {
					tx.Rollback()
					t.Fatal(err)
				}
				// stillUnnamed also asks whether a package references
				// the object; named answers for locations and GC
				// states, which every referenced object has.
				if got[info.Address] == unnamed {
					t.Errorf("seen after %d: named says %v of %s, stillUnnamed says unnamed %v", seen, got[info.Address], info.Address, unnamed)
				}
			}
			tx.Rollback()
			want := 4 // live, condemned, the orphan, and swept after the listing
			if seen == head.Seq {
				want = 3 // swept before it
			}
			if len(got) != want {
				t.Errorf("seen after %d: named %d objects: %v", seen, len(got), got)
			}
		}
	})
}
