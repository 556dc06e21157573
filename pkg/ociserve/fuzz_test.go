package ociserve

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func FuzzParseContentRange(f *testing.F) {
	for _, s := range []string{"0-0", "5-22", "bytes 1-2/3", "2-1", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, b, err := parseContentRange(s)
		if err == nil && (a < 0 || b < a) {
			t.Fatalf("%q gave %d-%d", s, a, b)
		}
	})
}

func FuzzParseRange(f *testing.F) {
	for _, s := range []string{"bytes=0-0", "bytes=5-", "bytes=-3", "bytes=1-2,3-4"} {
		f.Add(s, int64(10))
	}
	f.Fuzz(func(t *testing.T, s string, size int64) {
		if size < 0 {
			return
		}
		r, ok, err := parseRange(s, size)
		if err == nil && ok && (r.off < 0 || r.n <= 0 || r.off+r.n > size) {
			t.Fatalf("%q on %d bytes gave %+v", s, size, r)
		}
	})
}

func FuzzParseReference(f *testing.F) {
	for _, s := range []string{"latest", "sha256:" + strings.Repeat("a", 64), "sha512:" + strings.Repeat("0", 128), "md5:x", "-x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tag, d, err := parseReference(s)
		if err == nil && (tag == "") == (d == "") {
			t.Fatalf("%q: tag %q digest %q", s, tag, d)
		}
	})
}

func FuzzParsePath(f *testing.F) {
	for _, s := range []string{"/v2/", "/v2/a/b/manifests/x", "/v2/a/blobs/uploads/", "/v2//blobs/x", "/v2/a/tags/list"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		k, name, _ := parsePath(s)
		if k != kindNone && k != kindBase && name == "" {
			t.Fatalf("%q: %v with an empty name", s, k)
		}
	})
}

func FuzzParseAccess(f *testing.F) {
	_, line, _ := NewToken("ci", ScopeWrite, []string{"app/**"})
	f.Add(line)
	f.Add("# x\nname read sha256:zz a")
	f.Fuzz(func(t *testing.T, s string) {
		a, err := ParseAccess(strings.NewReader(s))
		if err == nil && len(a.tokens) == 0 {
			t.Fatal("no tokens and no error")
		}
	})
}

// FuzzAuthorization: any Authorization header is refused or admitted,
// never a panic.
func FuzzAuthorization(f *testing.F) {
	secret, line, _ := NewToken("ci", ScopeWrite, []string{"**"})
	access, _ := ParseAccess(strings.NewReader(line))
	f.Add("Bearer " + secret)
	f.Add("Basic Y2k6eA==")
	f.Add("bearer")
	f.Fuzz(func(t *testing.T, h string) {
		r := httptest.NewRequest("GET", "/v2/", nil)
		r.Header.Set("Authorization", h)
		access.authorize(r, "app", ScopeRead)
	})
}

// FuzzRouter sends arbitrary methods, paths and headers through the whole
// server: every answer is an HTTP status below 500 (or a spec error), never
// a panic.
func FuzzRouter(f *testing.F) {
	ts := newServer(f, &Access{Anonymous: true}, "", nil)
	for _, s := range []string{"GET /v2/a/manifests/latest", "POST /v2/a/blobs/uploads/", "PATCH /v2/a/blobs/uploads/0123456789abcdef0123456789abcdef",
		"GET /v2/a/tags/list?n=-1", "GET /v2/a/referrers/sha256:x", "PUT /v2/a/manifests/t"} {
		m, p, _ := strings.Cut(s, " ")
		f.Add(m, p, "0-3", "bytes=0-1", []byte("{}"))
	}
	// A package push (titled layer, blob unknown) and package pulls.
	f.Add("PUT", "/v2/a/manifests/1.0", "", "", []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",`+
		`"config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},`+
		`"layers":[{"mediaType":"application/octet-stream","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2,`+
		`"annotations":{"org.opencontainers.image.title":"a/b.txt"}}]}`))
	f.Add("GET", "/v2/a/manifests/1.0_build", "", "", []byte(nil))
	f.Add("HEAD", "/v2/a/blobs/sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a", "", "bytes=1-", []byte(nil))
	f.Fuzz(func(t *testing.T, method, path, cr, rg string, body []byte) {
		if !strings.HasPrefix(path, "/") || strings.ContainsAny(path, " \r\n#") || method == "" || strings.ContainsAny(method, " \r\n/") {
			return
		}
		req, err := http.NewRequest(method, ts.URL+path, bytes.NewReader(body))
		if err != nil {
			return
		}
		req.Header.Set("Content-Range", cr)
		req.Header.Set("Range", rg)
		if method == http.MethodPut && strings.Contains(path, "/manifests/") {
			req.Header.Set("Content-Type", "application/vnd.oci.image.manifest.v1+json")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return // a request Go's client refuses to send
		}
		resp.Body.Close()
		if resp.StatusCode >= 500 {
			t.Fatalf("%s %s: %d", method, path, resp.StatusCode)
		}
	})
}
