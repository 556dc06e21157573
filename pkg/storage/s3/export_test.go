package s3

import "github.com/artifactstore/artifact-store/pkg/identity"

// SetCopyLimit lowers the size above which Commit copies with
// UploadPartCopy, so that tests reach that road with small objects.
func (b *Backend) SetCopyLimit(n int64) { b.copyLimit = n }

// ObjectKey is objectKey, for tests that damage a stored object.
func (b *Backend) ObjectKey(addr identity.Digest) (string, error) { return b.objectKey(addr) }
