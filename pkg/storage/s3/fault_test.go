package s3_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/artifactstore/artifact-store/pkg/identity"
	"github.com/artifactstore/artifact-store/pkg/storage"
	"github.com/artifactstore/artifact-store/pkg/storage/s3"
	"github.com/artifactstore/artifact-store/pkg/storage/s3/s3test"
)

func data(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, 1))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func addrOf(b []byte) identity.Digest {
	h := identity.NewHasher()
	h.Write(b)
	return h.Sum().BLAKE3
}

func put(ctx context.Context, be storage.Backend, b []byte) (identity.Digest, error) {
	w, err := be.Create(ctx)
	if err != nil {
		return identity.Digest{}, err
	}
	defer w.Cancel(ctx)
	if _, err := w.Write(b); err != nil {
		return identity.Digest{}, err
	}
	addr := addrOf(b)
	return addr, w.Commit(ctx, addr)
}

// op names the S3 operation of a request.
func op(r *http.Request) string {
	q := r.URL.Query()
	copySrc := r.Header.Get("X-Amz-Copy-Source") != ""
	path := strings.Trim(r.URL.Path, "/")
	switch r.Method {
	case http.MethodHead:
		if !strings.Contains(path, "/") {
			return "HeadBucket"
		}
		return "HeadObject"
	case http.MethodPut:
		switch {
		case q.Has("partNumber") && copySrc:
			return "UploadPartCopy"
		case q.Has("partNumber"):
			return "UploadPart"
		case copySrc:
			return "CopyObject"
		}
		return "PutObject"
	case http.MethodPost:
		if q.Has("uploads") {
			return "CreateMultipartUpload"
		}
		return "CompleteMultipartUpload"
	case http.MethodDelete:
		if q.Has("uploadId") {
			return "AbortMultipartUpload"
		}
		return "DeleteObject"
	case http.MethodGet:
		switch {
		case q.Has("list-type"):
			return "ListObjectsV2"
		case q.Has("uploads"):
			return "ListMultipartUploads"
		}
		return "GetObject"
	}
	return r.Method
}

// recorder is an http.RoundTripper that records every request's operation
// and checksum header, and can corrupt request bodies.
type recorder struct {
	mu      sync.Mutex
	ops     []string
	sums    map[string][]string // operation → x-amz-checksum-sha256 values
	uploads map[[2]string]bool  // {key path, upload id} of every UploadPart
	corrupt func(op string) bool
}

func (rt *recorder) RoundTrip(r *http.Request) (*http.Response, error) {
	o := op(r)
	rt.mu.Lock()
	rt.ops = append(rt.ops, o)
	if rt.sums == nil {
		rt.sums = map[string][]string{}
	}
	if v := r.Header.Get("X-Amz-Checksum-Sha256"); v != "" {
		rt.sums[o] = append(rt.sums[o], v)
	}
	if o == "UploadPart" {
		rt.addUpload(r.URL.Path, r.URL.Query().Get("uploadId"))
	}
	corrupt := rt.corrupt != nil && rt.corrupt(o)
	rt.mu.Unlock()
	if corrupt && r.Body != nil {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			return nil, err
		}
		r.Body.Close()
		if len(b) > 0 {
			b[len(b)/2] ^= 0x01 // one bit flipped in transit
		}
		r = r.Clone(r.Context())
		r.Body = io.NopCloser(bytes.NewReader(b))
		r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
	}
	resp, err := http.DefaultTransport.RoundTrip(r)
	if err == nil && o == "CreateMultipartUpload" && resp.StatusCode == http.StatusOK {
		b, rerr := io.ReadAll(resp.Body)
		resp.Body.Close()
		if rerr != nil {
			return nil, rerr
		}
		if m := uploadIDRe.FindSubmatch(b); m != nil {
			rt.mu.Lock()
			rt.addUpload(r.URL.Path, string(m[1]))
			rt.mu.Unlock()
		}
		resp.Body = io.NopCloser(bytes.NewReader(b))
	}
	return resp, err
}

var uploadIDRe = regexp.MustCompile(`<UploadId>([^<]+)</UploadId>`)

// addUpload records an upload; rt.mu is held.
func (rt *recorder) addUpload(path, id string) {
	if rt.uploads == nil {
		rt.uploads = map[[2]string]bool{}
	}
	rt.uploads[[2]string{path, id}] = true
}

func (rt *recorder) reset() []string {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	o := rt.ops
	rt.ops = nil
	return o
}

func count(ops []string, name string) int {
	n := 0
	for _, o := range ops {
		if o == name {
			n++
		}
	}
	return n
}

func newHTTPClient(rt *recorder) *http.Client { return &http.Client{Transport: rt} }

func recorded(t *testing.T) (*s3.Backend, *recorder, *s3test.Server, s3test.Location) {
	rt := &recorder{}
	b, srv, loc := open(t, func(o *s3.Options) { o.HTTPClient = newHTTPClient(rt) })
	return b, rt, srv, loc
}

// incomplete lists multipart uploads and temporary objects in the bucket
// with the plain SDK, behind the backend's back. Besides the listing,
// every upload rt saw created is looked up by ListParts, which must fail
// once it is aborted (a check that does not rely on the server's listing).
func incomplete(t *testing.T, srv *s3test.Server, loc s3test.Location, rt *recorder) []string {
	t.Helper()
	ctx := context.Background()
	var left []string
	ups, err := srv.Client().ListMultipartUploads(ctx, &awss3.ListMultipartUploadsInput{Bucket: &loc.Bucket})
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range ups.Uploads {
		left = append(left, "upload "+aws.ToString(u.Key))
	}
	if rt != nil {
		rt.mu.Lock()
		for u := range rt.uploads {
			key := strings.TrimPrefix(u[0], "/"+loc.Bucket+"/")
			_, err := srv.Client().ListParts(ctx, &awss3.ListPartsInput{Bucket: &loc.Bucket, Key: &key, UploadId: &u[1]})
			if err == nil {
				left = append(left, "upload "+key+" (ListParts succeeds)")
			}
		}
		if len(rt.uploads) == 0 {
			t.Log("no multipart upload was seen")
		}
		rt.mu.Unlock()
	}
	objs, err := srv.Client().ListObjectsV2(ctx, &awss3.ListObjectsV2Input{Bucket: &loc.Bucket})
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range objs.Contents {
		if strings.Contains(aws.ToString(o.Key), "tmp/") {
			left = append(left, "object "+aws.ToString(o.Key))
		}
	}
	return left
}

// TestChecksumsSent: every PUT of bytes carries the SHA-256 of exactly
// those bytes, so that the server checks them.
func TestChecksumsSent(t *testing.T) {
	b, rt, _, _ := recorded(t)
	ctx := t.Context()
	small := data(1, 1000)
	if _, err := put(ctx, b, small); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(small)
	if got := rt.sums["PutObject"]; len(got) != 1 || got[0] != base64.StdEncoding.EncodeToString(sum[:]) {
		t.Errorf("PutObject checksum headers %q, want the SHA-256 of the object", got)
	}
	big := data(2, 12<<20) // 5 MiB parts: 3 parts
	if _, err := put(ctx, b, big); err != nil {
		t.Fatal(err)
	}
	got := rt.sums["UploadPart"]
	if len(got) != 3 {
		t.Fatalf("UploadPart checksum headers %q, want 3", got)
	}
	want := map[string]bool{}
	for off := 0; off < len(big); off += s3.MinPartSize {
		s := sha256.Sum256(big[off:min(off+s3.MinPartSize, len(big))])
		want[base64.StdEncoding.EncodeToString(s[:])] = true
	}
	for _, g := range got {
		if !want[g] {
			t.Errorf("UploadPart checksum %s is not the SHA-256 of a part", g)
		}
	}
}

// TestServerChecksWrongChecksum: the server refuses bytes whose
// x-amz-checksum-sha256 does not match (what makes sending it worth it).
func TestServerChecksWrongChecksum(t *testing.T) {
	srv := s3test.Start(t)
	loc := srv.NewBucket(t)
	wrong := sha256.Sum256([]byte("other bytes"))
	_, err := srv.Client().PutObject(t.Context(), &awss3.PutObjectInput{
		Bucket: &loc.Bucket, Key: aws.String(loc.Prefix + "x"), Body: bytes.NewReader([]byte("these bytes")),
		ChecksumAlgorithm: types.ChecksumAlgorithmSha256, ChecksumSHA256: aws.String(base64.StdEncoding.EncodeToString(wrong[:])),
	})
	if err == nil {
		t.Fatalf("%s server accepted a PUT whose SHA-256 checksum does not match its bytes", srv.Kind)
	}
	t.Logf("refused as expected: %v", err)
}

// TestCorruptedInTransit: a bit flipped on the wire is refused by the
// server; Commit fails and leaves nothing.
func TestCorruptedInTransit(t *testing.T) {
	for _, tc := range []struct {
		name string
		size int
		op   string
	}{{"single", 1000, "PutObject"}, {"multipart", 11 << 20, "UploadPart"}} {
		t.Run(tc.name, func(t *testing.T) {
			b, rt, srv, loc := recorded(t)
			rt.corrupt = func(o string) bool { return o == tc.op }
			body := data(3, tc.size)
			addr, err := put(t.Context(), b, body)
			if err == nil {
				t.Fatal("a put corrupted in transit succeeded")
			}
			t.Logf("refused: %v", err)
			// The payload is not signed (UNSIGNED-PAYLOAD): the checksum is
			// what caught it.
			if srv.Kind == "minio" && !strings.Contains(err.Error(), "XAmzContentChecksumMismatch") {
				t.Errorf("refused for another reason than the checksum: %v", err)
			}
			if _, err := b.Head(t.Context(), addr); !errors.Is(err, storage.ErrNotFound) {
				t.Errorf("Head after a refused put: %v, want ErrNotFound", err)
			}
			if left := incomplete(t, srv, loc, rt); len(left) > 0 {
				t.Errorf("left behind: %q", left)
			}
		})
	}
}

// TestSecondPutIsCheap: a put of an object that exists costs one HEAD and
// sends no bytes (small objects) or publishes nothing (multipart ones:
// the parts were streamed before the address was known; the upload is
// aborted).
func TestSecondPutIsCheap(t *testing.T) {
	b, rt, srv, loc := recorded(t)
	ctx := t.Context()
	small, big := data(4, 4096), data(5, 6<<20)
	for _, obj := range [][]byte{small, big} {
		if _, err := put(ctx, b, obj); err != nil {
			t.Fatal(err)
		}
	}
	rt.reset()
	if _, err := put(ctx, b, small); err != nil {
		t.Fatal(err)
	}
	if ops := rt.reset(); len(ops) != 1 || ops[0] != "HeadObject" {
		t.Errorf("second put of a small object sent %q, want one HeadObject", ops)
	}
	if _, err := put(ctx, b, big); err != nil {
		t.Fatal(err)
	}
	ops := rt.reset()
	for _, bad := range []string{"PutObject", "CopyObject", "CompleteMultipartUpload"} {
		if count(ops, bad) > 0 {
			t.Errorf("second put of a multipart object sent %s: %q", bad, ops)
		}
	}
	if count(ops, "AbortMultipartUpload") != 1 {
		t.Errorf("second put of a multipart object: %q, want its upload aborted", ops)
	}
	if left := incomplete(t, srv, loc, rt); len(left) > 0 {
		t.Errorf("left behind: %q", left)
	}
}

// TestCancelLeavesNothing: Cancel and a cancelled context in the middle of
// a multipart upload leave no upload and no temporary key.
func TestCancelLeavesNothing(t *testing.T) {
	body := data(6, 13<<20)
	t.Run("Cancel", func(t *testing.T) {
		b, rt, srv, loc := recorded(t)
		w, err := b.Create(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(body); err != nil {
			t.Fatal(err)
		}
		if err := w.Cancel(t.Context()); err != nil {
			t.Fatal(err)
		}
		ops := rt.reset()
		if count(ops, "CreateMultipartUpload") != 1 || count(ops, "AbortMultipartUpload") != 1 {
			t.Errorf("requests %q: want one upload, aborted", ops)
		}
		if left := incomplete(t, srv, loc, rt); len(left) > 0 {
			t.Errorf("left behind: %q", left)
		}
	})
	t.Run("ContextCancelled", func(t *testing.T) {
		b, rt, srv, loc := recorded(t)
		ctx, cancel := context.WithCancel(t.Context())
		w, err := b.Create(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(body[:11<<20]); err != nil {
			t.Fatal(err)
		}
		cancel()
		if _, err := w.Write(body[11<<20:]); !errors.Is(err, context.Canceled) {
			t.Errorf("Write after cancel: %v, want context.Canceled", err)
		}
		if err := w.Commit(t.Context(), addrOf(body)); err == nil {
			t.Error("Commit after cancel succeeded")
		}
		if left := incomplete(t, srv, loc, rt); len(left) > 0 {
			t.Errorf("left behind: %q", left)
		}
	})
}

// TestCleanStale: the remains of a crashed writer (an upload and a
// temporary object under tmp/) are listed, kept while young, and removed
// once stale.
func TestCleanStale(t *testing.T) {
	b, srv, loc := open(t, nil)
	ctx := t.Context()
	c := srv.Client()
	pre := ""
	if loc.Prefix != "" {
		pre = loc.Prefix + "/"
	}
	up, err := c.CreateMultipartUpload(ctx, &awss3.CreateMultipartUploadInput{Bucket: &loc.Bucket, Key: aws.String(pre + "tmp/crashed-upload")})
	if err != nil {
		t.Fatal(err)
	}
	defer c.AbortMultipartUpload(context.Background(), &awss3.AbortMultipartUploadInput{Bucket: &loc.Bucket, Key: up.Key, UploadId: up.UploadId})
	if _, err := c.PutObject(ctx, &awss3.PutObjectInput{Bucket: &loc.Bucket, Key: aws.String(pre + "tmp/crashed-copy"), Body: strings.NewReader("x")}); err != nil {
		t.Fatal(err)
	}
	want := 2
	kept, err := put(ctx, b, data(7, 100))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	if err := b.ListIncomplete(ctx, func(n string) error { names = append(names, n); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(names) != want {
		t.Fatalf("ListIncomplete: %q, want %d", names, want)
	}
	if n, err := b.CleanStale(ctx, time.Hour); err != nil || n != 0 {
		t.Fatalf("CleanStale(1h) removed %d, %v; want 0 (they are young)", n, err)
	}
	time.Sleep(10 * time.Millisecond)
	if n, err := b.CleanStale(ctx, 0); err != nil || n != want {
		t.Fatalf("CleanStale(0) removed %d, %v; want %d", n, err, want)
	}
	names = nil
	if err := b.ListIncomplete(ctx, func(n string) error { names = append(names, n); return nil }); err != nil || len(names) > 0 {
		t.Errorf("after CleanStale: ListIncomplete %q, %v", names, err)
	}
	if _, err := b.Head(ctx, kept); err != nil {
		t.Errorf("CleanStale touched a committed object: %v", err)
	}
}

// TestMultipartCopy: objects above CopyObject's limit reach their key by
// UploadPartCopy.
func TestMultipartCopy(t *testing.T) {
	b, rt, srv, loc := recorded(t)
	b.SetCopyLimit(s3.MinPartSize)
	body := data(8, 12<<20+5)
	addr, err := put(t.Context(), b, body)
	if err != nil {
		t.Fatal(err)
	}
	ops := rt.reset()
	if count(ops, "UploadPartCopy") != 3 || count(ops, "CopyObject") != 0 {
		t.Errorf("requests %q: want 3 UploadPartCopy", ops)
	}
	r, err := b.Get(t.Context(), addr, 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(r)
	r.Close()
	if err != nil || !bytes.Equal(got, body) {
		t.Fatalf("Get: %d bytes, %v; want the %d put", len(got), err, len(body))
	}
	if left := incomplete(t, srv, loc, rt); len(left) > 0 {
		t.Errorf("left behind: %q", left)
	}
}

const (
	badAccess = "AKIAEXAMPLEWRONGKEY1"
	badSecret = "wrong/Secret+ThatMustNeverBeShown0123456"
)

func noSecrets(t *testing.T, what string, s string) {
	t.Helper()
	if strings.Contains(s, badSecret) || strings.Contains(s, badAccess) {
		t.Errorf("%s shows credentials: %s", what, s)
	}
}

// TestWrongCredentials: refused credentials are ErrUnavailable, Health says
// so, and no message repeats the keys.
func TestWrongCredentials(t *testing.T) {
	srv := s3test.Start(t)
	if srv.Kind != "minio" {
		t.Skip("needs a server whose credentials we control")
	}
	loc := srv.NewBucket(t)
	opts := srv.Options(loc)
	opts.Credentials = credentials.NewStaticCredentialsProvider(badAccess, badSecret, "")
	opts.MaxBackoff = time.Millisecond
	b, err := s3.Open(t.Context(), opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	addr := addrOf([]byte("x"))
	_, err = b.Head(ctx, addr)
	if !errors.Is(err, storage.ErrUnavailable) {
		t.Errorf("Head with wrong credentials: %v, want ErrUnavailable", err)
	}
	noSecrets(t, "Head error", fmt.Sprint(err))
	_, err = put(ctx, b, []byte("x"))
	if !errors.Is(err, storage.ErrUnavailable) {
		t.Errorf("put with wrong credentials: %v, want ErrUnavailable", err)
	}
	noSecrets(t, "put error", fmt.Sprint(err))
	err = b.List(ctx, func(storage.Info) error { return nil })
	noSecrets(t, "List error", fmt.Sprint(err))
	t.Logf("put: %v", err)
	h, err := b.Health(ctx)
	if err != nil || h.Reachable {
		t.Errorf("Health with wrong credentials: %+v, %v; want unreachable, nil", h, err)
	}
	noSecrets(t, "Health detail", h.Detail)
	t.Logf("Health: %s", h.Detail)
}

// TestMissingBucket: Health reports it; a put fails with ErrUnavailable.
func TestMissingBucket(t *testing.T) {
	srv := s3test.Start(t)
	opts := srv.Options(s3test.Location{Bucket: "no-such-bucket-" + fmt.Sprint(time.Now().UnixNano())})
	b, err := s3.Open(t.Context(), opts)
	if err != nil {
		t.Fatal(err)
	}
	h, err := b.Health(t.Context())
	if err != nil || h.Reachable || !strings.Contains(h.Detail, "does not exist") {
		t.Errorf("Health of a missing bucket: %+v, %v", h, err)
	}
	if _, err := put(t.Context(), b, []byte("x")); !errors.Is(err, storage.ErrUnavailable) {
		t.Errorf("put into a missing bucket: %v, want ErrUnavailable", err)
	}
}

// TestRetriesGiveUp: a server that answers 503 is retried MaxAttempts
// times, then reported as unavailable with the number of attempts.
func TestRetriesGiveUp(t *testing.T) {
	var n atomic.Int32
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		w.Header().Set("Content-Type", "application/xml")
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprint(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>`)
	}))
	defer ts.Close()
	b, err := s3.Open(t.Context(), s3.Options{
		Bucket: "b", Endpoint: ts.URL, PathStyle: true, MaxBackoff: time.Millisecond,
		Credentials: credentials.NewStaticCredentialsProvider(badAccess, badSecret, ""),
	})
	if err != nil {
		t.Fatal(err)
	}
	_, err = b.Head(t.Context(), addrOf([]byte("x")))
	if !errors.Is(err, storage.ErrUnavailable) || !strings.Contains(err.Error(), "gave up after 4 attempts") {
		t.Errorf("Head against a 503 server: %v; want ErrUnavailable, gave up after 4 attempts", err)
	}
	if got := n.Load(); got != s3.DefaultMaxAttempts {
		t.Errorf("server saw %d requests, want %d", got, s3.DefaultMaxAttempts)
	}
	noSecrets(t, "error", err.Error())
	t.Log(err)
}

// TestTruncatedBody: a response body cut short is an error, never a short
// read that looks like success.
func TestTruncatedBody(t *testing.T) {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "1000")
		w.Header().Set("Content-Range", "bytes 0-999/1000")
		w.WriteHeader(http.StatusPartialContent)
		w.Write(make([]byte, 500))
		// The handler returns: the server closes the connection short.
	}))
	defer ts.Close()
	b, err := s3.Open(t.Context(), s3.Options{
		Bucket: "b", Endpoint: ts.URL, PathStyle: true, MaxBackoff: time.Millisecond,
		Credentials: credentials.NewStaticCredentialsProvider("a", "b", ""),
	})
	if err != nil {
		t.Fatal(err)
	}
	r, err := b.Get(t.Context(), addrOf([]byte("x")), 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	got, err := io.ReadAll(r)
	if err == nil {
		t.Fatalf("read %d of 1000 bytes with no error", len(got))
	}
	t.Logf("%d bytes, then %v", len(got), err)
}
