package registry

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"

	"github.com/artifactstore/artifact-store/pkg/db/dbtest"
	"github.com/artifactstore/artifact-store/pkg/identity"
	"github.com/artifactstore/artifact-store/pkg/ref"
	"github.com/artifactstore/artifact-store/pkg/storage"
)

// Scrub benchmark fixture: scrubObjects objects of scrubObjectSize bytes.
const (
	scrubObjects    = 64
	scrubObjectSize = 1 << 20
)

// scrubFixture stores the fixture on SQLite and the local backend and
// returns the registry and the objects' paths in the backend.
func scrubFixture(b *testing.B) (*Registry, []string) {
	ctx := context.Background()
	dp := localDP(b)
	r := New(dbtest.SQLite(b), dp, Options{Actor: "bench"})
	p := ref.Version("bench", "1")
	if err := r.CreatePackage(ctx, p, CreateOptions{}); err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	var paths []string
	buf := make([]byte, scrubObjectSize)
	for i := range scrubObjects {
		for j := range buf {
			buf[j] = byte(rng.Uint32())
		}
		res, err := r.IngestFile(ctx, p, "f"+string(rune('a'+i%26))+string(rune('a'+i/26)), bytes.NewReader(buf), IngestOptions{})
		if err != nil {
			b.Fatal(err)
		}
		k, _ := storage.Key(res.File.ContentAddress)
		paths = append(paths, filepath.Join(dp.Backend().(interface{ Root() string }).Root(), filepath.FromSlash(k)))
	}
	return r, paths
}

// BenchmarkScrub: Scrub of every object (re-read through the data plane,
// both digests, one verified event per batch). MB/s is comparable with
// BenchmarkScrubDigestBaseline, the as-digest work on the same bytes.
func BenchmarkScrub(b *testing.B) {
	r, _ := scrubFixture(b)
	ctx := context.Background()
	for _, w := range []int{1, runtime.GOMAXPROCS(0)} {
		b.Run(fmt.Sprintf("workers=%d", w), func(b *testing.B) {
			b.SetBytes(scrubObjects * scrubObjectSize)
			for b.Loop() {
				res, err := r.Scrub(ctx, ScrubOptions{Workers: w})
				if err != nil || res.Verified != scrubObjects {
					b.Fatalf("%+v %v", res, err)
				}
			}
		})
	}
}

// BenchmarkScrubDigestBaseline: what as-digest does with the same objects:
// read each file and compute both digests, jobs at a time.
func BenchmarkScrubDigestBaseline(b *testing.B) {
	_, paths := scrubFixture(b)
	for _, w := range []int{1, runtime.GOMAXPROCS(0)} {
		b.Run(fmt.Sprintf("jobs=%d", w), func(b *testing.B) {
			b.SetBytes(scrubObjects * scrubObjectSize)
			for b.Loop() {
				next := make(chan string)
				var wg sync.WaitGroup
				for range w {
					wg.Go(func() {
						for p := range next {
							f, err := os.Open(p)
							if err != nil {
								b.Error(err)
								continue
							}
							if _, err := identity.SumReader(f); err != nil {
								b.Error(err)
							}
							f.Close()
						}
					})
				}
				for _, p := range paths {
					next <- p
				}
				close(next)
				wg.Wait()
			}
		})
	}
}
