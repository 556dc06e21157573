package main_test

import (
	"os"
	"strings"
	"testing"

	"github.com/artifactstore/artifact-store/internal/tooltest"
	"github.com/artifactstore/artifact-store/pkg/storage/s3/s3test"
)

func TestMain(m *testing.M) { os.Exit(s3test.Main(m)) }

// TestCheckS3 probes a real S3 server: backends.s3 is ok and its detail
// names the bucket and the latency, never the credentials.
func TestCheckS3(t *testing.T) {
	srv := s3test.Start(t)
	loc := srv.NewBucket(t)
	_, env := cleanEnv(t, srv.Env(loc)...)
	// A check never creates the embedded database: make it first.
	if r := tooltest.Run(t, "", nil, env, "as-events", "migrate"); r.Code != 0 {
		t.Fatalf("migrate: %s", r.Stderr)
	}
	r := tooltest.Run(t, "", nil, env, "as-health", "--check")
	rep := report(t, r.Stdout)
	if r.Code != 0 || len(rep.Failing()) > 0 {
		t.Fatalf("exit %d, failing %v\n%s\n%s", r.Code, rep.Failing(), r.Stdout, r.Stderr)
	}
	out := string(r.Stdout) + string(r.Stderr)
	if !strings.Contains(out, loc.Bucket) || !strings.Contains(out, "HeadBucket") {
		t.Errorf("report does not name the bucket and probe:\n%s", r.Stdout)
	}
	if strings.Contains(out, srv.SecretKey) {
		t.Errorf("output shows the secret key")
	}
	t.Logf("%s", r.Stdout)
}
