// Package s3test gives tests a real S3-compatible server: a MinIO server
// that the test binary starts as a separate process (on a free port on
// 127.0.0.1, with its data in a temporary directory, stopped when the
// tests end), or any S3 endpoint named by the environment.
//
// Wiring, in the package's tests:
//
//	func TestMain(m *testing.M) { os.Exit(s3test.Main(m)) }
//
//	func TestX(t *testing.T) {
//		srv := s3test.Start(t)
//		opts := srv.Options(srv.NewBucket(t))   // a fresh, empty bucket (or prefix)
//		…
//	}
//
// Where the server comes from, first match wins:
//
//   - ARTIFACTSTORE_TEST_S3_ENDPOINT: an existing server. Credentials from
//     ARTIFACTSTORE_TEST_S3_ACCESS_KEY/_SECRET_KEY (else AWS_ACCESS_KEY_ID/
//     AWS_SECRET_ACCESS_KEY), region ARTIFACTSTORE_TEST_S3_REGION. With
//     ARTIFACTSTORE_TEST_S3_BUCKET every test gets a fresh prefix in that
//     bucket instead of a fresh bucket.
//   - a MinIO binary: $ARTIFACTSTORE_TEST_MINIO, else `minio` on $PATH, else
//     ~/.cache/artifact-store/bin/minio (scripts/install-minio.sh puts it
//     there).
//
// With neither, tests skip with a hint, or fail when
// ARTIFACTSTORE_TEST_STRICT=1 (CI: a missing server is a failure).
package s3test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	s3backend "github.com/artifactstore/artifact-store/pkg/storage/s3"
)

// Environment variables read by this package.
const (
	EnvEndpoint  = "ARTIFACTSTORE_TEST_S3_ENDPOINT"
	EnvBucket    = "ARTIFACTSTORE_TEST_S3_BUCKET"
	EnvAccessKey = "ARTIFACTSTORE_TEST_S3_ACCESS_KEY"
	EnvSecretKey = "ARTIFACTSTORE_TEST_S3_SECRET_KEY"
	EnvRegion    = "ARTIFACTSTORE_TEST_S3_REGION"
	EnvMinIO     = "ARTIFACTSTORE_TEST_MINIO"
	EnvStrict    = "ARTIFACTSTORE_TEST_STRICT"
)

// Server is a running S3-compatible server.
type Server struct {
	Kind      string // "minio" or "external"
	Endpoint  string // http://127.0.0.1:PORT
	AccessKey string
	SecretKey string
	Region    string
	bucket    string // external server with a fixed bucket: fresh prefixes
	client    *awss3.Client

	cmd *exec.Cmd
	dir string
}

var (
	once   sync.Once
	shared *Server
	err0   error
)

// Main runs the tests and stops the server if one was started. Use it as
// TestMain: os.Exit(s3test.Main(m)).
func Main(m *testing.M) int {
	code := m.Run()
	if shared != nil {
		shared.stop()
	}
	return code
}

// Start returns the shared server, starting it on first use. Without a
// server the test is skipped (failed under ARTIFACTSTORE_TEST_STRICT=1).
func Start(t testing.TB) *Server {
	t.Helper()
	once.Do(func() { shared, err0 = start() })
	if err0 != nil {
		if os.Getenv(EnvStrict) == "1" {
			t.Fatalf("s3test: no S3 server: %v", err0)
		}
		t.Skipf("s3test: no S3 server (%v); run scripts/install-minio.sh or set %s", err0, EnvEndpoint)
	}
	return shared
}

func start() (*Server, error) {
	if ep := os.Getenv(EnvEndpoint); ep != "" {
		s := &Server{
			Kind: "external", Endpoint: ep, bucket: os.Getenv(EnvBucket),
			AccessKey: first(os.Getenv(EnvAccessKey), os.Getenv("AWS_ACCESS_KEY_ID")),
			SecretKey: first(os.Getenv(EnvSecretKey), os.Getenv("AWS_SECRET_ACCESS_KEY")),
			Region:    first(os.Getenv(EnvRegion), "us-east-1"),
		}
		s.client = s.newClient()
		return s, nil
	}
	bin, err := minioBinary()
	if err != nil {
		return nil, err
	}
	return startMinIO(bin)
}

func first(v ...string) string {
	for _, s := range v {
		if s != "" {
			return s
		}
	}
	return ""
}

func minioBinary() (string, error) {
	if p := os.Getenv(EnvMinIO); p != "" {
		return p, nil
	}
	if p, err := exec.LookPath("minio"); err == nil {
		return p, nil
	}
	if home, err := os.UserHomeDir(); err == nil {
		p := filepath.Join(home, ".cache", "artifact-store", "bin", "minio")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", errors.New("no MinIO binary ($" + EnvMinIO + ", minio on $PATH, ~/.cache/artifact-store/bin/minio)")
}

// freePort asks the kernel for a free port on 127.0.0.1.
func freePort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

func startMinIO(bin string) (*Server, error) {
	dir, err := os.MkdirTemp("", "artifact-store-minio-")
	if err != nil {
		return nil, err
	}
	var lastErr error
	for range 3 { // a port taken between freePort and MinIO's bind: try again
		addr, err := freePort()
		if err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
		console, err := freePort()
		if err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
		s := &Server{Kind: "minio", Endpoint: "http://" + addr, AccessKey: "s3test-access", SecretKey: "s3test-secret-" + randHex(8), Region: "us-east-1", dir: dir}
		log, _ := os.Create(filepath.Join(dir, "minio.log"))
		s.cmd = exec.Command(bin, "server", "--quiet", "--address", addr, "--console-address", console, filepath.Join(dir, "data"))
		s.cmd.Env = append(os.Environ(),
			"MINIO_ROOT_USER="+s.AccessKey, "MINIO_ROOT_PASSWORD="+s.SecretKey,
			"MINIO_BROWSER=off", "MINIO_UPDATE=off", "MINIO_CI_CD=1")
		s.cmd.Stdout, s.cmd.Stderr = log, log
		if err := s.cmd.Start(); err != nil {
			os.RemoveAll(dir)
			return nil, fmt.Errorf("starting %s: %w", bin, err)
		}
		exited := make(chan error, 1)
		go func() { exited <- s.cmd.Wait() }()
		if lastErr = waitReady(s.Endpoint, exited); lastErr == nil {
			s.client = s.newClient()
			return s, nil
		}
		s.cmd.Process.Kill()
		<-exited
	}
	b, _ := os.ReadFile(filepath.Join(dir, "minio.log"))
	os.RemoveAll(dir)
	return nil, fmt.Errorf("MinIO did not start: %v\n%s", lastErr, b)
}

func waitReady(endpoint string, exited <-chan error) error {
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			return fmt.Errorf("exited: %v", err)
		default:
		}
		resp, err := http.Get(endpoint + "/minio/health/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return errors.New("not ready after 60s")
}

func (s *Server) stop() {
	if s.cmd != nil && s.cmd.Process != nil {
		s.cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { s.cmd.Process.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			s.cmd.Process.Kill()
		}
	}
	if s.dir != "" {
		os.RemoveAll(s.dir)
	}
}

func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func (s *Server) newClient() *awss3.Client {
	return awss3.New(awss3.Options{
		Region:       s.Region,
		BaseEndpoint: aws.String(s.Endpoint),
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider(s.AccessKey, s.SecretKey, ""),
	})
}

// Client is a plain SDK client for the server, for tests that look behind
// the backend's back (list uploads, corrupt objects).
func (s *Server) Client() *awss3.Client { return s.client }

// Location is a fresh, empty place to store objects: a bucket and a prefix.
type Location struct {
	Bucket, Prefix string
}

// NewBucket returns a fresh bucket (or, on an external server with a fixed
// bucket, a fresh prefix in it); everything in it is removed when the test
// ends.
func (s *Server) NewBucket(t testing.TB) Location {
	t.Helper()
	ctx := context.Background()
	loc := Location{Bucket: s.bucket}
	if loc.Bucket == "" {
		loc.Bucket = "t-" + randHex(8)
		if _, err := s.client.CreateBucket(ctx, &awss3.CreateBucketInput{Bucket: &loc.Bucket}); err != nil {
			t.Fatalf("s3test: create bucket: %v", err)
		}
	} else {
		loc.Prefix = "s3test/" + randHex(8)
	}
	t.Cleanup(func() { s.empty(t, loc) })
	return loc
}

// empty removes every object and upload under the location, then the
// bucket if NewBucket created it.
func (s *Server) empty(t testing.TB, loc Location) {
	ctx := context.Background()
	var prefix *string
	if loc.Prefix != "" {
		prefix = aws.String(loc.Prefix + "/")
	}
	ups, err := s.client.ListMultipartUploads(ctx, &awss3.ListMultipartUploadsInput{Bucket: &loc.Bucket, Prefix: prefix})
	if err == nil {
		for _, u := range ups.Uploads {
			s.client.AbortMultipartUpload(ctx, &awss3.AbortMultipartUploadInput{Bucket: &loc.Bucket, Key: u.Key, UploadId: u.UploadId})
		}
	}
	p := awss3.NewListObjectsV2Paginator(s.client, &awss3.ListObjectsV2Input{Bucket: &loc.Bucket, Prefix: prefix})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			t.Logf("s3test: cleanup: %v", err)
			return
		}
		var ids []types.ObjectIdentifier
		for _, o := range page.Contents {
			ids = append(ids, types.ObjectIdentifier{Key: o.Key})
		}
		if len(ids) > 0 {
			s.client.DeleteObjects(ctx, &awss3.DeleteObjectsInput{Bucket: &loc.Bucket, Delete: &types.Delete{Objects: ids, Quiet: aws.Bool(true)}})
		}
	}
	if s.bucket == "" {
		s.client.DeleteBucket(ctx, &awss3.DeleteBucketInput{Bucket: &loc.Bucket})
	}
}

// Options returns backend options for the location on this server.
func (s *Server) Options(loc Location) s3backend.Options {
	return s3backend.Options{
		Bucket: loc.Bucket, Prefix: loc.Prefix, Region: s.Region,
		Endpoint: s.Endpoint, PathStyle: true,
		Credentials: credentials.NewStaticCredentialsProvider(s.AccessKey, s.SecretKey, ""),
	}
}

// Env returns the environment that points the tools at the location:
// ARTIFACTSTORE_STORAGE_BACKEND=s3, the ARTIFACTSTORE_S3_* settings and the
// AWS credentials.
func (s *Server) Env(loc Location) []string {
	return []string{
		"ARTIFACTSTORE_STORAGE_BACKEND=s3",
		"ARTIFACTSTORE_S3_ENDPOINT=" + s.Endpoint,
		"ARTIFACTSTORE_S3_BUCKET=" + loc.Bucket,
		"ARTIFACTSTORE_S3_PREFIX=" + loc.Prefix,
		"ARTIFACTSTORE_S3_REGION=" + s.Region,
		"ARTIFACTSTORE_S3_PATH_STYLE=true",
		"AWS_ACCESS_KEY_ID=" + s.AccessKey,
		"AWS_SECRET_ACCESS_KEY=" + s.SecretKey,
	}
}
