package e2e

// Faults of round two (issue 19): S3 unreachable during a sweep,
// PostgreSQL connections cut during pushes to as-serve and during mark, a
// full disk under an upload to as-serve, a client that disconnects
// mid-blob, and slow clients (slowloris) whose connections the header and
// body timeouts free.

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/artifactstore/artifact-store/internal/netfault"
	"github.com/artifactstore/artifact-store/internal/tooltest"
	"github.com/artifactstore/artifact-store/pkg/db"
	"github.com/artifactstore/artifact-store/pkg/identity"
	"github.com/artifactstore/artifact-store/pkg/storage"
	"github.com/artifactstore/artifact-store/pkg/storage/s3/s3test"
)

// TestReliabilityS3GoneDuringSweep cuts the S3 endpoint while as-gc sweep
// deletes: the sweep fails clearly, no object is recorded deleted that the
// bucket still has and no live location lacks its bytes; once S3 answers
// again the next sweep finishes the job.
func TestReliabilityS3GoneDuringSweep(t *testing.T) {
	srv := s3test.Start(t)
	rounds := 2
	if full() {
		rounds = 4
	}
	e := newEnv(t, db.SQLite)
	tooltest.Path(t, "as-gc")
	tooltest.Path(t, "as-retain")
	loc := srv.NewBucket(t)
	proxy := netfault.Start(t, strings.TrimPrefix(srv.Endpoint, "http://"))
	for _, v := range srv.Env(loc) {
		if strings.HasPrefix(v, "ARTIFACTSTORE_S3_ENDPOINT=") {
			v = "ARTIFACTSTORE_S3_ENDPOINT=http://" + proxy.Addr()
		}
		e.vars = append(e.vars, v)
	}
	e.vars = append(e.vars, "AWS_CONFIG_FILE="+os.DevNull, "AWS_SHARED_CREDENTIALS_FILE="+os.DevNull)
	ctx := context.Background()
	// consistent: deleted means gone from the bucket, a live location
	// means present.
	consistent := func() {
		t.Helper()
		keys := map[string]bool{}
		var token *string
		for {
			out, err := srv.Client().ListObjectsV2(ctx, &awss3.ListObjectsV2Input{Bucket: &loc.Bucket, ContinuationToken: token})
			if err != nil {
				t.Fatal(err)
			}
			for _, o := range out.Contents {
				keys[strings.TrimPrefix(*o.Key, loc.Prefix+"/")] = true
			}
			if out.NextContinuationToken == nil {
				break
			}
			token = out.NextContinuationToken
		}
		d, err := db.Open(ctx, e.dbURL)
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		check := func(q string, want bool) {
			rows, err := d.SQL.QueryContext(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			defer rows.Close()
			for rows.Next() {
				var ca string
				rows.Scan(&ca)
				a, err := identity.Parse(ca)
				if err != nil {
					t.Fatal(err)
				}
				k, _ := storage.Key(a)
				if keys[k] != want {
					t.Fatalf("%s: object %s in the bucket: %v, want %v", q, ca, keys[k], want)
				}
			}
		}
		check(`SELECT content_address FROM gc_objects WHERE state = 'deleted'`, false)
		check(`SELECT l.content_address FROM storage_locations l WHERE NOT EXISTS (SELECT 1 FROM gc_objects g
			WHERE g.content_address = l.content_address AND g.backend_id = l.backend_id AND g.state IN ('deleting', 'deleted'))`, true)
		e.ok("as-events verify >/dev/null && as-replay --check >/dev/null")
	}
	rng := rand.New(rand.NewPCG(4, 19))
	var took time.Duration
	cuts := 0
	for r := range rounds + 1 {
		tree := uniqueTree(t, 3000+r, 80)
		e.ok(fmt.Sprintf("find %s -type f | sort | as-digest | as-put --package s3gc@%d --root %s --finalize >/dev/null", tree, r, tree))
		e.ok("as-retain expire --now 2099-01-01T00:00:00Z >/dev/null && as-gc mark --grace 0 --no-orphans >/dev/null")
		if r == 0 { // how long a sweep takes, so that the cut lands inside it
			start := time.Now()
			e.ok("as-gc sweep --grace 0 >/dev/null")
			took = time.Since(start)
			continue
		}
		cmd := exec.Command(tooltest.Path(t, "as-gc"), "sweep", "--grace", "0")
		cmd.Env = append(os.Environ(), e.vars...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		var err error
		select {
		case err = <-done:
		case <-time.After(time.Duration(rng.Int64N(int64(took)))):
			proxy.Set(true)
			cuts++
			err = <-done
		}
		if err != nil && (!strings.HasPrefix(stderr.String(), "as-gc: ") || strings.Contains(stderr.String(), "goroutine ")) {
			t.Fatalf("sweep with S3 gone: %q; want one clear as-gc: message", stderr.String())
		}
		proxy.Set(false)
		consistent()
		e.ok("as-gc sweep --grace 0 >/dev/null")
		if out := e.ok("as-gc sweep --grace 0 --dry-run --json"); !strings.Contains(out, `"summary":true,"objects":0`) {
			t.Fatalf("after S3 came back the sweep did not finish:\n%s", out)
		}
		consistent()
	}
	report(t, "faults_s3_gone_sweep", cuts)
	t.Logf("S3 cut during %d of %d sweeps (a sweep takes %v)", cuts, rounds, took)
}

// TestReliabilityDatabaseGoneServe cuts as-serve's and as-gc mark's
// PostgreSQL connections while they work: pushes fail with a 5xx at most,
// mark fails clearly, no view row points at a missing object, and once the
// database answers every image re-pushes and pulls back identical and
// mark completes.
func TestReliabilityDatabaseGoneServe(t *testing.T) {
	e := newEnv(t, db.Postgres)
	tooltest.Path(t, "as-gc")
	ctx := context.Background()
	admin, err := db.Open(ctx, e.dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	cutting := func(stop <-chan struct{}) <-chan int {
		n := make(chan int, 1)
		go func() {
			cuts := 0
			for {
				select {
				case <-stop:
					n <- cuts
					return
				case <-time.After(15 * time.Millisecond):
					admin.SQL.ExecContext(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
						WHERE datname = current_database() AND pid <> pg_backend_pid()`)
					cuts++
				}
			}
		}()
		return n
	}
	p := tooltest.StartServeProc(t, "", e.vars)
	c := &serveClient{base: "http://" + p.Addr, hc: &http.Client{Timeout: time.Minute}}
	rng := rand.New(rand.NewPCG(5, 19))
	type image struct {
		tag    string
		layers [][]byte
	}
	var images []image
	stop := make(chan struct{})
	cuts := cutting(stop)
	failed := 0
	for i := range 12 {
		im := image{fmt.Sprintf("v%d", i), [][]byte{randomBytes(rng, 512<<10), randomBytes(rng, 64<<10)}}
		images = append(images, im)
		if _, err := c.pushImage("dbgone/app", im.tag, im.layers...); err != nil {
			failed++
			if !strings.Contains(err.Error(), "50") && !strings.Contains(err.Error(), "429") {
				t.Fatalf("push with the database cut: %v; want at most a 5xx or 429", err)
			}
		}
	}
	close(stop)
	<-cuts
	e.checkInvariants(ctx)
	for _, im := range images {
		m, err := c.pushImage("dbgone/app", im.tag, im.layers...)
		if err != nil {
			t.Fatalf("re-push once the database answers: %v", err)
		}
		if resp, got, err := c.do("GET", "/v2/dbgone/app/manifests/"+im.tag, nil, "Accept", "application/vnd.oci.image.manifest.v1+json"); err != nil || resp.StatusCode != 200 || !bytes.Equal(got, m) {
			t.Fatalf("pull after the database came back: %v %v", err, resp)
		}
	}
	report(t, "faults_database_gone_push", failed)
	t.Logf("%d of %d pushes failed while the connections were cut", failed, len(images))

	// Mark, cut off repeatedly.
	markFailed := 0
	for r := range 3 {
		tree := uniqueTree(t, 4000+r, 150)
		e.ok(fmt.Sprintf("find %s -type f | sort | as-digest | as-put --package markgone@%d --root %s >/dev/null", tree, r, tree))
		e.ok(fmt.Sprintf("as-retain delete markgone@%d --reason test >/dev/null", r))
		cmd := exec.Command(tooltest.Path(t, "as-gc"), "mark", "--grace", "0")
		cmd.Env = append(os.Environ(), e.vars...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		stop := make(chan struct{})
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cuts := cutting(stop)
		err := cmd.Wait()
		close(stop)
		<-cuts
		if err != nil {
			markFailed++
			if !strings.HasPrefix(stderr.String(), "as-gc: ") || strings.Contains(stderr.String(), "goroutine ") {
				t.Fatalf("mark with the database cut: %q; want one clear as-gc: message", stderr.String())
			}
		}
		e.checkInvariants(ctx)
		e.ok("as-gc mark --grace 0 >/dev/null")
	}
	report(t, "faults_database_gone_mark", markFailed)
	if failed+markFailed == 0 {
		t.Fatal("no push and no mark was interrupted by the cut connections; the test proved nothing")
	}
}

// TestReliabilityServeFullDisk: the object root and the upload directory
// on a 2 MiB tmpfs; a 3 MiB blob pushed whole and a 3 MiB chunk both fail
// with a 5xx, leave no temporary file and no partial staged chunk; once
// there is room the same pushes succeed and the chunked upload resumes.
func TestReliabilityServeFullDisk(t *testing.T) {
	e := newEnv(t, db.SQLite)
	mnt := filepath.Dir(e.root) + "/small"
	os.MkdirAll(mnt, 0o755)
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", mnt).CombinedOutput(); err != nil {
		if os.Getenv("ARTIFACTSTORE_TEST_STRICT") == "1" {
			t.Fatalf("cannot mount a tmpfs for the full-disk test: %v %s", err, out)
		}
		t.Skipf("cannot mount a tmpfs (needs root): %v %s", err, out)
	}
	defer exec.Command("umount", "-l", mnt).Run()
	e.root = filepath.Join(mnt, "objects")
	e.vars = append(e.vars, "ARTIFACTSTORE_STORAGE_LOCAL_ROOT="+e.root)
	uploads := filepath.Join(mnt, "uploads")
	p := tooltest.StartServeProc(t, "", e.vars, "--upload-dir", uploads)
	c := &serveClient{base: "http://" + p.Addr, hc: &http.Client{Timeout: time.Minute}}
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(6, 19))
	blob := randomBytes(rng, 3<<20)
	resp, body, err := c.do("POST", "/v2/full/app/blobs/uploads/?digest="+sha256Digest(blob), blob)
	if err != nil || resp.StatusCode < 500 {
		t.Fatalf("a 3 MiB blob on a 2 MiB disk: %v %v %s; want a 5xx", err, resp, body)
	}
	u := &chunked{data: randomBytes(rng, 3<<20), step: 3 << 20}
	if _, err := c.runChunked("full/app", u); err == nil || !strings.Contains(err.Error(), "50") {
		t.Fatalf("a 3 MiB chunk on a 2 MiB disk: %v; want a 5xx", err)
	}
	if left, _ := os.ReadDir(filepath.Join(e.root, "tmp")); len(left) != 0 {
		t.Fatalf("the full disk left %d temporary files behind", len(left))
	}
	id := u.loc[strings.LastIndex(u.loc, "/")+1:]
	if fi, err := os.Stat(filepath.Join(uploads, id)); err != nil || fi.Size() != 0 {
		t.Fatalf("the failed chunk left a staged file of %v bytes (%v); want it as it was (empty)", fi.Size(), err)
	}
	e.checkInvariants(ctx)
	if out, err := exec.Command("mount", "-o", "remount,size=40m", mnt).CombinedOutput(); err != nil {
		t.Fatalf("remount: %v %s", err, out)
	}
	if err := c.pushBlob("full/app", blob); err != nil {
		t.Fatalf("push once there is room: %v", err)
	}
	if _, err := c.runChunked("full/app", u); err != nil {
		t.Fatalf("resume the chunked upload once there is room: %v", err)
	}
	for _, b := range [][]byte{blob, u.data} {
		if resp, got, err := c.do("GET", "/v2/full/app/blobs/"+sha256Digest(b), nil); err != nil || resp.StatusCode != 200 || !bytes.Equal(got, b) {
			t.Fatalf("pull after the disk had room: %v %v", err, resp)
		}
	}
	e.checkInvariants(ctx)
	report(t, "faults_serve_full_disk", 2)
}

// TestReliabilityServeSlowClients: a client that disconnects mid-blob and
// slow clients (a body that stops, headers that never end) are cut off by
// the body and header timeouts; nothing is stored for them, their upload
// slots come back, and the server keeps serving.
func TestReliabilityServeSlowClients(t *testing.T) {
	e := newEnv(t, db.SQLite)
	p := tooltest.StartServeProc(t, "", e.vars, "--body-timeout", "1s")
	c := &serveClient{base: "http://" + p.Addr, hc: &http.Client{Timeout: time.Minute}}
	state := func() string {
		return e.ok(`as-events head --json 2>/dev/null; find "$ARTIFACTSTORE_STORAGE_LOCAL_ROOT" -path "$ARTIFACTSTORE_STORAGE_LOCAL_ROOT/tmp" -prune -o -type f -print 2>/dev/null | sort`)
	}
	if err := c.pushBlob("slow/app", []byte("one blob before")); err != nil {
		t.Fatal(err)
	}
	before := state()
	blob := randomBytes(rand.New(rand.NewPCG(7, 19)), 1<<20)
	start := func() net.Conn {
		conn, err := net.Dial("tcp", p.Addr)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(conn, "POST /v2/slow/app/blobs/uploads/?digest=%s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/octet-stream\r\nContent-Length: %d\r\n\r\n", sha256Digest(blob), p.Addr, len(blob))
		conn.Write(blob[:len(blob)/2])
		return conn
	}
	// uploadsIdle polls /metrics until no request streams blob bytes.
	uploadsIdle := func(what string) {
		t.Helper()
		for i := 0; ; i++ {
			_, b, err := c.do("GET", "/metrics", nil)
			if err != nil {
				t.Fatal(err)
			}
			if bytes.Contains(b, []byte("\nartifactstore_oci_uploads_in_progress 0\n")) {
				return
			}
			if i == 400 {
				t.Fatalf("%s: an upload slot is still taken", what)
			}
			time.Sleep(25 * time.Millisecond)
		}
	}
	// A client that disconnects mid-blob.
	start().Close()
	uploadsIdle("a client that disconnected mid-blob")
	// A body that stops: the server answers or closes after --body-timeout.
	conn := start()
	conn.SetReadDeadline(time.Now().Add(30 * time.Second)) // a bound on the test, not the condition
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err == nil {
		io.Copy(io.Discard, resp.Body)
		if resp.StatusCode < 400 {
			t.Fatalf("a body that stopped half-way: %s", resp.Status)
		}
	} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatal("the server kept the connection of a stalled body for 30 s (--body-timeout 1s)")
	}
	conn.Close()
	uploadsIdle("a stalled body")
	freed := 2
	if full() { // headers that never end: ReadHeaderTimeout (10 s) closes it
		conn, err := net.Dial("tcp", p.Addr)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(conn, "GET /v2/ HTTP/1.1\r\nHost: %s\r\nX-Slow: ", p.Addr)
		conn.SetReadDeadline(time.Now().Add(60 * time.Second))
		if _, err := io.Copy(io.Discard, conn); err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				t.Fatal("the server kept a connection whose headers never ended for 60 s")
			}
		}
		conn.Close()
		freed++
	}
	if now := state(); now != before {
		t.Fatalf("slow or vanished clients changed the store:\nbefore %s\nafter  %s", before, now)
	}
	if left, _ := os.ReadDir(filepath.Join(e.root, "tmp")); len(left) != 0 {
		t.Fatalf("%d temporary files left behind", len(left))
	}
	if err := c.pushBlob("slow/app", blob); err != nil {
		t.Fatalf("the server does not serve after the slow clients: %v", err)
	}
	report(t, "faults_slow_clients", freed)
}
