package ociserve

import (
	"bytes"
	"crypto/rand"
	"io"
	"net/http"
	"testing"

	"github.com/opencontainers/go-digest"
)

// BenchmarkGetBlob measures parallel GETs of one 1 MiB blob over loopback
// HTTP (the shape of make bench's 50-client load), so a profile of the
// serving path needs no external tools: go test -bench GetBlob -cpuprofile.
func BenchmarkGetBlob(b *testing.B) {
	ts := newServer(b, &Access{Anonymous: true}, "", nil)
	blob := make([]byte, 1<<20)
	rand.Read(blob)
	dg := digest.FromBytes(blob)
	if c := do(b, "POST", ts.URL+"/v2/bench/blobs/uploads/?digest="+dg.String(), blob).StatusCode; c != http.StatusCreated {
		b.Fatalf("push: %d", c)
	}
	url := ts.URL + "/v2/bench/blobs/" + dg.String()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	b.SetBytes(int64(len(blob)))
	b.SetParallelism(25) // 50 clients on 2 cores
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		var buf bytes.Buffer
		for pb.Next() {
			resp, err := client.Get(url)
			if err != nil {
				b.Error(err)
				return
			}
			buf.Reset()
			n, err := io.Copy(&buf, resp.Body)
			resp.Body.Close()
			if err != nil || n != int64(len(blob)) || resp.StatusCode != http.StatusOK {
				b.Errorf("GET: %d, %d bytes, %v", resp.StatusCode, n, err)
				return
			}
		}
	})
}
