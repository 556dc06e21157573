package e2e

// Reliability, round two (issue 19): SIGKILLs inside as-retain expire,
// as-gc mark and sweep, as-scrub, as-oci import and as-serve (blob
// uploads, chunked uploads, manifest pushes), on SQLite and PostgreSQL,
// with the invariants of checkInvariants after every kill and the
// interrupted operation completed by a re-run. Figures go to the same
// report as reliability_test.go.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/artifactstore/artifact-store/internal/tooltest"
	"github.com/artifactstore/artifact-store/pkg/db"
)

// uniqueTree writes files whose bytes are new for round (so that each
// round's package brings objects of its own) beside nothing shared.
func uniqueTree(t *testing.T, round, small int) string {
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(uint64(round), 19))
	for i := range small {
		b := make([]byte, 500+rng.IntN(30_000))
		for k := range b {
			b[k] = byte(rng.Uint32())
		}
		os.MkdirAll(filepath.Join(dir, fmt.Sprint("d", i%5)), 0o755)
		os.WriteFile(filepath.Join(dir, fmt.Sprint("d", i%5), fmt.Sprint("f", i)), b, 0o644)
	}
	big := make([]byte, 1<<20)
	for k := range big {
		big[k] = byte(rng.Uint32())
	}
	os.WriteFile(filepath.Join(dir, "big"), big, 0o644)
	return dir
}

// lifecycleOp is one operation the crash test kills: prepare makes new
// state for it, args is the command, done proves a re-run completed it.
type lifecycleOp struct {
	name    string
	args    func(round int) []string
	prepare func(round int)
	done    func(round int)
}

func TestReliabilityCrashLifecycle(t *testing.T) {
	rounds := 1 // per operation
	if full() {
		rounds = 7
	}
	for _, d := range []db.Dialect{db.SQLite, db.Postgres} {
		t.Run(string(d), func(t *testing.T) {
			ctx := context.Background()
			e := newEnv(t, d)
			for _, tool := range []string{"as-retain", "as-gc", "as-scrub", "as-oci"} {
				tooltest.Path(t, tool)
			}
			// The layout as-oci import reads, exported once.
			src := uniqueTree(t, 1000, 120)
			e.ok("find " + src + " -type f | sort | as-digest | as-put --package src@1 --root " + src + " --finalize >/dev/null")
			layout := filepath.Join(t.TempDir(), "layout")
			e.ok("as-oci export src@1 " + layout + " 2>/dev/null")
			ref := e.ok("as-get --manifest src@1 --json")
			put := func(pkg string, round int) {
				tree := uniqueTree(t, round, 60)
				e.ok("find " + tree + " -type f | sort | as-digest | as-put --package " + pkg + " --root " + tree + " --finalize >/dev/null")
			}
			expireArgs := []string{"expire", "--now", "2099-01-01T00:00:00Z", "--keep-last", "1"}
			ops := []lifecycleOp{
				{name: "expire", args: func(int) []string { return expireArgs },
					prepare: func(r int) { put(fmt.Sprintf("exp@%d.0", r), r); put(fmt.Sprintf("exp@%d.1", r), r+5000) },
					done: func(int) {
						e.ok("as-retain " + strings.Join(expireArgs, " ") + " >/dev/null")
						if out := e.ok("as-retain " + strings.Join(expireArgs, " ") + " --dry-run --json 2>/dev/null"); strings.Contains(out, `"action"`) {
							t.Fatalf("after the re-run, expiry still has work:\n%s", out)
						}
					}},
				{name: "gc_mark", args: func(int) []string { return []string{"mark", "--grace", "0"} },
					prepare: func(r int) {
						put(fmt.Sprintf("exp@%d.2", r), r+10000)
						e.ok("as-retain " + strings.Join(expireArgs, " ") + " >/dev/null")
					},
					done: func(int) { e.ok("as-gc mark --grace 0 >/dev/null") }},
				{name: "gc_sweep", args: func(int) []string { return []string{"sweep", "--grace", "0"} },
					prepare: func(r int) {
						put(fmt.Sprintf("exp@%d.3", r), r+15000)
						e.ok("as-retain " + strings.Join(expireArgs, " ") + " >/dev/null && as-gc mark --grace 0 >/dev/null")
					},
					done: func(int) {
						e.ok("as-gc sweep --grace 0 >/dev/null")
						if out := e.ok("as-gc sweep --grace 0 --dry-run --json"); !strings.Contains(out, `"summary":true,"objects":0`) {
							t.Fatalf("after the re-run, the sweep still has work:\n%s", out)
						}
					}},
				{name: "scrub", args: func(int) []string { return []string{"--workers", "2"} },
					prepare: func(r int) { put(fmt.Sprintf("scrub@%d", r), r+20000) },
					done:    func(int) { e.ok("as-scrub >/dev/null") }},
				{name: "oci_import", args: func(r int) []string { return []string{"import", layout, "--package", fmt.Sprintf("imp@%d", r)} },
					prepare: func(int) {},
					done: func(r int) {
						v := fmt.Sprintf("imp@%d", r)
						if out, code := e.sh("as-oci import " + layout + " --package " + v); code != 0 && code != 5 {
							t.Fatalf("re-run of an interrupted import: exit %d\n%s", code, out)
						}
						got := e.ok("as-get --manifest " + v + " --json")
						if strings.Replace(got, `"name":"imp","version":"`+strconv.Itoa(r)+`"`, `"name":"src","version":"1"`, 1) != ref {
							t.Fatalf("after the re-run, %s is not the imported package:\n%s\nwant (apart from name and version)\n%s", v, got, ref)
						}
					}},
			}
			tools := map[string]string{"expire": "as-retain", "gc_mark": "as-gc", "gc_sweep": "as-gc", "scrub": "as-scrub", "oci_import": "as-oci"}
			// How long each takes on fresh state, so that kills land inside it.
			took := map[string]time.Duration{}
			for i, op := range ops {
				op.prepare(100 + i)
				start := time.Now()
				e.ok(tools[op.name] + " " + strings.Join(op.args(100+i), " ") + " >/dev/null 2>&1")
				took[op.name] = time.Since(start)
			}
			rng := rand.New(rand.NewPCG(uint64(len(d)), 19))
			killed := map[string]int{}
			for r := range rounds {
				for _, op := range ops {
					op.prepare(r)
					if e.killAt(time.Duration(rng.Int64N(int64(took[op.name]))), "", tools[op.name], op.args(r)...) {
						killed[op.name]++
					}
					e.checkInvariants(ctx)
					op.done(r)
				}
			}
			e.checkInvariants(ctx)
			for _, op := range ops {
				report(t, "kills_"+op.name+"_"+string(d), killed[op.name])
			}
			t.Logf("%s: kills landed %v of %d each (run times %v)", d, killed, rounds, took)
		})
	}
}

// serveClient talks to one as-serve address.
type serveClient struct {
	base string
	hc   *http.Client
}

func (c *serveClient) do(method, path string, body []byte, hdr ...string) (*http.Response, []byte, error) {
	req, err := http.NewRequest(method, c.base+path, bytes.NewReader(body))
	if err != nil {
		return nil, nil, err
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp, b, err
}

func sha256Digest(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

// pushBlob uploads b monolithically (POST ?digest=).
func (c *serveClient) pushBlob(repo string, b []byte) error {
	resp, _, err := c.do("POST", "/v2/"+repo+"/blobs/uploads/?digest="+sha256Digest(b), b, "Content-Type", "application/octet-stream")
	if err != nil {
		return err
	}
	if resp.StatusCode != 201 {
		return fmt.Errorf("push blob: %s", resp.Status)
	}
	return nil
}

// chunked is a chunked upload that can be resumed after a server restart.
type chunked struct {
	loc  string
	data []byte
	step int
}

// run starts (if loc is empty) or resumes the upload from the offset the
// server reports, PATCHes the rest in chunks and closes it with PUT.
// resumedAt is the offset it resumed from, or -1 when the upload had
// completed already (its closing PUT committed before the kill).
func (c *serveClient) runChunked(repo string, u *chunked) (resumedAt int64, err error) {
	if u.loc == "" {
		resp, _, err := c.do("POST", "/v2/"+repo+"/blobs/uploads/", nil)
		if err != nil {
			return 0, err
		}
		if resp.StatusCode != 202 {
			return 0, fmt.Errorf("start upload: %s", resp.Status)
		}
		u.loc = resp.Header.Get("Location")
	} else {
		resp, _, err := c.do("GET", u.loc, nil)
		if err != nil {
			return 0, err
		}
		if resp.StatusCode == 404 {
			// The kill came after the closing PUT committed and before
			// its answer: the session is closed and the blob is there
			// (the caller pulls it back), as a client finds with HEAD.
			resp, _, err := c.do("HEAD", "/v2/"+repo+"/blobs/"+sha256Digest(u.data), nil)
			if err != nil {
				return 0, err
			}
			if resp.StatusCode != 200 {
				return 0, fmt.Errorf("upload %s unknown after restart, and its blob is not stored: %s", u.loc, resp.Status)
			}
			return -1, nil
		}
		if resp.StatusCode != 204 {
			return 0, fmt.Errorf("upload status after restart: %s", resp.Status)
		}
		rg := resp.Header.Get("Range")
		end, err := strconv.ParseInt(rg[strings.Index(rg, "-")+1:], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("upload status Range %q: %w", rg, err)
		}
		if end > 0 {
			resumedAt = end + 1
		}
	}
	off := resumedAt
	for off < int64(len(u.data)) {
		n := min(int64(u.step), int64(len(u.data))-off)
		resp, _, err := c.do("PATCH", u.loc, u.data[off:off+n], "Content-Type", "application/octet-stream",
			"Content-Range", fmt.Sprintf("%d-%d", off, off+n-1))
		if err != nil {
			return resumedAt, err
		}
		if resp.StatusCode != 202 {
			return resumedAt, fmt.Errorf("PATCH at %d: %s", off, resp.Status)
		}
		off += n
	}
	resp, _, err := c.do("PUT", u.loc+"?digest="+sha256Digest(u.data), nil)
	if err != nil {
		return resumedAt, err
	}
	if resp.StatusCode != 201 {
		return resumedAt, fmt.Errorf("closing PUT: %s", resp.Status)
	}
	return resumedAt, nil
}

// imageManifest is an OCI image manifest of layers with an empty config.
func imageManifest(layers ...[]byte) []byte {
	type desc struct {
		MediaType string `json:"mediaType"`
		Digest    string `json:"digest"`
		Size      int    `json:"size"`
	}
	m := struct {
		SchemaVersion int    `json:"schemaVersion"`
		MediaType     string `json:"mediaType"`
		Config        desc   `json:"config"`
		Layers        []desc `json:"layers"`
	}{2, "application/vnd.oci.image.manifest.v1+json", desc{"application/vnd.oci.empty.v1+json", sha256Digest([]byte("{}")), 2}, []desc{}}
	for _, l := range layers {
		m.Layers = append(m.Layers, desc{"application/octet-stream", sha256Digest(l), len(l)})
	}
	b, _ := json.Marshal(m)
	return b
}

// pushImage pushes the config, the layers and the manifest under tag.
func (c *serveClient) pushImage(repo, tag string, layers ...[]byte) ([]byte, error) {
	if err := c.pushBlob(repo, []byte("{}")); err != nil {
		return nil, err
	}
	for _, l := range layers {
		if err := c.pushBlob(repo, l); err != nil {
			return nil, err
		}
	}
	m := imageManifest(layers...)
	resp, _, err := c.do("PUT", "/v2/"+repo+"/manifests/"+tag, m, "Content-Type", "application/vnd.oci.image.manifest.v1+json")
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != 201 {
		return nil, fmt.Errorf("manifest PUT: %s", resp.Status)
	}
	return m, nil
}

// killDuring runs op, SIGKILLs the server after delay and reports whether
// op was still running then (a real kill); op's error is then expected.
func killDuring(p *tooltest.ServeProc, delay time.Duration, op func() error) (landed bool, err error) {
	done := make(chan error, 1)
	go func() { done <- op() }()
	select {
	case err := <-done:
		return false, err
	case <-time.After(delay):
	}
	p.Kill()
	<-done
	return true, nil
}

func randomBytes(rng *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

func TestReliabilityCrashServe(t *testing.T) {
	rounds := 1 // per kind
	if full() {
		rounds = 7
	}
	for _, d := range []db.Dialect{db.SQLite, db.Postgres} {
		t.Run(string(d), func(t *testing.T) {
			ctx := context.Background()
			e := newEnv(t, d)
			p := tooltest.StartServeProc(t, "", e.vars)
			addr := p.Addr
			c := &serveClient{base: "http://" + addr, hc: &http.Client{Timeout: time.Minute}}
			restart := func() {
				p = tooltest.StartServeProc(t, addr, e.vars)
			}
			rng := rand.New(rand.NewPCG(uint64(len(d)), 20))
			const blobSize, chunkSize = 6 << 20, 256 << 10
			// Timings on fresh state.
			start := time.Now()
			if err := c.pushBlob("timing", randomBytes(rng, blobSize)); err != nil {
				t.Fatal(err)
			}
			tBlob := time.Since(start)
			start = time.Now()
			if _, err := c.runChunked("timing", &chunked{data: randomBytes(rng, blobSize), step: chunkSize}); err != nil {
				t.Fatal(err)
			}
			tChunked := time.Since(start)
			start = time.Now()
			if _, err := c.pushImage("timing", "t", randomBytes(rng, 1<<20), randomBytes(rng, 2<<20)); err != nil {
				t.Fatal(err)
			}
			tImage := time.Since(start)

			killed := map[string]int{}
			resumed := 0
			for r := range rounds {
				repo := fmt.Sprintf("crash/r%d", r)
				// A monolithic blob upload.
				blob := randomBytes(rng, blobSize)
				landed, err := killDuring(p, time.Duration(rng.Int64N(int64(tBlob))), func() error { return c.pushBlob(repo, blob) })
				if landed {
					killed["serve_blob"]++
					restart()
				} else if err != nil {
					t.Fatal(err)
				}
				e.checkInvariants(ctx)
				if err := c.pushBlob(repo, blob); err != nil {
					t.Fatalf("re-push after a kill: %v", err)
				}
				if resp, got, err := c.do("GET", "/v2/"+repo+"/blobs/"+sha256Digest(blob), nil); err != nil || resp.StatusCode != 200 || !bytes.Equal(got, blob) {
					t.Fatalf("blob after re-push: %v %v, %d bytes", err, resp, len(got))
				}

				// A chunked upload, resumed where the server says it stands.
				u := &chunked{data: randomBytes(rng, blobSize), step: chunkSize}
				landed, err = killDuring(p, time.Duration(rng.Int64N(int64(tChunked))), func() error { _, err := c.runChunked(repo, u); return err })
				if landed {
					killed["serve_chunked"]++
					restart()
				} else if err != nil {
					t.Fatal(err)
				}
				e.checkInvariants(ctx)
				if landed {
					at, err := c.runChunked(repo, u)
					if err != nil {
						t.Fatalf("resuming the chunked upload %s after a kill: %v", u.loc, err)
					}
					if at > 0 {
						resumed++
					}
				}
				if resp, got, err := c.do("GET", "/v2/"+repo+"/blobs/"+sha256Digest(u.data), nil); err != nil || resp.StatusCode != 200 || !bytes.Equal(got, u.data) {
					t.Fatalf("chunked blob after resuming: %v %v, %d bytes", err, resp, len(got))
				}

				// A manifest push (config, two layers, the manifest by tag).
				l1, l2 := randomBytes(rng, 1<<20), randomBytes(rng, 2<<20)
				landed, err = killDuring(p, time.Duration(rng.Int64N(int64(tImage))), func() error { _, err := c.pushImage(repo, "v1", l1, l2); return err })
				if landed {
					killed["serve_manifest"]++
					restart()
				} else if err != nil {
					t.Fatal(err)
				}
				e.checkInvariants(ctx)
				m, err := c.pushImage(repo, "v1", l1, l2)
				if err != nil {
					t.Fatalf("re-push of the image after a kill: %v", err)
				}
				if resp, got, err := c.do("GET", "/v2/"+repo+"/manifests/v1", nil, "Accept", "application/vnd.oci.image.manifest.v1+json"); err != nil || resp.StatusCode != 200 || !bytes.Equal(got, m) {
					t.Fatalf("manifest after re-push: %v %v\n%s", err, resp, got)
				}
			}
			p.Kill()
			e.checkInvariants(ctx)
			if b := p.Stderr(); bytes.Contains(b, []byte("panic")) {
				t.Fatalf("as-serve panicked:\n%s", b)
			}
			for k, n := range killed {
				report(t, "kills_"+k+"_"+string(d), n)
			}
			report(t, "serve_chunked_resumed", resumed)
			t.Logf("%s: kills landed %v of %d each, %d chunked uploads resumed mid-way (blob %v, chunked %v, image %v)", d, killed, rounds, resumed, tBlob, tChunked, tImage)
		})
	}
}
