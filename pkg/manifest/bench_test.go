package manifest

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"runtime"
	"testing"

	"github.com/artifactstore/artifact-store/pkg/identity"
	"github.com/artifactstore/artifact-store/pkg/records"
)

// benchRecords returns n file records as as-digest would write them for a
// tree under dist/, in a shuffled order.
func benchRecords(n int) []records.File {
	rs := make([]records.File, n)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range rs {
		var b3, s2 [32]byte
		for j := range b3 {
			b3[j], s2[j] = byte(r.Uint32()), byte(r.Uint32())
		}
		ca, _ := identity.NewDigest(identity.BLAKE3, b3[:])
		sh, _ := identity.NewDigest(identity.SHA256, s2[:])
		rs[i] = records.File{
			Path:           fmt.Sprintf("dist/dir%03d/sub%02d/file-%07d.o", i%1000, i%37, i),
			Size:           uint64(r.IntN(1 << 30)),
			ContentAddress: ca,
			SHA256:         sh,
		}
	}
	r.Shuffle(n, func(i, j int) { rs[i], rs[j] = rs[j], rs[i] })
	return rs
}

func benchManifest(b *testing.B, n int) Manifest {
	bl := Builder{Package: Package{Name: "app", Version: "1.0.0", Labels: map[string]string{"team": "core"}},
		Provenance: Provenance{Producer: Producer{Tool: "as-manifest", Version: "1.0.0"}}}
	for _, f := range benchRecords(n) {
		if err := bl.Add(f); err != nil {
			b.Fatal(err)
		}
	}
	m, err := bl.Manifest()
	if err != nil {
		b.Fatal(err)
	}
	return m
}

var sizes = []int{10, 1000, 100000}

func BenchmarkEncode(b *testing.B) {
	for _, n := range sizes {
		m := benchManifest(b, n)
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Encode(m); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkDecode(b *testing.B) {
	for _, n := range sizes {
		enc, _ := Encode(benchManifest(b, n))
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(enc)))
			for b.Loop() {
				if _, err := Decode(enc); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkJCS(b *testing.B) {
	for _, n := range sizes {
		m := benchManifest(b, n)
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := JCS(m); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkFromJCS(b *testing.B) {
	for _, n := range sizes {
		j, _ := JCS(benchManifest(b, n))
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(j)))
			for b.Loop() {
				if _, err := FromJCS(j); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkJSONUnmarshal is the yardstick for Decode: encoding/json
// decoding the JCS form of the same manifest into the same typed shape,
// with no canonicality or validity checks at all.
func BenchmarkJSONUnmarshal(b *testing.B) {
	for _, n := range sizes {
		j, _ := JCS(benchManifest(b, n))
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(j)))
			for b.Loop() {
				var w wire
				if err := json.Unmarshal(j, &w); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkBuildEncodeDigest is the goal: from 100,000 shuffled
// file records to the manifest digest. It reports the peak heap growth.
func BenchmarkBuildEncodeDigest(b *testing.B) {
	recs := benchRecords(100000)
	b.ReportAllocs()
	var peak uint64
	for b.Loop() {
		runtime.GC()
		var before runtime.MemStats
		runtime.ReadMemStats(&before)
		bl := Builder{Package: Package{Name: "app", Version: "1.0.0"},
			Provenance: Provenance{Producer: Producer{Tool: "as-manifest", Version: "1.0.0"}}}
		for _, f := range recs {
			if err := bl.Add(f); err != nil {
				b.Fatal(err)
			}
		}
		m, err := bl.Manifest()
		if err != nil {
			b.Fatal(err)
		}
		enc, err := Encode(m)
		if err != nil {
			b.Fatal(err)
		}
		_ = DigestOf(enc)
		var after runtime.MemStats
		runtime.ReadMemStats(&after)
		peak = max(peak, after.TotalAlloc-before.TotalAlloc)
	}
	b.ReportMetric(float64(peak)/(1<<20), "MiB-alloc/op")
}
