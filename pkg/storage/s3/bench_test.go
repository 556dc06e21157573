package s3_test

import (
	"bytes"
	"context"
	"fmt"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/artifactstore/artifact-store/pkg/storage/s3"
)

// benchSizes: one object that fits in a part, one multipart object.
var benchSizes = []int{1 << 20, 64 << 20}

// BenchmarkPut: the backend's streamed put (hashing, part checksums,
// temporary key, copy, delete) of fresh bytes.
func BenchmarkPut(b *testing.B) {
	for _, size := range benchSizes {
		b.Run(fmt.Sprintf("%dMiB", size>>20), func(b *testing.B) {
			be, _, _ := openB(b)
			body := data(9, size)
			b.SetBytes(int64(size))
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				body[0] = byte(i) // fresh bytes each time: no no-op puts
				body[1] = byte(i >> 8)
				if _, err := put(context.Background(), be, body); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkPlainUpload: the same bytes with the bare SDK, no hashing, no
// checksums, no copy: PutObject below the part size, else a multipart
// upload of 8 MiB parts, two in flight — the reference for BenchmarkPut.
func BenchmarkPlainUpload(b *testing.B) {
	for _, size := range benchSizes {
		b.Run(fmt.Sprintf("%dMiB", size>>20), func(b *testing.B) {
			_, srv, loc := openB(b)
			c := srv.Client()
			ctx := context.Background()
			body := data(9, size)
			b.SetBytes(int64(size))
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				key := fmt.Sprintf("plain/%d", i)
				if size <= s3.DefaultPartSize {
					if _, err := c.PutObject(ctx, &awss3.PutObjectInput{Bucket: &loc.Bucket, Key: &key, Body: bytes.NewReader(body)}); err != nil {
						b.Fatal(err)
					}
					continue
				}
				up, err := c.CreateMultipartUpload(ctx, &awss3.CreateMultipartUploadInput{Bucket: &loc.Bucket, Key: &key})
				if err != nil {
					b.Fatal(err)
				}
				parts := make([]types.CompletedPart, (size+s3.DefaultPartSize-1)/s3.DefaultPartSize)
				sem := make(chan struct{}, s3.DefaultConcurrency)
				errs := make(chan error, len(parts))
				for p := range parts {
					sem <- struct{}{}
					go func() {
						defer func() { <-sem }()
						part := body[p*s3.DefaultPartSize : min((p+1)*s3.DefaultPartSize, size)]
						out, err := c.UploadPart(ctx, &awss3.UploadPartInput{Bucket: &loc.Bucket, Key: &key, UploadId: up.UploadId,
							PartNumber: aws.Int32(int32(p + 1)), Body: bytes.NewReader(part)})
						if err == nil {
							parts[p] = types.CompletedPart{ETag: out.ETag, PartNumber: aws.Int32(int32(p + 1))}
						}
						errs <- err
					}()
				}
				for range parts {
					if err := <-errs; err != nil {
						b.Fatal(err)
					}
				}
				if _, err := c.CompleteMultipartUpload(ctx, &awss3.CompleteMultipartUploadInput{Bucket: &loc.Bucket, Key: &key, UploadId: up.UploadId,
					MultipartUpload: &types.CompletedMultipartUpload{Parts: parts}}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
