package registry

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/artifactstore/artifact-store/pkg/config"
	"github.com/artifactstore/artifact-store/pkg/dataplane"
	"github.com/artifactstore/artifact-store/pkg/db"
	"github.com/artifactstore/artifact-store/pkg/db/dbtest"
	"github.com/artifactstore/artifact-store/pkg/identity"
	"github.com/artifactstore/artifact-store/pkg/ref"
	"github.com/artifactstore/artifact-store/pkg/storage"
	"github.com/artifactstore/artifact-store/pkg/storage/s3/s3test"
)

// tamperer overwrites the stored bytes of an object behind the data plane's
// back, as bit rot or an operator's mistake would.
type tamperer func(t *testing.T, addr identity.Digest, b []byte)

// scrubBackends are the backends of the scrub tests, each with a way to
// corrupt a stored object in place.
var scrubBackends = []struct {
	name string
	open func(t *testing.T) (dataplane.DataPlane, tamperer)
}{
	{"local", func(t *testing.T) (dataplane.DataPlane, tamperer) {
		root := t.TempDir()
		dp, closeFn, err := dataplane.OpenLocal("local", root, false)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { closeFn() })
		return dp, func(t *testing.T, addr identity.Digest, b []byte) {
			t.Helper()
			k, err := storage.Key(addr)
			if err != nil {
				t.Fatal(err)
			}
			p := filepath.Join(root, filepath.FromSlash(k))
			if err := os.Chmod(p, 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}},
	{"s3", func(t *testing.T) (dataplane.DataPlane, tamperer) {
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
		return dp, func(t *testing.T, addr identity.Digest, b []byte) {
			t.Helper()
			k, err := storage.Key(addr)
			if err != nil {
				t.Fatal(err)
			}
			if p := strings.Trim(loc.Prefix, "/"); p != "" {
				k = p + "/" + k
			}
			if _, err := srv.Client().PutObject(context.Background(), &awss3.PutObjectInput{
				Bucket: &loc.Bucket, Key: &k, Body: bytes.NewReader(b),
			}); err != nil {
				t.Fatal(err)
			}
		}
	}},
}

// eachScrubStore runs f on every database × backend, with a tamperer.
func eachScrubStore(t *testing.T, f func(t *testing.T, d *db.DB, dp dataplane.DataPlane, tamper tamperer)) {
	for _, b := range scrubBackends {
		t.Run(b.name, func(t *testing.T) {
			dbtest.Each(t, func(t *testing.T, d *db.DB) {
				dp, tamper := b.open(t)
				f(t, d, dp, tamper)
			})
		})
	}
}

// objectCheck is the object_checks row of addr ("" state when none).
func objectCheck(t *testing.T, d *db.DB, addr identity.Digest, backend string) (state, detail string) {
	t.Helper()
	err := d.SQL.QueryRow(`SELECT state, detail FROM object_checks WHERE content_address = $1 AND backend_id = $2`,
		addr.String(), backend).Scan(&state, &detail)
	if err != nil && !strings.Contains(err.Error(), "no rows") {
		t.Fatal(err)
	}
	return state, detail
}

// eventCount counts the log's events of type typ.
func eventCount(t *testing.T, d *db.DB, typ string) int {
	t.Helper()
	var n int
	if err := d.SQL.QueryRow(`SELECT COUNT(*) FROM events WHERE type = $1`, typ).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func (c *sharedClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func readAll(t *testing.T, r *Registry, p ref.Ref, path string) ([]byte, error) {
	t.Helper()
	rc, _, err := r.GetFile(context.Background(), p, path, 0, -1)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(rc)
}

// TestScrub: a clean store verifies in one batched event; a flipped byte, a
// truncated object and a missing one are each found and recorded with what
// differed; --older-than and --limit select; a known-corrupt object is
// refused before any byte is served; storing the same bytes again repairs
// it and logs the repair; the log verifies and replays exactly.
func TestScrub(t *testing.T) {
	eachScrubStore(t, func(t *testing.T, d *db.DB, dp dataplane.DataPlane, tamper tamperer) {
		ctx := context.Background()
		clock := newClock()
		r := New(d, dp, Options{Actor: "test", Now: clock.now})
		be := dp.BackendID()
		p := ref.Version("app", "1")
		if err := r.CreatePackage(ctx, p, CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		body := map[string][]byte{
			"good":  []byte("these bytes stay as they were stored"),
			"flip":  []byte("one byte of these will be flipped on disk"),
			"trunc": []byte("these bytes will lose their tail in the backend"),
			"gone":  []byte("these bytes will disappear from the backend"),
		}
		for _, path := range []string{"good", "flip", "trunc", "gone"} {
			if _, err := r.IngestFile(ctx, p, path, bytes.NewReader(body[path]), IngestOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		addr := func(path string) identity.Digest { return sumOf(body[path]).BLAKE3 }

		// Before any scrub: every object unverified, the oldest "check" is
		// the storing of the first.
		st, err := r.ScrubStatus(ctx)
		if err != nil || st.Objects != 4 || st.Unverified != 4 || st.Corrupt != 0 || st.Oldest.IsZero() || !st.Oldest.Before(clock.now()) {
			t.Fatalf("status before scrubbing: %+v %v", st, err)
		}
		storedAt := st.Oldest

		// A clean store: every object verified, in one event.
		res, err := r.Scrub(ctx, ScrubOptions{Workers: 2})
		if err != nil {
			t.Fatal(err)
		}
		if res.Objects != 4 || res.Verified != 4 || res.Corrupt != 0 || eventCount(t, d, TypeScrubVerified) != 1 {
			t.Fatalf("clean scrub: %+v, %d verified events", res, eventCount(t, d, TypeScrubVerified))
		}
		for path := range body {
			if st, _ := objectCheck(t, d, addr(path), be); st != "verified" {
				t.Fatalf("%s: state %q after a clean scrub", path, st)
			}
		}

		// Damage three objects.
		flipped := bytes.Clone(body["flip"])
		flipped[7] ^= 0x01
		tamper(t, addr("flip"), flipped)
		tamper(t, addr("trunc"), body["trunc"][:10])
		if err := dp.DeleteObject(ctx, addr("gone")); err != nil {
			t.Fatal(err)
		}

		// Nothing is older than an hour: --older-than selects nothing.
		clock.advance(30 * time.Minute)
		if res, err := r.Scrub(ctx, ScrubOptions{OlderThan: time.Hour}); err != nil || res.Objects != 0 {
			t.Fatalf("older-than 1h: %+v %v", res, err)
		}
		one, err := r.Scrub(ctx, ScrubOptions{OlderThan: 10 * time.Minute, Limit: 1})
		if err != nil || one.Objects != 1 {
			t.Fatalf("limit 1: %+v %v", one, err)
		}
		var seen []ScrubObject
		res, err = r.Scrub(ctx, ScrubOptions{OnObject: func(o ScrubObject) { seen = append(seen, o) }})
		if err != nil {
			t.Fatal(err)
		}
		if res.Objects != 4 || res.Verified != 1 || res.Corrupt != 3 || len(seen) != 4 {
			t.Fatalf("scrub of a damaged store: %+v (%d reported)", res, len(seen))
		}
		for path, want := range map[string]string{"good": "", "flip": "blake3", "trunc": "blake3", "gone": "missing"} {
			st, detail := objectCheck(t, d, addr(path), be)
			switch {
			case want == "" && st != "verified":
				t.Errorf("%s: state %q, want verified", path, st)
			case want != "" && (st != "corrupt" || !strings.Contains(detail, want)):
				t.Errorf("%s: state %q detail %q, want corrupt naming %q", path, st, detail, want)
			}
		}
		if st, err := r.ScrubStatus(ctx); err != nil || st.Objects != 4 || st.Unverified != 0 || st.Corrupt != 3 || !st.Oldest.After(storedAt) {
			t.Fatalf("status after scrubbing a damaged store: %+v %v (stored at %s)", st, err, storedAt)
		}
		if n := eventCount(t, d, TypeScrubCorrupt); n != 3+int(one.Corrupt) {
			t.Fatalf("%d corrupt events, want %d", n, 3+one.Corrupt)
		}

		// A known-corrupt object is refused (integrity), even a range read
		// that would not notice; a good one reads.
		for _, path := range []string{"flip", "trunc", "gone"} {
			if _, err := readAll(t, r, p, path); !errors.Is(err, ErrIntegrity) {
				t.Errorf("read of corrupt %s: %v, want ErrIntegrity", path, err)
			}
		}
		if rc, _, err := r.GetFile(ctx, p, "flip", 0, 3); !errors.Is(err, ErrIntegrity) {
			if rc != nil {
				rc.Close()
			}
			t.Errorf("range read of corrupt flip: %v, want ErrIntegrity", err)
		}
		if b, err := readAll(t, r, p, "good"); err != nil || !bytes.Equal(b, body["good"]) {
			t.Fatalf("good file: %q %v", b, err)
		}
		checkLog(t, r)

		// Repair: storing the same bytes again (a new package, as as-put
		// of a file with that content does: a reopenable input) replaces
		// them, even where the backend keeps an existing object, and logs
		// it.
		p2 := ref.Version("app", "2")
		if err := r.CreatePackage(ctx, p2, CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		for _, path := range []string{"flip", "trunc", "gone"} {
			s := sumOf(body[path])
			b := body[path]
			in := Input{Path: path, Expect: &s, Reopen: true,
				Open: func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }}
			if _, err := r.IngestFiles(ctx, p2, []Input{in}, BatchOptions{Workers: 1}); err != nil {
				t.Fatal(err)
			}
			if st, detail := objectCheck(t, d, addr(path), be); st != "verified" || detail != "repaired" {
				t.Errorf("%s after re-store: state %q detail %q, want verified/repaired", path, st, detail)
			}
			if b, err := readAll(t, r, p, path); err != nil || !bytes.Equal(b, body[path]) {
				t.Errorf("%s after repair: %q %v", path, b, err)
			}
		}
		if n := eventCount(t, d, TypeScrubRepaired); n != 3 {
			t.Fatalf("%d repaired events, want 3", n)
		}
		if res, err := r.Scrub(ctx, ScrubOptions{}); err != nil || res.Corrupt != 0 || res.Verified != 4 {
			t.Fatalf("scrub after repair: %+v %v", res, err)
		}
		if st, err := r.ScrubStatus(ctx); err != nil || st.Corrupt != 0 || st.Objects != 4 {
			t.Fatalf("status after repair: %+v %v", st, err)
		}
		checkLog(t, r)
	})
}

// TestScrubNoFalseRepair: re-storing bytes of a corrupt object through a
// path that does not replace them (a re-ingest that the backend keeps as a
// duplicate) must not log a repair: the object stays known corrupt. The
// registry verifies the stored bytes before it records a repair.
func TestScrubNoFalseRepair(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		dp, tamper := scrubBackends[0].open(t)
		r := New(d, dp, Options{Actor: "test", Now: newClock().now})
		p := ref.Version("app", "1")
		if err := r.CreatePackage(ctx, p, CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		b := []byte("bytes that rot")
		if _, err := r.IngestFile(ctx, p, "f", bytes.NewReader(b), IngestOptions{}); err != nil {
			t.Fatal(err)
		}
		tamper(t, sumOf(b).BLAKE3, []byte("bytes that rOt"))
		if res, err := r.Scrub(ctx, ScrubOptions{}); err != nil || res.Corrupt != 1 {
			t.Fatalf("scrub: %+v %v", res, err)
		}
		// Record a store of the object without rewriting its bytes.
		res := dataplane.IngestResult{Sum: sumOf(b), Receipt: dataplane.Receipt{BackendID: dp.BackendID(), Address: sumOf(b).BLAKE3}}
		if k, err := storage.Key(res.Sum.BLAKE3); err == nil {
			res.Receipt.Key = k
		}
		if err := r.commitObject(ctx, res); err != nil {
			t.Fatal(err)
		}
		if st, _ := objectCheck(t, d, sumOf(b).BLAKE3, dp.BackendID()); st != "corrupt" || eventCount(t, d, TypeScrubRepaired) != 0 {
			t.Fatalf("state %q, %d repaired events: a repair was logged for bytes still corrupt", st, eventCount(t, d, TypeScrubRepaired))
		}
		checkLog(t, r)
	})
}

// TestScrubSkipsCollected: an object a sweep deleted between the scrub's
// selection and its record is not recorded corrupt (the record re-checks
// the location under the lock), and a later scrub does not select it.
func TestScrubSkipsCollected(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		dp, _ := scrubBackends[0].open(t)
		r := New(d, dp, Options{Actor: "test", Now: newClock().now})
		p := ref.Version("app", "1")
		if err := r.CreatePackage(ctx, p, CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		dead := []byte("bytes that the collector will take")
		for _, b := range [][]byte{dead, []byte("live bytes")} {
			if _, err := r.IngestFile(ctx, p, "f", bytes.NewReader(b), IngestOptions{Replace: true}); err != nil {
				t.Fatal(err)
			}
		}
		targets, err := r.scrubTargets(ctx, ScrubOptions{})
		if err != nil || len(targets) != 2 {
			t.Fatalf("targets before GC: %d %v", len(targets), err)
		}
		if _, err := r.Mark(ctx, GCOptions{}); err != nil {
			t.Fatal(err)
		}
		if res, err := r.Sweep(ctx, GCOptions{}); err != nil || res.Objects != 1 {
			t.Fatalf("sweep: %+v %v", res, err)
		}
		// The scrub read the object as missing after it had selected it.
		addr := sumOf(dead).BLAKE3
		if err := r.recordCorrupt(ctx, scrubCorrupt{ContentAddress: addr, BackendID: dp.BackendID(), Detail: "missing"}); err != nil {
			t.Fatal(err)
		}
		if err := r.recordVerified(ctx, []scrubObject{{ContentAddress: addr, BackendID: dp.BackendID(), Size: uint64(len(dead))}}); err != nil {
			t.Fatal(err)
		}
		if st, _ := objectCheck(t, d, addr, dp.BackendID()); st != "" || eventCount(t, d, TypeScrubCorrupt)+eventCount(t, d, TypeScrubVerified) != 0 {
			t.Fatalf("a swept object got scrub state %q", st)
		}
		if res, err := r.Scrub(ctx, ScrubOptions{}); err != nil || res.Objects != 1 || res.Corrupt != 0 {
			t.Fatalf("scrub after GC: %+v %v", res, err)
		}
		checkLog(t, r)
	})
}
