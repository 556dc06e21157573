package store

import (
	"context"

	"github.com/artifactstore/artifact-store/pkg/config"
	"github.com/artifactstore/artifact-store/pkg/dataplane"
)

// openDataPlane opens the data plane over the configured storage backend:
// the local filesystem under cfg.LocalRoot (backend id "local"), or the
// S3-compatible bucket of cfg.S3 (backend id "s3", credentials from the
// standard AWS chain). cfg.CheckBackend is applied first, so a missing
// bucket or a malformed endpoint is reported before any I/O.
func openDataPlane(ctx context.Context, cfg config.Config) (*dataplane.InProcess, func() error, error) {
	if err := cfg.CheckBackend(); err != nil {
		return nil, nil, err
	}
	if cfg.StorageBackend == config.BackendS3 {
		return dataplane.OpenS3(ctx, nil, config.BackendS3, cfg.S3)
	}
	return dataplane.OpenLocal(nil, config.BackendLocal, cfg.LocalRoot)
}
