package e2e

// as-serve under load (issue 19): 100 concurrent clients push and pull
// images on loopback for a bounded time while as-gc collects beside them;
// no answer the spec does not allow, goroutines and memory measured
// before, during and after, and every pushed manifest and layer pulled
// back byte-identical once the last GC has run.

import (
	"bufio"
	"bytes"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/artifactstore/artifact-store/internal/tooltest"
	"github.com/artifactstore/artifact-store/pkg/db"
)

// serveMetrics reads gauges from as-serve's /metrics.
func serveMetrics(t *testing.T, c *serveClient) (goroutines, rssMiB float64) {
	t.Helper()
	resp, b, err := c.do("GET", "/metrics", nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("/metrics: %v %v", err, resp)
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 2 {
			continue
		}
		v, _ := strconv.ParseFloat(f[1], 64)
		switch f[0] {
		case "go_goroutines":
			goroutines = v
		case "process_resident_memory_bytes":
			rssMiB = v / (1 << 20)
		}
	}
	return goroutines, rssMiB
}

type pushed struct {
	repo, tag string
	manifest  []byte
	layers    [][]byte
}

func TestReliabilityServeLoad(t *testing.T) {
	clients, dur := 100, 2*time.Second
	if full() {
		dur = 20 * time.Second
	}
	e := newEnv(t, db.SQLite)
	tooltest.Path(t, "as-gc")
	p := tooltest.StartServeProc(t, "", e.vars)
	tr := &http.Transport{MaxIdleConnsPerHost: clients, MaxConnsPerHost: clients}
	c := &serveClient{base: "http://" + p.Addr, hc: &http.Client{Timeout: time.Minute, Transport: tr}}
	g0, m0 := serveMetrics(t, c)

	stop := make(chan struct{})
	var mu sync.Mutex
	var lat []time.Duration
	var bad []string
	var all []pushed
	requests, busy := 0, 0
	// call makes one request; a 429 (allowed by the spec under load) is
	// retried after a moment, any other unexpected status is a failure.
	call := func(want int, method, path string, body []byte, hdr ...string) []byte {
		for {
			start := time.Now()
			resp, b, err := c.do(method, path, body, hdr...)
			d := time.Since(start)
			mu.Lock()
			requests++
			lat = append(lat, d)
			switch {
			case err != nil:
				bad = append(bad, fmt.Sprintf("%s %s: %v", method, path, err))
			case resp.StatusCode == http.StatusTooManyRequests:
				busy++
				mu.Unlock()
				time.Sleep(10 * time.Millisecond)
				continue
			case resp.StatusCode != want:
				bad = append(bad, fmt.Sprintf("%s %s: %s %s", method, path, resp.Status, b))
			}
			mu.Unlock()
			return b
		}
	}
	var wg sync.WaitGroup
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(i), 21))
			repo := fmt.Sprintf("load/c%d", i%20) // five clients share each repository
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				l1, l2 := randomBytes(rng, 4<<10+rng.IntN(60<<10)), randomBytes(rng, 1<<10)
				for _, b := range [][]byte{[]byte("{}"), l1, l2} {
					call(201, "POST", "/v2/"+repo+"/blobs/uploads/?digest="+sha256Digest(b), b)
				}
				m := imageManifest(l1, l2)
				tag := fmt.Sprintf("c%d-%d", i, n)
				call(201, "PUT", "/v2/"+repo+"/manifests/"+tag, m, "Content-Type", "application/vnd.oci.image.manifest.v1+json")
				got := call(200, "GET", "/v2/"+repo+"/manifests/"+tag, nil, "Accept", "application/vnd.oci.image.manifest.v1+json")
				if !bytes.Equal(got, m) {
					mu.Lock()
					bad = append(bad, "manifest "+repo+":"+tag+" pulled back different")
					mu.Unlock()
				}
				if got := call(200, "GET", "/v2/"+repo+"/blobs/"+sha256Digest(l1), nil); !bytes.Equal(got, l1) {
					mu.Lock()
					bad = append(bad, "layer of "+repo+":"+tag+" pulled back different")
					mu.Unlock()
				}
				mu.Lock()
				all = append(all, pushed{repo, tag, m, [][]byte{l1, l2}})
				mu.Unlock()
			}
		}()
	}
	// GC beside the load, with no grace: it must not take a pushed blob.
	gcRuns := 0
	gcDone := make(chan error, 1)
	go func() {
		for {
			select {
			case <-stop:
				gcDone <- nil
				return
			default:
			}
			cmd := exec.Command(tooltest.Path(t, "as-gc"), "--grace", "0")
			cmd.Env = append(os.Environ(), e.vars...)
			if out, err := cmd.CombinedOutput(); err != nil {
				gcDone <- fmt.Errorf("as-gc beside the load: %v\n%s", err, out)
				return
			}
			gcRuns++
		}
	}()
	time.Sleep(dur / 2) // the load runs for a bounded time: this is its length, not a synchronisation
	g1, m1 := serveMetrics(t, c)
	time.Sleep(dur / 2)
	close(stop)
	wg.Wait()
	if err := <-gcDone; err != nil {
		t.Fatal(err)
	}
	tr.CloseIdleConnections()
	e.ok("as-gc --grace 0 >/dev/null")
	// After: the goroutines of the load are gone (polled: connections
	// close asynchronously).
	var g2, m2 float64
	for i := 0; ; i++ {
		g2, m2 = serveMetrics(t, c)
		if g2 <= g0+10 {
			break
		}
		if i == 200 {
			t.Fatalf("goroutines: %v before, %v during, still %v after the load", g0, g1, g2)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if len(bad) > 0 {
		t.Fatalf("%d failures under load, the first: %s", len(bad), strings.Join(bad[:min(5, len(bad))], "\n"))
	}
	if m1 > m0+1024 || m2 > m0+1024 {
		t.Fatalf("resident memory %0.f MiB before, %0.f during, %0.f after: unbounded", m0, m1, m2)
	}
	if len(all) == 0 {
		t.Fatal("no image was pushed under load")
	}
	// Every pushed manifest and layer comes back, byte-identical, after GC.
	lost := 0
	for _, ps := range all {
		resp, got, err := c.do("GET", "/v2/"+ps.repo+"/manifests/"+ps.tag, nil, "Accept", "application/vnd.oci.image.manifest.v1+json")
		if err != nil || resp.StatusCode != 200 || !bytes.Equal(got, ps.manifest) {
			lost++
			continue
		}
		for _, l := range ps.layers {
			if resp, got, err := c.do("GET", "/v2/"+ps.repo+"/blobs/"+sha256Digest(l), nil); err != nil || resp.StatusCode != 200 || !bytes.Equal(got, l) {
				lost++
			}
		}
	}
	if lost > 0 {
		t.Fatalf("%d manifests or layers lost or changed of %d images after GC ran beside the load", lost, len(all))
	}
	p.Kill()
	e.checkInvariants(t.Context())
	slices.Sort(lat)
	p99 := lat[len(lat)*99/100]
	report(t, "load_clients", clients)
	report(t, "load_requests", requests)
	report(t, "load_images", len(all))
	report(t, "load_p99_ms", int(p99.Milliseconds()))
	report(t, "load_gc_runs", gcRuns)
	report(t, "load_goroutines_before", int(g0))
	report(t, "load_goroutines_during", int(g1))
	report(t, "load_goroutines_after", int(g2))
	report(t, "load_rss_mib_before", int(m0))
	report(t, "load_rss_mib_during", int(m1))
	report(t, "load_rss_mib_after", int(m2))
	t.Logf("%d clients for %v: %d requests (%d answered 429 and retried), %d images, p50 %v p99 %v; %d GC runs beside; goroutines %v/%v/%v, RSS %.0f/%.0f/%.0f MiB before/during/after",
		clients, dur, requests, busy, len(all), lat[len(lat)/2], p99, gcRuns, g0, g1, g2, m0, m1, m2)
}
