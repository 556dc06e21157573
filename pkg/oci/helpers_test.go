package oci

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/artifactstore/artifact-store/pkg/dataplane"
	"github.com/artifactstore/artifact-store/pkg/db"
	"github.com/artifactstore/artifact-store/pkg/identity"
	"github.com/artifactstore/artifact-store/pkg/ref"
	"github.com/artifactstore/artifact-store/pkg/registry"
)

// fixture returns the repository's testdata/fixture tree: path → bytes.
func fixture(t testing.TB) map[string][]byte {
	t.Helper()
	root := filepath.Join("..", "..", "testdata", "fixture")
	out := map[string][]byte{}
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		rel, _ := filepath.Rel(root, p)
		out[filepath.ToSlash(rel)] = b
		return err
	})
	if err != nil || len(out) == 0 {
		t.Fatalf("fixture: %v (%d files)", err, len(out))
	}
	return out
}

// testStore is a registry over d with a local backend at root.
type testStore struct {
	reg  *registry.Registry
	root string
}

func newStore(t testing.TB, d *db.DB) testStore {
	t.Helper()
	root := t.TempDir()
	dp, closeFn, err := dataplane.OpenLocal("local", root, false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeFn() })
	clock := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	reg := registry.New(d, dp, registry.Options{Actor: "test", Now: func() time.Time { clock = clock.Add(time.Second); return clock },
		Tool: "as-put", Build: "as-put 1.0.0"})
	return testStore{reg: reg, root: root}
}

// put stores files as the finalised package r and returns its manifest bytes.
func (s testStore) put(t testing.TB, r ref.Ref, files map[string][]byte, fin registry.FinalizeOptions) []byte {
	t.Helper()
	ctx := context.Background()
	if err := s.reg.CreatePackage(ctx, r, registry.CreateOptions{Labels: map[string]string{"team": "build"}}); err != nil {
		t.Fatal(err)
	}
	for p, b := range files {
		sum, _ := identity.SumReader(bytes.NewReader(b))
		if _, err := s.reg.IngestFile(ctx, r, p, bytes.NewReader(b), registry.IngestOptions{Expect: &sum}); err != nil {
			t.Fatal(err)
		}
	}
	mb, err := s.reg.FinalizePackage(ctx, r, fin)
	if err != nil {
		t.Fatal(err)
	}
	return mb
}

// eventCount returns the log's last sequence number.
func (s testStore) eventCount(t testing.TB) uint64 {
	t.Helper()
	n := uint64(0)
	for {
		evs, err := s.reg.Log().Range(context.Background(), n, 1000)
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) == 0 {
			return n
		}
		n += uint64(len(evs))
	}
}

func digestOf(b []byte) digest.Digest { return digest.SHA256.FromBytes(b) }
