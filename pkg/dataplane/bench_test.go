package dataplane

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// BenchmarkIngestLarge ingests one 256 MiB object (durable) per iteration.
func BenchmarkIngestLarge(b *testing.B) {
	d, be := newDP(b)
	src := make([]byte, 256<<20)
	ctx := context.Background()
	b.SetBytes(int64(len(src)))
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		binary.LittleEndian.PutUint64(src, uint64(i)) // a new object every time
		res, err := d.IngestStream(ctx, bytes.NewReader(src), IngestOptions{})
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		be.Delete(ctx, res.Receipt.Address)
		b.StartTimer()
	}
}

// BenchmarkIngestSmall ingests many distinct 16 KiB objects (durable) from
// parallel goroutines; the figure to read is ns/op per object.
func BenchmarkIngestSmall(b *testing.B) {
	d, _ := newDP(b)
	ctx := context.Background()
	var seq atomic.Uint64
	b.SetBytes(16 << 10)
	b.SetParallelism(4)
	b.RunParallel(func(pb *testing.PB) {
		src := make([]byte, 16<<10)
		for pb.Next() {
			binary.LittleEndian.PutUint64(src, seq.Add(1))
			if _, err := d.IngestStream(ctx, bytes.NewReader(src), IngestOptions{}); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// TestBenchIngest is the ingest half of scripts/bench-storage.sh, run from
// a compiled test binary; it is skipped unless AS_BENCH_SRC is set.
//
//	AS_BENCH_SRC   a file or a directory tree to ingest
//	AS_BENCH_DST   the local backend root (created; must be empty or absent)
//	AS_BENCH_JOBS  concurrent ingests for a tree (default 4 × GOMAXPROCS)
//
// It prints one line: "bytes=N files=N seconds=F maxrss_kib=N".
func TestBenchIngest(t *testing.T) {
	src, dst := os.Getenv("AS_BENCH_SRC"), os.Getenv("AS_BENCH_DST")
	if src == "" || dst == "" {
		t.Skip("AS_BENCH_SRC and AS_BENCH_DST not set")
	}
	jobs := 4 * runtime.GOMAXPROCS(0)
	if j, err := strconv.Atoi(os.Getenv("AS_BENCH_JOBS")); err == nil && j > 0 {
		jobs = j
	}
	var paths []string
	err := filepath.WalkDir(src, func(p string, e fs.DirEntry, err error) error {
		if err == nil && e.Type().IsRegular() {
			paths = append(paths, p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	start := time.Now()
	d, closeFn, err := OpenLocal("local", dst, false)
	if err != nil {
		t.Fatal(err)
	}
	defer closeFn()
	// The tree goes in batches of 1,024 through IngestBatch, as as-put
	// sends it: jobs files staged at once, one durability barrier per batch.
	var total atomic.Int64
	for lo := 0; lo < len(paths); lo += 1024 {
		batch := paths[lo:min(lo+1024, len(paths))]
		srcs := make([]Source, len(batch))
		for i, p := range batch {
			srcs[i] = Source{Open: func() (io.ReadCloser, error) { return os.Open(p) }}
		}
		res, errs := d.IngestBatch(ctx, srcs, jobs)
		if err := errors.Join(errs...); err != nil {
			t.Fatal(err)
		}
		for _, r := range res {
			total.Add(r.Sum.Size)
		}
	}
	secs := time.Since(start).Seconds()
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	fmt.Printf("bytes=%d files=%d seconds=%.3f maxrss_kib=%d\n", total.Load(), len(paths), secs, ru.Maxrss)
}

// TestBenchGenTree writes the benchmark tree for scripts/bench-storage.sh;
// it is skipped unless AS_BENCH_GEN is set.
//
//	AS_BENCH_GEN        directory to create
//	AS_BENCH_GEN_FILES  number of files (default 20000)
//
// Sizes are log-uniform between 1 KiB and 1 MiB (mean about 147 KiB), the
// content pseudo-random (incompressible, deterministic), 200 files per
// directory.
func TestBenchGenTree(t *testing.T) {
	dir := os.Getenv("AS_BENCH_GEN")
	if dir == "" {
		t.Skip("AS_BENCH_GEN not set")
	}
	n := 20000
	if v, err := strconv.Atoi(os.Getenv("AS_BENCH_GEN_FILES")); err == nil && v > 0 {
		n = v
	}
	src := rand.NewChaCha8([32]byte{'a', 's'})
	r := rand.New(src)
	buf := make([]byte, 1<<20)
	var total int64
	for i := 0; i < n; i++ {
		size := int(math.Exp(math.Log(1024) + r.Float64()*(math.Log(1<<20)-math.Log(1024))))
		src.Read(buf[:size])
		sub := filepath.Join(dir, fmt.Sprintf("d%03d", i/200))
		if i%200 == 0 {
			if err := os.MkdirAll(sub, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.WriteFile(filepath.Join(sub, fmt.Sprintf("f%05d", i)), buf[:size], 0o644); err != nil {
			t.Fatal(err)
		}
		total += int64(size)
	}
	fmt.Printf("files=%d bytes=%d\n", n, total)
}
