// Command ociload is a benchmark peer for make bench (scripts/bench/serve.sh):
// a small HTTP load generator for OCI registries, and the plain
// http.FileServer that as-serve's blob GET is compared with.
//
//	ociload get  [-c 50] [-n 2000] URL          concurrent GETs of one URL
//	ociload push [-c 50] [-size 16MiB] BASE REPO concurrent monolithic blob uploads
//	ociload files -addr HOST:PORT DIR           serve DIR with http.FileServer
//
// get and push print one line of figures: requests, bytes, seconds,
// MB/s, and the latency p50 and p99 in milliseconds. Any non-2xx answer or
// a short body is an error (exit 1): a benchmark of failures measures nothing.
package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	var err error
	switch os.Args[1] {
	case "get":
		err = get(os.Args[2:])
	case "push":
		err = push(os.Args[2:])
	case "files":
		err = files(os.Args[2:])
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "ociload:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: ociload get [-c N] [-n N] URL | push [-c N] [-size BYTES] BASE REPO | files -addr HOST:PORT DIR")
	os.Exit(2)
}

// result is what one request took.
type result struct {
	bytes int64
	dur   time.Duration
}

// run calls do n times from c goroutines and prints the figures line.
func run(c, n int, do func(i int) (int64, error)) error {
	var (
		next    atomic.Int64
		mu      sync.Mutex
		results []result
		first   error
		wg      sync.WaitGroup
	)
	start := time.Now()
	for range c {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				t0 := time.Now()
				b, err := do(i)
				d := time.Since(t0)
				mu.Lock()
				if err != nil && first == nil {
					first = err
				}
				results = append(results, result{b, d})
				mu.Unlock()
				if err != nil {
					return
				}
			}
		}()
	}
	wg.Wait()
	if first != nil {
		return first
	}
	total := time.Since(start)
	sort.Slice(results, func(i, j int) bool { return results[i].dur < results[j].dur })
	var sum int64
	for _, r := range results {
		sum += r.bytes
	}
	pct := func(p float64) float64 {
		return float64(results[int(p*float64(len(results)-1))].dur) / float64(time.Millisecond)
	}
	fmt.Printf("requests=%d bytes=%d seconds=%.3f MBps=%.1f p50ms=%.2f p99ms=%.2f\n",
		len(results), sum, total.Seconds(), float64(sum)/total.Seconds()/1e6, pct(0.50), pct(0.99))
	return nil
}

func client(c int) *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = c
	t.MaxConnsPerHost = c
	return &http.Client{Transport: t}
}

func get(args []string) error {
	fs := flag.NewFlagSet("get", flag.ExitOnError)
	c := fs.Int("c", 50, "concurrent clients")
	n := fs.Int("n", 2000, "requests in all")
	fs.Parse(args)
	if fs.NArg() != 1 {
		usage()
	}
	url, hc := fs.Arg(0), client(*c)
	return run(*c, *n, func(int) (int64, error) {
		resp, err := hc.Get(url)
		if err != nil {
			return 0, err
		}
		defer resp.Body.Close()
		got, err := io.Copy(io.Discard, resp.Body)
		if err != nil {
			return got, err
		}
		if resp.StatusCode != http.StatusOK {
			return got, fmt.Errorf("GET %s: %s", url, resp.Status)
		}
		if resp.ContentLength >= 0 && got != resp.ContentLength {
			return got, fmt.Errorf("GET %s: %d of %d bytes", url, got, resp.ContentLength)
		}
		return got, nil
	})
}

// blob returns the i-th upload's bytes: random, different for every i, so
// no upload is a duplicate the server may skip.
func blob(i int, size int64) []byte {
	b := make([]byte, size)
	r := rand.NewChaCha8([32]byte{byte(i), byte(i >> 8), byte(i >> 16), 7})
	r.Read(b)
	return b
}

func push(args []string) error {
	fs := flag.NewFlagSet("push", flag.ExitOnError)
	c := fs.Int("c", 50, "concurrent uploads (and uploads in all)")
	size := fs.Int64("size", 16<<20, "bytes per blob")
	fs.Parse(args)
	if fs.NArg() != 2 {
		usage()
	}
	base, repo, hc := strings.TrimSuffix(fs.Arg(0), "/"), fs.Arg(1), client(*c)
	// Each goroutine makes its blob just before uploading it, so the load
	// generator holds at most c blobs; the digest is part of the request.
	return run(*c, *c, func(i int) (int64, error) {
		b := blob(i, *size)
		sum := sha256.Sum256(b)
		dgst := "sha256:" + hex.EncodeToString(sum[:])
		resp, err := hc.Post(base+"/v2/"+repo+"/blobs/uploads/", "", nil)
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		loc := resp.Header.Get("Location")
		if resp.StatusCode != http.StatusAccepted || loc == "" {
			return 0, fmt.Errorf("POST upload: %s", resp.Status)
		}
		if strings.HasPrefix(loc, "/") {
			loc = base + loc
		}
		sep := "?"
		if strings.Contains(loc, "?") {
			sep = "&"
		}
		req, err := http.NewRequest(http.MethodPut, loc+sep+"digest="+dgst, bytes.NewReader(b))
		if err != nil {
			return 0, err
		}
		req.Header.Set("Content-Type", "application/octet-stream")
		resp, err = hc.Do(req)
		if err != nil {
			return 0, err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusCreated {
			return 0, fmt.Errorf("PUT upload: %s", resp.Status)
		}
		return *size, nil
	})
}

func files(args []string) error {
	fs := flag.NewFlagSet("files", flag.ExitOnError)
	addr := fs.String("addr", "127.0.0.1:0", "listen address")
	fs.Parse(args)
	if fs.NArg() != 1 {
		usage()
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: http.FileServer(http.Dir(fs.Arg(0))), ReadHeaderTimeout: 10 * time.Second}
	err = srv.Serve(ln)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}
