package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
)

// twoServers starts two as-serve processes over one PostgreSQL database
// and one S3 bucket. They share one --upload-dir: the staged bytes of an
// unfinished chunked upload are a file there (docs/adr/0012-as-serve.md).
func twoServers(t *testing.T) (a, b string) {
	t.Helper()
	env := postgresS3(t)
	up := "--upload-dir=" + filepath.Join(t.TempDir(), "uploads")
	return startServeOn(t, env, up), startServeOn(t, env, up)
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

func do(t *testing.T, method, u string, h http.Header, body []byte, want int) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, u, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range h {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != want {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("%s %s: %d, want %d: %s", method, u, resp.StatusCode, want, b)
	}
	return resp
}

func readAll(t *testing.T, r *http.Response) []byte {
	t.Helper()
	defer r.Body.Close()
	b, err := io.ReadAll(r.Body)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestManyServersOneStore pushes through server A (a chunked upload
// started on A and finished on B, a config blob, a manifest by tag) and
// pulls everything back through B byte-identical.
func TestManyServersOneStore(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	a, b := twoServers(t)
	A, B := "http://"+a, "http://"+b

	layer := bytes.Repeat([]byte("many servers, one store\n"), 50000)
	half := len(layer) / 2
	resp := do(t, "POST", A+"/v2/app/blobs/uploads/", nil, nil, http.StatusAccepted)
	resp.Body.Close()
	loc := resp.Header.Get("Location")
	resp = do(t, "PATCH", A+loc, http.Header{"Content-Type": {"application/octet-stream"},
		"Content-Range": {fmt.Sprintf("0-%d", half-1)}}, layer[:half], http.StatusAccepted)
	resp.Body.Close()
	loc = resp.Header.Get("Location")
	// B sees the session A started: status, then the rest and the digest.
	resp = do(t, "GET", B+loc, nil, nil, http.StatusNoContent)
	resp.Body.Close()
	if got, want := resp.Header.Get("Range"), fmt.Sprintf("0-%d", half-1); got != want {
		t.Fatalf("B: upload Range %q, want %q", got, want)
	}
	sep := "?"
	if strings.Contains(loc, "?") {
		sep = "&"
	}
	resp = do(t, "PUT", B+loc+sep+"digest="+url.QueryEscape(sha(layer)), http.Header{"Content-Type": {"application/octet-stream"}},
		layer[half:], http.StatusCreated)
	resp.Body.Close()

	config := []byte(`{"architecture":"amd64","os":"linux"}`)
	resp = do(t, "POST", A+"/v2/app/blobs/uploads/?digest="+url.QueryEscape(sha(config)),
		http.Header{"Content-Type": {"application/octet-stream"}}, config, http.StatusCreated)
	resp.Body.Close()
	manifest := []byte(fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",`+
		`"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%d},`+
		`"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"%s","size":%d}]}`,
		sha(config), len(config), sha(layer), len(layer)))
	mt := http.Header{"Content-Type": {"application/vnd.oci.image.manifest.v1+json"}}
	resp = do(t, "PUT", A+"/v2/app/manifests/v1", mt, manifest, http.StatusCreated)
	resp.Body.Close()

	got := do(t, "GET", B+"/v2/app/manifests/v1", http.Header{"Accept": {"application/vnd.oci.image.manifest.v1+json"}}, nil, http.StatusOK)
	if d := got.Header.Get("Docker-Content-Digest"); d != sha(manifest) {
		t.Errorf("B: manifest digest %s, want %s", d, sha(manifest))
	}
	if m := readAll(t, got); !bytes.Equal(m, manifest) {
		t.Errorf("B: manifest differs:\n%s\nwant\n%s", m, manifest)
	}
	for _, blob := range [][]byte{layer, config} {
		if g := readAll(t, do(t, "GET", B+"/v2/app/blobs/"+sha(blob), nil, nil, http.StatusOK)); !bytes.Equal(g, blob) {
			t.Errorf("B: blob %s differs (%d bytes, want %d)", sha(blob), len(g), len(blob))
		}
	}
	tags := string(readAll(t, do(t, "GET", B+"/v2/app/tags/list", nil, nil, http.StatusOK)))
	if !strings.Contains(tags, `"v1"`) {
		t.Errorf("B: tags %s lack v1", tags)
	}
}

// TestConformanceManyServers runs the conformance suite against two
// servers on one PostgreSQL + S3 store behind a round-robin proxy: every
// request goes to the other server than the one before.
func TestConformanceManyServers(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	bin := conformanceBin(t)
	a, b := twoServers(t)
	var n atomic.Uint64
	backends := []string{a, b}
	var hits [2]atomic.Uint64
	proxy := &httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) {
		i := n.Add(1) % 2
		hits[i].Add(1)
		r.SetURL(&url.URL{Scheme: "http", Host: backends[i]})
		r.Out.Host = r.In.Host
	}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: proxy}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	runConformance(t, bin, ln.Addr().String())
	t.Logf("requests: %d to A, %d to B", hits[0].Load(), hits[1].Load())
	if hits[0].Load() == 0 || hits[1].Load() == 0 {
		t.Fatalf("the proxy did not alternate: %d, %d", hits[0].Load(), hits[1].Load())
	}
}
