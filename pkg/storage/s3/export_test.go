package s3

// SetCopyLimit lowers the size above which Commit copies with
// UploadPartCopy, so that tests reach that road with small objects.
func (b *Backend) SetCopyLimit(n int64) { b.copyLimit = n }
