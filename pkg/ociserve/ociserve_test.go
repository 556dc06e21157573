package ociserve

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/artifactstore/artifact-store/pkg/dataplane"
	"github.com/artifactstore/artifact-store/pkg/db/dbtest"
	"github.com/artifactstore/artifact-store/pkg/events"
	"github.com/artifactstore/artifact-store/pkg/registry"
	"github.com/opencontainers/go-digest"
)

func newServer(t testing.TB, access *Access, uploadDir string, reg *registry.Registry) *httptest.Server {
	t.Helper()
	if reg == nil {
		dp, closeFn, err := dataplane.OpenLocal("local", t.TempDir(), false)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { closeFn() })
		reg = registry.New(dbtest.SQLite(t), dp, registry.Options{Actor: "server"})
	}
	if uploadDir == "" {
		uploadDir = t.TempDir()
	}
	s, err := New(Options{Registry: reg, UploadDir: uploadDir, Access: access, Metrics: NewMetrics()})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s)
	t.Cleanup(ts.Close)
	return ts
}

func do(t testing.TB, method, url string, body []byte, hdr ...string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

// TestAccess: without a token nothing is served, a read token cannot
// push, a token reaches only its repositories, and the token's name (never
// its secret) is the actor of the events it causes.
func TestAccess(t *testing.T) {
	secretW, lineW, err := NewToken("ci", ScopeWrite, []string{"app/**"})
	if err != nil {
		t.Fatal(err)
	}
	secretR, lineR, _ := NewToken("reader", ScopeRead, []string{"**"})
	access, err := ParseAccess(strings.NewReader("# tokens\n" + lineW + "\n" + lineR + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	d := dbtest.SQLite(t)
	dp, closeFn, _ := dataplane.OpenLocal("local", t.TempDir(), false)
	defer closeFn()
	reg := registry.New(d, dp, registry.Options{Actor: "server"})
	ts := newServer(t, access, "", reg)
	blob := []byte("bytes")
	dg := digest.FromBytes(blob)
	push := func(repo string, auth ...string) int {
		return do(t, "POST", ts.URL+"/v2/"+repo+"/blobs/uploads/?digest="+dg.String(), blob, auth...).StatusCode
	}
	if c := do(t, "GET", ts.URL+"/v2/", nil).StatusCode; c != 401 {
		t.Fatalf("anonymous /v2/: %d", c)
	}
	if c := push("app/x"); c != 401 {
		t.Fatalf("anonymous push: %d", c)
	}
	if c := push("app/x", "Authorization", "Bearer "+secretR); c != 403 {
		t.Fatalf("read token push: %d", c)
	}
	if c := push("other", "Authorization", "Bearer "+secretW); c != 403 {
		t.Fatalf("push outside the token's patterns: %d", c)
	}
	if c := push("app/x", "Authorization", "Bearer wrong"); c != 401 {
		t.Fatalf("wrong secret: %d", c)
	}
	req, _ := http.NewRequest("POST", ts.URL+"/v2/app/x/blobs/uploads/?digest="+dg.String(), bytes.NewReader(blob))
	req.SetBasicAuth("ci", secretW)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 201 {
		t.Fatalf("basic auth push: %v %v", resp.StatusCode, err)
	}
	resp.Body.Close()
	if c := do(t, "GET", ts.URL+"/v2/app/x/blobs/"+dg.String(), nil, "Authorization", "Bearer "+secretR).StatusCode; c != 200 {
		t.Fatalf("read token pull: %d", c)
	}
	evs, err := events.New(d).Range(context.Background(), 0, 100)
	if err != nil || len(evs) == 0 {
		t.Fatalf("events: %v", err)
	}
	for _, ev := range evs {
		if ev.Actor != "ci" {
			t.Fatalf("event %d actor %q, want the token's name", ev.Seq, ev.Actor)
		}
		if bytes.Contains(ev.Payload, []byte(secretW)) {
			t.Fatal("a secret is in an event")
		}
	}
}

// TestResumeAfterRestart: an upload begun on one server is finished by
// another over the same store and upload directory (a restart).
func TestResumeAfterRestart(t *testing.T) {
	d := dbtest.SQLite(t)
	dp, closeFn, _ := dataplane.OpenLocal("local", t.TempDir(), false)
	defer closeFn()
	reg := registry.New(d, dp, registry.Options{Actor: "server"})
	up := t.TempDir()
	a := newServer(t, &Access{Anonymous: true}, up, reg)
	blob := []byte("first half|second half")
	resp := do(t, "POST", a.URL+"/v2/app/blobs/uploads/", nil)
	loc := resp.Header.Get("Location")
	if resp.StatusCode != 202 || loc == "" {
		t.Fatalf("start: %d %q", resp.StatusCode, loc)
	}
	if c := do(t, "PATCH", a.URL+loc, blob[:11], "Content-Range", "0-10").StatusCode; c != 202 {
		t.Fatalf("patch: %d", c)
	}
	a.Close()
	b := newServer(t, &Access{Anonymous: true}, up, reg)
	resp = do(t, "GET", b.URL+loc, nil)
	if resp.StatusCode != 204 || resp.Header.Get("Range") != "0-10" {
		t.Fatalf("status after restart: %d %q", resp.StatusCode, resp.Header.Get("Range"))
	}
	if c := do(t, "PATCH", b.URL+loc, blob[5:], "Content-Range", "5-21").StatusCode; c != 416 {
		t.Fatalf("out-of-order chunk: %d, want 416", c)
	}
	dg := digest.FromBytes(blob)
	if c := do(t, "PUT", b.URL+loc+"?digest="+dg.String(), blob[11:], "Content-Range", "11-21").StatusCode; c != 201 {
		t.Fatalf("finish: %d", c)
	}
	bl, err := reg.OCIBlobInfo(context.Background(), "app", dg)
	if err != nil || bl.Size != int64(len(blob)) {
		t.Fatalf("blob after resume: %+v %v", bl, err)
	}
}

// TestNoPanicReachesClient: a handler that panics gives a 500 JSON error.
func TestNoPanicReachesClient(t *testing.T) {
	ts := newServer(t, &Access{Anonymous: true}, "", nil)
	// A route whose handler panics stands in for any bug.
	old := routes[0].h
	routes[0].h = func(*Server, http.ResponseWriter, *http.Request, *request) error { panic("boom") }
	defer func() { routes[0].h = old }()
	resp := do(t, "GET", ts.URL+"/v2/", nil)
	if resp.StatusCode != 500 || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("panic answered %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
}

func TestParseContentRange(t *testing.T) {
	for s, want := range map[string][2]int64{"0-0": {0, 0}, "5-22": {5, 22}, "bytes 1-2/3": {1, 2}, "bytes 1-2/*": {1, 2}} {
		a, b, err := parseContentRange(s)
		if err != nil || a != want[0] || b != want[1] {
			t.Errorf("%q: %d-%d %v", s, a, b, err)
		}
	}
	for _, s := range []string{"", "-", "2-1", "a-b", "-1-2", "1-", "0-99999999999999999999", "+1-2"} {
		if _, _, err := parseContentRange(s); err == nil {
			t.Errorf("%q accepted", s)
		}
	}
}

func TestParsePath(t *testing.T) {
	for p, want := range map[string]struct {
		k         kind
		name, arg string
	}{
		"/v2/":                                {kindBase, "", ""},
		"/v2/a/b/manifests/latest":            {kindManifest, "a/b", "latest"},
		"/v2/a/blobs/uploads/":                {kindUploads, "a", ""},
		"/v2/a/blobs/uploads":                 {kindUploads, "a", ""},
		"/v2/a/blobs/uploads/x":               {kindUpload, "a", "x"},
		"/v2/a/blobs/sha256:x":                {kindBlob, "a", "sha256:x"},
		"/v2/blobs/manifests/blobs/tags/list": {kindTags, "blobs/manifests/blobs", ""},
		"/v2/a/referrers/sha256:x":            {kindReferrers, "a", "sha256:x"},
		"/v2/manifests/x":                     {kindNone, "", ""},
		"/v3/a/tags/list":                     {kindNone, "", ""},
	} {
		k, n, a := parsePath(p)
		if k != want.k || n != want.name || a != want.arg {
			t.Errorf("%s: %v %q %q", p, k, n, a)
		}
	}
}

// TestPutLastChunk: the PUT that closes an upload streams its chunk into
// the store behind the staged bytes. A last chunk shorter than its
// Content-Range is SIZE_INVALID and a wrong digest DIGEST_INVALID; either
// leaves the staged bytes as they were, so the right PUT still completes.
func TestPutLastChunk(t *testing.T) {
	ts := newServer(t, &Access{Anonymous: true}, "", nil)
	blob := []byte("first chunk|second chunk")
	dg := digest.FromBytes(blob)
	resp := do(t, "POST", ts.URL+"/v2/app/blobs/uploads/", nil)
	loc := ts.URL + resp.Header.Get("Location")
	if resp = do(t, "PATCH", loc, blob[:12], "Content-Range", "0-11", "Content-Type", "application/octet-stream"); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("PATCH: %s", resp.Status)
	}
	sep := "?"
	if strings.Contains(loc, "?") {
		sep = "&"
	}
	code := func(resp *http.Response, body []byte) string {
		t.Helper()
		var e errorBody
		if err := json.Unmarshal(body, &e); err != nil || len(e.Errors) == 0 {
			t.Fatalf("%s: not an error body: %q", resp.Status, body)
		}
		return e.Errors[0].Code
	}
	put := func(d digest.Digest, body []byte, cr string) (*http.Response, []byte) {
		t.Helper()
		req, _ := http.NewRequest("PUT", loc+sep+"digest="+d.String(), bytes.NewReader(body))
		req.Header.Set("Content-Range", cr)
		req.ContentLength = -1 // chunked, so the server sees a short body
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, b
	}
	if resp, b := put(dg, blob[12:20], "12-23"); resp.StatusCode != http.StatusBadRequest || code(resp, b) != CodeSizeInvalid {
		t.Fatalf("short last chunk: %s %s", resp.Status, b)
	}
	if resp, b := put(digest.FromString("other"), blob[12:], "12-23"); resp.StatusCode != http.StatusBadRequest || code(resp, b) != CodeDigestInvalid {
		t.Fatalf("wrong digest: %s %s", resp.Status, b)
	}
	if resp = do(t, "GET", loc, nil); resp.StatusCode != http.StatusNoContent || resp.Header.Get("Range") != "0-11" {
		t.Fatalf("status after failed PUTs: %s Range %q, want 204 0-11", resp.Status, resp.Header.Get("Range"))
	}
	if resp, b := put(dg, blob[12:], "12-23"); resp.StatusCode != http.StatusCreated {
		t.Fatalf("PUT: %s %s", resp.Status, b)
	}
	req, _ := http.NewRequest("GET", ts.URL+"/v2/app/blobs/"+dg.String(), nil)
	got, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer got.Body.Close()
	if b, _ := io.ReadAll(got.Body); !bytes.Equal(b, blob) {
		t.Fatalf("blob reads back %q, want %q", b, blob)
	}
}

// TestGetBlobBothPaths: a blob under sendfileMax (sendfile) and one over
// it (copied) come back exact, whole and as ranges that start and end
// inside the file and cross the idleChunk boundary.
func TestGetBlobBothPaths(t *testing.T) {
	ts := newServer(t, &Access{Anonymous: true}, "", nil)
	for _, size := range []int{idleChunk + 5, sendfileMax + idleChunk + 7} {
		blob := make([]byte, size)
		for i := range blob {
			blob[i] = byte(i*7 + i>>11)
		}
		dg := digest.FromBytes(blob)
		if c := do(t, "POST", ts.URL+"/v2/big/blobs/uploads/?digest="+dg.String(), blob).StatusCode; c != http.StatusCreated {
			t.Fatalf("push %d bytes: %d", size, c)
		}
		for _, r := range [][2]int{{0, size - 1}, {3, size - 2}, {idleChunk - 1, idleChunk + 1}, {size - 1, size - 1}} {
			req, _ := http.NewRequest("GET", ts.URL+"/v2/big/blobs/"+dg.String(), nil)
			if r != [2]int{0, size - 1} {
				req.Header.Set("Range", "bytes="+itoa(int64(r[0]))+"-"+itoa(int64(r[1])))
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil || !bytes.Equal(got, blob[r[0]:r[1]+1]) {
				t.Fatalf("%d-byte blob, range %v: %d bytes (status %d, %v), want %d exact", size, r, len(got), resp.StatusCode, err, r[1]-r[0]+1)
			}
		}
	}
}

// TestCollectingIsRetryable: a push that met a sweep is answered with the
// spec's TOOMANYREQUESTS and Retry-After, which clients retry; not DENIED,
// on which they give up.
func TestCollectingIsRetryable(t *testing.T) {
	err := fmt.Errorf("%w: %w: blake3:…; retry the push", registry.ErrConflict, registry.ErrCollecting)
	ae := toAPIError(err, CodeBlobUnknown)
	if ae.Status != http.StatusTooManyRequests || ae.Code != CodeTooManyRequests || ae.Header.Get("Retry-After") == "" {
		t.Fatalf("a push that met a sweep: %d %s %v; want 429 TOOMANYREQUESTS with Retry-After", ae.Status, ae.Code, ae.Header)
	}
}

// TestStaleStagedFilesRemoved: a server starting on an upload directory
// removes the staged bytes of sessions that are closed (a server killed
// between committing an upload's last PUT and removing its file left them,
// and nothing else ever would) and keeps those of open sessions, whose
// uploads then resume.
func TestStaleStagedFilesRemoved(t *testing.T) {
	d := dbtest.SQLite(t)
	dp, closeFn, _ := dataplane.OpenLocal("local", t.TempDir(), false)
	defer closeFn()
	reg := registry.New(d, dp, registry.Options{Actor: "server"})
	up := t.TempDir()
	a := newServer(t, &Access{Anonymous: true}, up, reg)
	start := func() string {
		resp := do(t, "POST", a.URL+"/v2/app/blobs/uploads/", nil)
		if resp.StatusCode != 202 {
			t.Fatalf("start: %d", resp.StatusCode)
		}
		loc := resp.Header.Get("Location")
		if c := do(t, "PATCH", a.URL+loc, []byte("staged"), "Content-Range", "0-5").StatusCode; c != 202 {
			t.Fatalf("patch: %d", c)
		}
		return loc
	}
	open, closed := start(), start()
	closedID := closed[strings.LastIndex(closed, "/")+1:]
	// The session closes in the log but its file stays, as after a kill.
	if err := reg.CancelOCIUpload(context.Background(), "app", closedID, "test"); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-time.Hour) // left by a server killed an hour ago
	for _, loc := range []string{open, closed} {
		if err := os.Chtimes(filepath.Join(up, loc[strings.LastIndex(loc, "/")+1:]), old, old); err != nil {
			t.Fatal(err)
		}
	}
	a.Close()
	b := newServer(t, &Access{Anonymous: true}, up, reg)
	if _, err := os.Stat(filepath.Join(up, closedID)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the staged file of a closed session survived the restart: %v", err)
	}
	resp := do(t, "GET", b.URL+open, nil)
	if resp.StatusCode != 204 || resp.Header.Get("Range") != "0-5" {
		t.Fatalf("the open session after the restart: %d %q", resp.StatusCode, resp.Header.Get("Range"))
	}
}
