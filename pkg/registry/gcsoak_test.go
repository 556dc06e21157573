package registry

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/artifactstore/artifact-store/pkg/dataplane"
	"github.com/artifactstore/artifact-store/pkg/db"
	"github.com/artifactstore/artifact-store/pkg/db/dbtest"
	"github.com/artifactstore/artifact-store/pkg/identity"
	"github.com/artifactstore/artifact-store/pkg/ref"
	"github.com/artifactstore/artifact-store/pkg/storage"
)

// TestGCSoak: writers put packages whose files share content (a pool of
// 40 contents), each also dropping references by replacing a file in its
// still-open package (the view effect of expiry, which this branch lacks),
// while a loop runs mark and sweep with grace 0. At the end every file of
// every package reads back and hashes right (lost blobs = 0), a final GC
// leaves in the backend exactly the referenced objects, and the log
// verifies and replays exactly. With grace 0 and a spinning collector an
// ingest may give up with ErrConflict (its fresh objects were condemned and
// swept again and again before it could reference them): that is the
// documented safe outcome, so a writer retries it (counted and logged) and
// the test fails only if one put never completes. 2 s per database; AS_GC_SOAK=DURATION for
// longer (make reliability).
func TestGCSoak(t *testing.T) {
	dur := 2 * time.Second
	if s := os.Getenv("AS_GC_SOAK"); s != "" {
		var err error
		if dur, err = time.ParseDuration(s); err != nil {
			t.Fatalf("AS_GC_SOAK: %v", err)
		}
	} else if testing.Short() {
		dur = 500 * time.Millisecond
	}
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		dp := backends[0].open(t)
		clock := newClock()
		r := New(d, dp, Options{Actor: "soak", Now: clock.now})
		content := func(i int) []byte {
			return []byte(fmt.Sprintf("soak content %d %s", i, bytes.Repeat([]byte{'x'}, i*37)))
		}
		stop := time.Now().Add(dur)
		var puts, cycles, conflicts atomic.Int64
		// retry runs f again while it fails with ErrConflict, at most 50 times.
		retry := func(f func() error) error {
			for i := 0; ; i++ {
				err := f()
				if err == nil || !errors.Is(err, ErrConflict) || i == 50 {
					return err
				}
				conflicts.Add(1)
			}
		}
		var wg sync.WaitGroup
		errc := make(chan error, 8)
		for w := range 3 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				rng := rand.New(rand.NewPCG(uint64(w), 1))
				for n := 0; time.Now().Before(stop); n++ {
					p := ref.Version(fmt.Sprintf("w%d", w), fmt.Sprint(n))
					if err := r.CreatePackage(ctx, p, CreateOptions{}); err != nil {
						errc <- err
						return
					}
					var in []Input
					for k := range 3 {
						b := content(rng.IntN(40))
						in = append(in, Input{Path: fmt.Sprintf("f%d", k), Reopen: true, Open: func() (io.ReadCloser, error) {
							return io.NopCloser(bytes.NewReader(b)), nil
						}})
					}
					if err := retry(func() error {
						_, err := r.IngestFiles(ctx, p, in, BatchOptions{Workers: 2})
						return err
					}); err != nil {
						errc <- fmt.Errorf("put %s: %w", p, err)
						return
					}
					b := content(rng.IntN(40))
					if err := retry(func() error {
						_, err := r.IngestFiles(ctx, p, []Input{{Path: "f0", Reopen: true, Open: func() (io.ReadCloser, error) {
							return io.NopCloser(bytes.NewReader(b)), nil
						}}}, BatchOptions{Replace: true, Workers: 1})
						return err
					}); err != nil {
						errc <- fmt.Errorf("replace in %s: %w", p, err)
						return
					}
					puts.Add(4)
					if n%2 == 0 {
						if err := retry(func() error {
							_, err := r.FinalizePackage(ctx, p, FinalizeOptions{})
							return err
						}); err != nil {
							errc <- err
							return
						}
					}
				}
			}()
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(stop) {
				if _, err := r.Mark(ctx, GCOptions{Orphans: true}); err != nil {
					errc <- fmt.Errorf("mark: %w", err)
					return
				}
				if _, err := r.Sweep(ctx, GCOptions{Grace: 0}); err != nil {
					errc <- fmt.Errorf("sweep: %w", err)
					return
				}
				cycles.Add(1)
			}
		}()
		wg.Wait()
		close(errc)
		for err := range errc {
			t.Fatal(err)
		}
		// A final collection, twice (the second sweeps what the first marked).
		for range 2 {
			if _, err := r.Mark(ctx, GCOptions{Orphans: true}); err != nil {
				t.Fatal(err)
			}
			if _, err := r.Sweep(ctx, GCOptions{Grace: 0}); err != nil {
				t.Fatal(err)
			}
		}
		rows, err := d.SQL.Query(`SELECT package_name, package_version, path, content_address FROM artifact_files`)
		if err != nil {
			t.Fatal(err)
		}
		type file struct{ name, version, path, ca string }
		var files []file
		for rows.Next() {
			var f file
			rows.Scan(&f.name, &f.version, &f.path, &f.ca)
			files = append(files, f)
		}
		rows.Close()
		live := map[string]bool{}
		lost := 0
		for _, f := range files {
			live[f.ca] = true
			rc, _, err := r.GetFile(ctx, ref.Version(f.name, f.version), f.path, 0, -1)
			if err != nil {
				if errors.Is(err, dataplane.ErrNotFound) {
					lost++
					continue
				}
				t.Fatal(err)
			}
			s, err := identity.SumReader(rc)
			rc.Close()
			if err != nil || s.BLAKE3.String() != f.ca {
				lost++
			}
		}
		stored := 0
		if err := dp.(dataplane.Lister).ListObjects(ctx, func(info storage.Info) error {
			stored++
			if !live[info.Address.String()] {
				return fmt.Errorf("unreferenced object %s survives the final GC", info.Address)
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if lost > 0 || stored != len(live) {
			t.Fatalf("lost blobs = %d of %d files; %d objects stored, %d referenced", lost, len(files), stored, len(live))
		}
		checkLog(t, r)
		t.Logf("soak %s: lost blobs = 0 over %d puts and %d GC cycles (%d files, %d live objects, %d ingests retried after ErrConflict)", dur, puts.Load(), cycles.Load(), len(files), len(live), conflicts.Load())
	})
}
