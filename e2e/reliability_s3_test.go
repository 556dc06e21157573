package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/artifactstore/artifact-store/pkg/db"
	"github.com/artifactstore/artifact-store/pkg/identity"
	"github.com/artifactstore/artifact-store/pkg/storage"
	"github.com/artifactstore/artifact-store/pkg/storage/s3"
	"github.com/artifactstore/artifact-store/pkg/storage/s3/s3test"
)

// TestReliabilityCrashS3 is the crash test with the objects in an S3
// bucket (MinIO): as-put of a new package and as-gc sweep, each killed with
// SIGKILL at a random moment inside its measured run time, on SQLite and
// PostgreSQL. After every kill the S3 invariants hold (checkS3Invariants)
// and re-running the command completes it.
func TestReliabilityCrashS3(t *testing.T) {
	srv := s3test.Start(t)
	rounds := 2 // per operation
	if full() {
		rounds = 12
	}
	for _, d := range []db.Dialect{db.SQLite, db.Postgres} {
		t.Run(string(d), func(t *testing.T) {
			ctx := context.Background()
			e := newEnv(t, d)
			loc := srv.NewBucket(t)
			e.vars = append(e.vars, srv.Env(loc)...)
			e.vars = append(e.vars, "AWS_CONFIG_FILE="+os.DevNull, "AWS_SHARED_CREDENTIALS_FILE="+os.DevNull)
			be, err := s3.Open(ctx, srv.Options(loc))
			if err != nil {
				t.Fatal(err)
			}
			// Each round's package brings bytes of its own (a re-put of
			// stored bytes finishes before most kills would land).
			trees := map[int]string{}
			recsOf := func(r int) string {
				if _, ok := trees[r]; !ok {
					trees[r] = uniqueTree(t, 5000+r, 60)
					e.ok("find " + trees[r] + " -type f | sort | as-digest > " + trees[r] + ".recs")
				}
				return trees[r] + ".recs"
			}
			put := func(pkg string, r int) string {
				recs := recsOf(r) // first: it makes trees[r]
				return "as-put --package " + pkg + " --root " + trees[r] + " --finalize < " + recs + " >/dev/null"
			}
			// A package of its own bytes, deleted and marked, for a sweep
			// to delete.
			garbage := func(r int) {
				own := uniqueTree(t, 4000+r, 20)
				e.ok(fmt.Sprintf("find %s -type f | sort | as-digest | as-put --package g@%d --root %s --finalize >/dev/null", own, r, own))
				e.ok(fmt.Sprintf("as-retain delete g@%d --reason crash-test >/dev/null && as-gc mark --grace 0 >/dev/null", r))
			}
			start := time.Now()
			e.ok(put("timing@1", -1))
			ingest := time.Since(start)
			garbage(-1)
			start = time.Now()
			e.ok("as-gc sweep --grace 0 >/dev/null")
			sweep := time.Since(start)

			rng := rand.New(rand.NewPCG(uint64(len(d)), 23))
			kills := map[string]int{}
			for r := range rounds {
				pkg := fmt.Sprintf("s3crash@%d", r)
				recs := recsOf(r)
				if e.killAt(time.Duration(rng.Int64N(int64(ingest))), recs, "as-put", "--package", pkg, "--root", trees[r], "--finalize") {
					kills["put"]++
				}
				e.checkS3Invariants(ctx, be)
				e.ok(put(pkg, r))
				e.ok("as-get --manifest " + pkg + " | as-manifest verify --root " + trees[r])

				garbage(r)
				if e.killAt(time.Duration(rng.Int64N(int64(sweep))), "", "as-gc", "sweep", "--grace", "0") {
					kills["sweep"]++
				}
				e.checkS3Invariants(ctx, be)
				e.ok("as-gc sweep --grace 0 >/dev/null")
				if out := e.ok("as-gc sweep --grace 0 --dry-run --json"); !strings.Contains(out, `"summary":true,"objects":0`) {
					t.Fatalf("after the re-run, the sweep still has work:\n%s", out)
				}
			}
			// Every package still live reads back whole.
			e.ok("as-get --manifest timing@1 | as-manifest verify --root " + trees[-1])
			t.Logf("%s: %d as-put and %d sweep kills landed in %d rounds each", d, kills["put"], kills["sweep"], rounds)
			report(t, "kills_s3_put_"+string(d), kills["put"])
			report(t, "kills_s3_sweep_"+string(d), kills["sweep"])
		})
	}
}

// checkS3Invariants is checkInvariants for a store whose objects are in
// the bucket behind be: every object there hashes to its address, then
// checkViews against what the bucket holds.
func (e *env) checkS3Invariants(ctx context.Context, be *s3.Backend) {
	e.t.Helper()
	objects := map[string]bool{}
	err := be.List(ctx, func(info storage.Info) error {
		rc, err := be.Get(ctx, info.Address, 0, -1)
		if err != nil {
			return err
		}
		defer rc.Close()
		sum, err := identity.SumReader(rc)
		if err != nil {
			return err
		}
		if sum.BLAKE3 != info.Address || sum.Size != info.Size {
			e.t.Fatalf("object %s in the bucket holds %d bytes hashing to %s: a partial or wrong object", info.Address, sum.Size, sum.BLAKE3)
		}
		objects[info.Address.String()] = true
		return nil
	})
	if err != nil {
		e.t.Fatal(err)
	}
	e.checkViews(ctx, objects)
}
