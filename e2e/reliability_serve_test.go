package e2e

// Hostile input and access checks against a running as-serve (issue 19):
// a corpus of malformed requests, each answered with the distribution
// spec's status and error code while nothing is stored and the log head
// stays where it was; tokens that may not do what they ask; and no secret
// in any log line, event, error body or /metrics label after a run that
// used real tokens.

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/artifactstore/artifact-store/internal/tooltest"
	"github.com/artifactstore/artifact-store/pkg/db"
	"github.com/artifactstore/artifact-store/pkg/ociserve"
)

func TestReliabilityServeHostile(t *testing.T) {
	e := newEnv(t, db.SQLite)
	var lines []string
	secrets := map[string]string{}
	for _, tk := range []struct {
		name  string
		scope ociserve.Scope
		repos []string
	}{
		{"writer", ociserve.ScopeWrite, []string{"team-a/**"}},
		{"reader", ociserve.ScopeRead, []string{"**"}},
		{"team-a", ociserve.ScopeWrite, []string{"team-a/*"}},
	} {
		secret, line, err := ociserve.NewToken(tk.name, tk.scope, tk.repos)
		if err != nil {
			t.Fatal(err)
		}
		secrets[tk.name] = secret
		lines = append(lines, line)
	}
	access := filepath.Join(t.TempDir(), "access")
	os.WriteFile(access, []byte(strings.Join(lines, "\n")+"\n"), 0o600)
	p := tooltest.StartServeProc(t, "", append(e.vars, "ARTIFACTSTORE_LOG_LEVEL=debug"), "--access", access)
	c := &serveClient{base: "http://" + p.Addr, hc: &http.Client{Timeout: time.Minute}}
	bearer := func(name string) string { return "Bearer " + secrets[name] }
	var bodies bytes.Buffer // every answer, for the secret grep
	call := func(method, path string, body []byte, hdr ...string) *http.Response {
		t.Helper()
		resp, b, err := c.do(method, path, body, hdr...)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		bodies.Write(b)
		for k, vs := range resp.Header {
			bodies.WriteString(k + ": " + strings.Join(vs, ",") + "\n")
		}
		return resp
	}

	// Real work with real tokens: a blob, an image, a chunked upload left
	// open (the target of the upload-id cases), a pull by the reader.
	auth := []string{"Authorization", bearer("writer")}
	layer := []byte("a layer of team a\n")
	for _, b := range [][]byte{[]byte("{}"), layer} {
		if r := call("POST", "/v2/team-a/app/blobs/uploads/?digest="+sha256Digest(b), b, auth...); r.StatusCode != 201 {
			t.Fatalf("push: %s", r.Status)
		}
	}
	man := imageManifest(layer)
	if r := call("PUT", "/v2/team-a/app/manifests/v1", man, append(auth, "Content-Type", "application/vnd.oci.image.manifest.v1+json")...); r.StatusCode != 201 {
		t.Fatalf("manifest push: %s", r.Status)
	}
	r := call("POST", "/v2/team-a/app/blobs/uploads/", nil, auth...)
	upload := r.Header.Get("Location")
	if r.StatusCode != 202 || upload == "" {
		t.Fatalf("start upload: %s", r.Status)
	}
	if r := call("PATCH", upload, []byte("staged"), append(auth, "Content-Range", "0-5")...); r.StatusCode != 202 {
		t.Fatalf("patch: %s", r.Status)
	}
	uploadID := upload[strings.LastIndex(upload, "/")+1:]
	if r := call("GET", "/v2/team-a/app/manifests/v1", nil, "Authorization", bearer("reader"), "Accept", "application/vnd.oci.image.manifest.v1+json"); r.StatusCode != 200 {
		t.Fatalf("reader pull: %s", r.Status)
	}
	req, _ := http.NewRequest("GET", c.base+"/v2/team-a/app/blobs/"+sha256Digest(layer), nil)
	req.SetBasicAuth("team-a", secrets["team-a"])
	if resp, err := c.hc.Do(req); err != nil || resp.StatusCode != 200 {
		t.Fatalf("basic auth pull: %v %v", err, resp)
	} else {
		resp.Body.Close()
	}

	state := func() string {
		return e.ok(`as-events head --json; find "$ARTIFACTSTORE_STORAGE_LOCAL_ROOT" -path "$ARTIFACTSTORE_STORAGE_LOCAL_ROOT/tmp" -prune -o -type f -print | sort; wc -c < "$XDG_DATA_HOME/uploads/` + uploadID + `"`)
	}
	before := state()
	if !strings.Contains(before, "/blake3/") {
		t.Fatalf("the state compared lists no object:\n%s", before)
	}
	other := make([]byte, 16)
	rand.Read(other)
	unknownID := hex.EncodeToString(other)
	bigManifest := append([]byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","annotations":{"x":"`), bytes.Repeat([]byte("a"), 4<<20)...)
	bigManifest = append(bigManifest, `"}}`...)
	zero := "sha256:" + strings.Repeat("0", 64)
	mt := "application/vnd.oci.image.manifest.v1+json"
	cases := []struct {
		name, method, path string
		body               []byte
		hdr                []string
		status             int
		code               string
	}{
		{"bad digest", "POST", "/v2/team-a/app/blobs/uploads/?digest=sha256:zz", layer, auth, 400, "DIGEST_INVALID"},
		{"unknown digest algorithm", "POST", "/v2/team-a/app/blobs/uploads/?digest=md5:abc", layer, auth, 400, "DIGEST_INVALID"},
		{"digest of other bytes", "POST", "/v2/team-a/app/blobs/uploads/?digest=" + zero, layer, auth, 400, "DIGEST_INVALID"},
		{"Content-Length beside Content-Range", "PATCH", upload, []byte("abc"), append(auth, "Content-Range", "6-9"), 400, "SIZE_INVALID"},
		{"chunk out of order", "PATCH", upload, []byte("abc"), append(auth, "Content-Range", "0-2"), 416, "BLOB_UPLOAD_INVALID"},
		{"Content-Range not a range", "PATCH", upload, []byte("abc"), append(auth, "Content-Range", "bytes=x"), 400, "BLOB_UPLOAD_INVALID"},
		{"closing PUT with the wrong digest", "PUT", upload + "?digest=" + zero, []byte("more"), auth, 400, "DIGEST_INVALID"},
		{"closing PUT without a digest", "PUT", upload, nil, auth, 400, "DIGEST_INVALID"},
		{"unknown upload id", "PATCH", "/v2/team-a/app/blobs/uploads/" + unknownID, []byte("x"), auth, 404, "BLOB_UPLOAD_UNKNOWN"},
		{"another repository's upload id", "PATCH", "/v2/team-a/other/blobs/uploads/" + uploadID, []byte("x"), auth, 404, "BLOB_UPLOAD_UNKNOWN"},
		{"another repository's upload id, PUT", "PUT", "/v2/team-a/other/blobs/uploads/" + uploadID + "?digest=" + sha256Digest([]byte("staged")), nil, auth, 404, "BLOB_UPLOAD_UNKNOWN"},
		{"another repository's upload id, DELETE", "DELETE", "/v2/team-a/other/blobs/uploads/" + uploadID, nil, auth, 404, "BLOB_UPLOAD_UNKNOWN"},
		{"malformed upload id", "PATCH", "/v2/team-a/app/blobs/uploads/..%2f..%2fstore.db", []byte("x"), auth, 404, "NAME_UNKNOWN"},
		{"oversized manifest", "PUT", "/v2/team-a/app/manifests/big", bigManifest, append(auth, "Content-Type", mt), 413, "SIZE_INVALID"},
		{"manifest not JSON", "PUT", "/v2/team-a/app/manifests/bad", []byte("{not json"), append(auth, "Content-Type", mt), 400, "MANIFEST_INVALID"},
		{"manifest of the wrong media type", "PUT", "/v2/team-a/app/manifests/wrong", man, append(auth, "Content-Type", "application/vnd.oci.image.index.v1+json"), 400, "MANIFEST_INVALID"},
		{"manifest under an unknown media type", "PUT", "/v2/team-a/app/manifests/text", man, append(auth, "Content-Type", "text/plain"), 400, "MANIFEST_INVALID"},
		{"manifest PUT by a digest it does not have", "PUT", "/v2/team-a/app/manifests/" + zero, man, append(auth, "Content-Type", mt), 400, "DIGEST_INVALID"},
		{"bad tag", "PUT", "/v2/team-a/app/manifests/-bad:tag", man, append(auth, "Content-Type", mt), 400, "MANIFEST_INVALID"},
		{"path traversal in the name", "GET", "/v2/team-a/../../etc/manifests/v1", nil, auth, 400, "NAME_INVALID"},
		{"encoded traversal in the name", "POST", "/v2/team-a/%2e%2e/x/blobs/uploads/", nil, auth, 400, "NAME_INVALID"},
		{"upper-case name", "POST", "/v2/Team-A/app/blobs/uploads/", nil, auth, 400, "NAME_INVALID"},
		{"unsupported method", "POST", "/v2/team-a/app/manifests/v1", man, auth, 405, "UNSUPPORTED"},
		{"no token: push", "POST", "/v2/team-a/app/blobs/uploads/?digest=" + sha256Digest(layer), layer, nil, 401, "UNAUTHORIZED"},
		{"no token: pull", "GET", "/v2/team-a/app/manifests/v1", nil, nil, 401, "UNAUTHORIZED"},
		{"wrong secret", "GET", "/v2/team-a/app/manifests/v1", nil, []string{"Authorization", "Bearer ast_wrong"}, 401, "UNAUTHORIZED"},
		{"read token pushes a blob", "POST", "/v2/team-a/app/blobs/uploads/?digest=" + sha256Digest(layer), layer, []string{"Authorization", bearer("reader")}, 403, "DENIED"},
		{"read token pushes a manifest", "PUT", "/v2/team-a/app/manifests/v2", man, []string{"Authorization", bearer("reader"), "Content-Type", mt}, 403, "DENIED"},
		{"read token deletes", "DELETE", "/v2/team-a/app/manifests/v1", nil, []string{"Authorization", bearer("reader")}, 403, "DENIED"},
		{"read token patches an upload", "PATCH", upload, []byte("x"), []string{"Authorization", bearer("reader"), "Content-Range", "6-6"}, 403, "DENIED"},
		{"team-a/* token reads team-b/x", "GET", "/v2/team-b/x/manifests/v1", nil, []string{"Authorization", bearer("team-a")}, 403, "DENIED"},
		{"team-a/* token reads team-a/x/y", "GET", "/v2/team-a/x/y/manifests/v1", nil, []string{"Authorization", bearer("team-a")}, 403, "DENIED"},
		{"team-a/* token mounts from team-b", "POST", "/v2/team-b/x/blobs/uploads/?mount=" + sha256Digest(layer) + "&from=team-a/app", nil, []string{"Authorization", bearer("team-a")}, 403, "DENIED"},
	}
	for _, k := range cases {
		resp := call(k.method, k.path, k.body, k.hdr...)
		if resp.StatusCode != k.status {
			t.Errorf("%s: %s %s: status %d, want %d", k.name, k.method, k.path, resp.StatusCode, k.status)
		}
		// The last answer's body is at the end of bodies.
		var doc struct {
			Errors []struct{ Code string } `json:"errors"`
		}
		last := bodies.Bytes()
		if i := bytes.LastIndex(last, []byte(`{"errors"`)); i >= 0 {
			json.NewDecoder(bytes.NewReader(last[i:])).Decode(&doc)
		}
		if len(doc.Errors) == 0 || doc.Errors[0].Code != k.code {
			t.Errorf("%s: %s %s: errors %v, want code %s", k.name, k.method, k.path, doc.Errors, k.code)
		}
		if now := state(); now != before {
			t.Fatalf("%s changed the store, the log or the staged upload:\nbefore %s\nafter  %s", k.name, before, now)
		}
	}
	report(t, "serve_malformed_refused", len(cases))

	// Off loopback without access configuration: refused at start.
	if out, code := e.sh("as-serve --addr 0.0.0.0:0"); code != 2 || !strings.Contains(out, "loopback") {
		t.Errorf("as-serve off loopback without --access: exit %d %s", code, out)
	}

	// No secret anywhere: the server's log (debug level), the events,
	// every answer, /metrics.
	call("GET", "/metrics", nil)
	evs := e.ok("as-events tail --since 0 --json")
	p.Kill()
	where := map[string][]byte{"the server log": p.Stderr(), "the events": []byte(evs), "answers and /metrics": bodies.Bytes()}
	for name, secret := range secrets {
		for w, b := range where {
			if bytes.Contains(b, []byte(secret)) || bytes.Contains(b, []byte(strings.TrimPrefix(secret, "ast_"))) {
				t.Errorf("the secret of token %s appears in %s", name, w)
			}
		}
	}
	if !bytes.Contains(bodies.Bytes(), []byte("artifactstore_http_requests_total")) || !strings.Contains(evs, `"actor":"writer"`) {
		t.Fatal("the secret grep looked at no metrics or no events of the writer token")
	}
	report(t, "security_checks", 9)
}
