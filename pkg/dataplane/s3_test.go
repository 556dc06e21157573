package dataplane

import (
	"bytes"
	"errors"
	"io"
	"os"
	"testing"

	"github.com/artifactstore/artifact-store/pkg/config"
	"github.com/artifactstore/artifact-store/pkg/storage/s3/s3test"
)

func TestMain(m *testing.M) { os.Exit(s3test.Main(m)) }

// TestOpenS3 ingests, serves, verifies and deletes through the S3 wiring
// the tools use, with credentials from the environment (the AWS chain).
func TestOpenS3(t *testing.T) {
	srv := s3test.Start(t)
	loc := srv.NewBucket(t)
	t.Setenv("AWS_ACCESS_KEY_ID", srv.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", srv.SecretKey)
	t.Setenv("AWS_CONFIG_FILE", os.DevNull)
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", os.DevNull)
	cfg := config.S3{Endpoint: srv.Endpoint, Bucket: loc.Bucket, Prefix: loc.Prefix, Region: srv.Region, PathStyle: true}
	d, closeFn, err := OpenS3(t.Context(), "s3", cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer closeFn()
	b := bytes.Repeat([]byte("artifact "), 2<<20) // 18 MiB: multipart
	res, err := d.IngestStream(t.Context(), bytes.NewReader(b), IngestOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Sum != sumOf(b) || res.Receipt.BackendID != "s3" {
		t.Fatalf("ingest: %+v", res)
	}
	rc, err := d.ServeObject(t.Context(), res.Sum.BLAKE3, 5, 10)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || !bytes.Equal(got, b[5:15]) {
		t.Fatalf("ServeObject: %q, %v", got, err)
	}
	if _, err := d.VerifyObject(t.Context(), res.Sum.BLAKE3); err != nil {
		t.Fatal(err)
	}
	if err := d.DeleteObject(t.Context(), res.Sum.BLAKE3); err != nil {
		t.Fatal(err)
	}
	if _, err := d.StatObject(t.Context(), res.Sum.BLAKE3); !errors.Is(err, ErrNotFound) {
		t.Fatalf("StatObject after delete: %v", err)
	}
}
