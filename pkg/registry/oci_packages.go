package registry

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/artifactstore/artifact-store/pkg/identity"
	"github.com/opencontainers/go-digest"
)

// PackageFileBlob returns, as an OCI blob of repository name, a file of a
// finalised package called name whose SHA-256 is d: how a package's files
// are pullable through the OCI API (docs/adr/0012-as-serve.md). ErrNotFound
// when no finalised package of that name holds such a file, or d is not
// a sha256 digest.
func (r *Registry) PackageFileBlob(ctx context.Context, name string, d digest.Digest) (OCIBlob, error) {
	if d.Algorithm() != digest.SHA256 || d.Validate() != nil {
		return OCIBlob{}, fmt.Errorf("%w: blob %s in %s", ErrNotFound, truncate(string(d)), name)
	}
	var ca string
	b := OCIBlob{Repository: name, Digest: d}
	err := r.db.SQL.QueryRowContext(ctx, `SELECT f.content_address, f.size FROM artifact_files f
		JOIN artifact_packages p ON p.name = f.package_name AND p.version = f.package_version
		WHERE f.package_name = $1 AND p.finalized_seq IS NOT NULL
		AND f.content_address IN (SELECT content_address FROM storage_locations WHERE digest_sha256 = $2) LIMIT 1`,
		name, d.Encoded()).Scan(&ca, &b.Size)
	if errors.Is(err, sql.ErrNoRows) {
		return OCIBlob{}, fmt.Errorf("%w: blob %s in %s", ErrNotFound, truncate(string(d)), name)
	}
	if err != nil {
		return OCIBlob{}, fmt.Errorf("registry: blob %s in %s: %w", d, name, err)
	}
	if b.ContentAddress, err = identity.Parse(ca); err != nil {
		return OCIBlob{}, err
	}
	return b, nil
}
