package s3_test

import (
	"bytes"
	"context"
	"os"
	"testing"

	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/artifactstore/artifact-store/pkg/identity"
	"github.com/artifactstore/artifact-store/pkg/storage"
	"github.com/artifactstore/artifact-store/pkg/storage/s3"
	"github.com/artifactstore/artifact-store/pkg/storage/s3/s3test"
	"github.com/artifactstore/artifact-store/pkg/storage/storagetest"
)

func TestMain(m *testing.M) { os.Exit(s3test.Main(m)) }

// open returns a backend on a fresh bucket of the test server.
func open(t *testing.T, tune func(*s3.Options)) (*s3.Backend, *s3test.Server, s3test.Location) {
	t.Helper()
	srv := s3test.Start(t)
	loc := srv.NewBucket(t)
	opts := srv.Options(loc)
	opts.PartSize = s3.MinPartSize // multipart from 5 MiB: the suite's 8 MiB objects take that road
	if tune != nil {
		tune(&opts)
	}
	b, err := s3.Open(t.Context(), opts)
	if err != nil {
		t.Fatal(err)
	}
	return b, srv, loc
}

// openB is open for benchmarks, with the default part size.
func openB(b *testing.B) (*s3.Backend, *s3test.Server, s3test.Location) {
	b.Helper()
	srv := s3test.Start(b)
	loc := srv.NewBucket(b)
	be, err := s3.Open(b.Context(), srv.Options(loc))
	if err != nil {
		b.Fatal(err)
	}
	return be, srv, loc
}

func TestConformance(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) storage.Backend {
		b, _, _ := open(t, nil)
		return b
	})
}

func TestConformancePrefix(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) storage.Backend {
		b, _, _ := open(t, func(o *s3.Options) { o.Prefix = "/team/a/" })
		return b
	})
}

// TestRepair: a re-put replaces a stored object of the wrong size (a HEAD
// size check; a same-size flip is not detected without a download).
func TestRepair(t *testing.T) {
	storagetest.RunRepair(t, func(t *testing.T) (storage.Backend, storagetest.Damage) {
		b, srv, loc := open(t, nil)
		return b, func(ctx context.Context, addr identity.Digest, p []byte) error {
			key, err := b.ObjectKey(addr)
			if err != nil {
				return err
			}
			_, err = srv.Client().PutObject(ctx, &awss3.PutObjectInput{Bucket: &loc.Bucket, Key: &key, Body: bytes.NewReader(p)})
			return err
		}
	}, false)
}
