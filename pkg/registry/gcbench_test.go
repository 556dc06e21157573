package registry

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/binary"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/artifactstore/artifact-store/pkg/dataplane"
	"github.com/artifactstore/artifact-store/pkg/db"
	"github.com/artifactstore/artifact-store/pkg/db/dbtest"
	"github.com/artifactstore/artifact-store/pkg/events"
	"github.com/artifactstore/artifact-store/pkg/identity"
	"lukechampine.com/blake3"
)

// BenchmarkGCMark: mark over a store of N objects (AS_GC_BENCH_OBJECTS,
// default 20,000) in packages of 10 files, 1% of objects unreferenced. The
// fixture is built with event appends through the view writer in
// transactions of 10,000 events (no bytes: mark reads only the views).
func BenchmarkGCMark(b *testing.B) {
	n := 20000
	if s := os.Getenv("AS_GC_BENCH_OBJECTS"); s != "" {
		n, _ = strconv.Atoi(s)
	}
	for _, dialect := range []db.Dialect{db.SQLite, db.Postgres} {
		b.Run(string(dialect), func(b *testing.B) {
			d := dbtest.Open(b, dialect)
			r := New(d, localDP(b), Options{Actor: "bench"})
			start := time.Now()
			garbage := buildFixture(b, r, n)
			b.Logf("fixture: %d objects, %d packages, %d unreferenced, built in %s", n, n/10, garbage, time.Since(start))
			b.ResetTimer()
			for range b.N {
				res, err := r.Mark(context.Background(), GCOptions{DryRun: true})
				if err != nil || res.Objects != int64(garbage) {
					b.Fatalf("mark: %+v %v", res, err)
				}
			}
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "objects/s")
		})
	}
}

func fakeLocation(i int) location {
	var buf [8]byte
	binary.BigEndian.PutUint64(buf[:], uint64(i))
	h := blake3.Sum256(buf[:])
	s := sha256.Sum256(buf[:])
	ca, _ := identity.NewDigest(identity.BLAKE3, h[:])
	sd, _ := identity.NewDigest(identity.SHA256, s[:])
	key := "blake3/" + ca.Hex()[:2] + "/" + ca.Hex()[2:4] + "/" + ca.Hex()
	return location{ContentAddress: ca, SHA256: sd, Size: uint64(i), BackendID: "local", Key: key}
}

// buildFixture appends n objects: n/10 packages of 10 files, of which 1 in
// 100 objects is stored bare (no reference). It returns how many are bare.
func buildFixture(tb testing.TB, r *Registry, n int) int {
	ctx := context.Background()
	garbage := 0
	const perTx = 10000
	for start := 0; start < n; start += perTx {
		err := r.mutate(ctx, func(tx *sql.Tx, emit func(string, any) (events.Event, error)) error {
			for i := start; i < min(start+perTx, n); i++ {
				if i%100 == 99 {
					garbage++
					if _, err := emit(TypeObjectStored, objectStored{Location: fakeLocation(i)}); err != nil {
						return err
					}
					continue
				}
				pkg := fmt.Sprint(i / 10)
				if i%10 == 0 {
					if _, err := emit(TypePackageCreated, packageCreated{Name: "bench", Version: pkg, Retention: DefaultRetentionClass, Labels: map[string]string{}}); err != nil {
						return err
					}
				}
				if _, err := emit(TypeFileIngested, fileIngested{Name: "bench", Version: pkg, Path: fmt.Sprint("f", i%10), Location: fakeLocation(i)}); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			tb.Fatal(err)
		}
	}
	return garbage
}

func localDP(tb testing.TB) *dataplane.InProcess {
	dp, closeFn, err := dataplane.OpenLocal("local", tb.TempDir(), false)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { closeFn() })
	return dp
}
