package dataplane

import (
	"context"
	"time"

	"github.com/artifactstore/artifact-store/pkg/config"
	"github.com/artifactstore/artifact-store/pkg/storage/s3"
)

// openS3Clean bounds the stale-upload cleanup OpenS3 runs.
const openS3Clean = 10 * time.Second

// OpenS3 opens the S3-compatible backend described by cfg (credentials from
// the standard AWS chain) and registers it under backendID in reg (if reg
// is not nil). It is the wiring the tools use, so that no other package
// imports pkg/storage/s3. Like OpenLocal, it then removes what crashed
// writers left (multipart uploads and temporaries older than
// s3.DefaultStaleAge), best effort: a failure there (a read-only policy, an
// unreachable server) does not stop the open, and the next open tries
// again. The returned close function releases the backend.
func OpenS3(ctx context.Context, backendID string, cfg config.S3) (*InProcess, func() error, error) {
	be, err := s3.Open(ctx, s3.Options{
		ID: backendID, Bucket: cfg.Bucket, Prefix: cfg.Prefix, Region: cfg.Region,
		Endpoint: cfg.Endpoint, PathStyle: cfg.PathStyle,
	})
	if err != nil {
		return nil, nil, err
	}
	d, err := NewInProcess(backendID, be)
	if err != nil {
		be.Close()
		return nil, nil, err
	}
	cctx, cancel := context.WithTimeout(ctx, openS3Clean)
	be.CleanStale(cctx, s3.DefaultStaleAge)
	cancel()
	return d, be.Close, nil
}
