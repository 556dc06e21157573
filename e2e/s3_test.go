package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/artifactstore/artifact-store/internal/tooltest"
	"github.com/artifactstore/artifact-store/pkg/db"
	"github.com/artifactstore/artifact-store/pkg/manifest"
	"github.com/artifactstore/artifact-store/pkg/storage/s3/s3test"
)

func TestMain(m *testing.M) { os.Exit(s3test.Main(m)) }

// TestPipelineS3 is the set-up of a team that outgrew one machine: the
// tools on SQLite and on PostgreSQL with the objects in an S3 bucket
// (MinIO started by the test run).
func TestPipelineS3(t *testing.T) {
	srv := s3test.Start(t)
	for _, d := range []db.Dialect{db.SQLite, db.Postgres} {
		t.Run(string(d), func(t *testing.T) {
			e := newEnv(t, d)
			tooltest.Path(t, "as-health")
			loc := srv.NewBucket(t)
			e.vars = append(e.vars, srv.Env(loc)...)
			e.vars = append(e.vars, "AWS_CONFIG_FILE="+os.DevNull, "AWS_SHARED_CREDENTIALS_FILE="+os.DevNull)
			out := t.TempDir()
			mf := filepath.Join(out, "app.manifest")
			e.ok("find testdata/fixture -type f | as-digest | as-put --package app@1.2.3 --finalize > " + mf)
			b, err := os.ReadFile(mf)
			if err != nil {
				t.Fatal(err)
			}
			m, err := manifest.Decode(b)
			if err != nil {
				t.Fatalf("as-put --finalize output is not a manifest: %v", err)
			}
			for _, f := range m.Files {
				dst := filepath.Join(out, strings.ReplaceAll(f.Path, "/", "_"))
				e.ok(fmt.Sprintf("as-get --package app@1.2.3 %q -o %q && cmp %q testdata/fixture/%s", f.Path, dst, dst, f.Path))
			}
			e.ok("as-get --manifest app@1.2.3 | as-manifest verify --root testdata/fixture")
			e.ok("as-events verify && as-replay --check")
			// The bytes are in the bucket, none under the local root.
			list, err := srv.Client().ListObjectsV2(t.Context(), &awss3.ListObjectsV2Input{Bucket: &loc.Bucket})
			if err != nil {
				t.Fatal(err)
			}
			if n := len(list.Contents); n != len(m.Files) {
				t.Errorf("%d objects in the bucket, want %d", n, len(m.Files))
			}
			if got := e.ok("{ find \"$ARTIFACTSTORE_STORAGE_LOCAL_ROOT\" -type f -path '*blake3*' 2>/dev/null || true; } | wc -l"); strings.TrimSpace(got) != "0" {
				t.Errorf("objects under the local root: %s", got)
			}
			// Receipts name the s3 backend.
			if log := e.ok("as-events tail --since 0 --json"); !strings.Contains(log, `"s3"`) {
				t.Errorf("events do not name the s3 backend:\n%s", log)
			}
			h := e.ok("as-health --check")
			if !strings.Contains(h, `"s3"`) || !strings.Contains(h, loc.Bucket) {
				t.Errorf("as-health does not report the S3 backend:\n%s", h)
			}
		})
	}
}
