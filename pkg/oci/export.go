package oci

import (
	"bytes"
	"context"
	"fmt"
	"io"

	v1 "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/errgroup"

	"github.com/artifactstore/artifact-store/pkg/identity"
	"github.com/artifactstore/artifact-store/pkg/records"
	"github.com/artifactstore/artifact-store/pkg/ref"
)

// Source is what Export reads a package from (a *registry.Registry): its
// manifest, then each file's bytes by content address (one lookup per
// object, not a package and path resolution per file), verified while read.
type Source interface {
	GetManifestBytes(ctx context.Context, r ref.Ref, f records.Format) ([]byte, error)
	OpenObject(ctx context.Context, d identity.Digest, offset, length int64) (io.ReadCloser, identity.Digest, error)
}

// ExportOptions tune Export.
type ExportOptions struct {
	// RefName is the org.opencontainers.image.ref.name given to the
	// manifest in index.json; "" means Tag(version).
	RefName string
	// Workers is how many blobs are written at once when the writer allows
	// it (a *DirWriter); at least 1.
	Workers int
}

// Export writes the finalised package r (name@version) to w as an OCI
// artifact (FromPackage): the config blob, one blob per distinct file, the
// manifest, and index.json naming it. Every file's bytes come from src and
// are verified against the file's SHA-256 and size while written, so a
// corrupt stored object fails the export (ErrDigestMismatch) instead of
// reaching the layout. It returns the artifact.
func Export(ctx context.Context, src Source, r ref.Ref, w LayoutWriter, opts ExportOptions) (*Artifact, error) {
	if !r.IsVersion() {
		return nil, fmt.Errorf("%w: export needs name@version, not %s", ref.ErrInvalid, r)
	}
	name := opts.RefName
	if name == "" {
		var err error
		if name, err = Tag(r.Version); err != nil {
			return nil, err
		}
	}
	b, err := src.GetManifestBytes(ctx, r, records.CBOR)
	if err != nil {
		return nil, err
	}
	a, err := FromPackage(b)
	if err != nil {
		return nil, err
	}
	if err := w.WriteBlob(ctx, a.Manifest.Config, bytes.NewReader(a.Config)); err != nil {
		return nil, err
	}
	// One blob per distinct digest, read from the first file that has it.
	var todo []int
	seen := map[string]bool{}
	for i, l := range a.Manifest.Layers {
		if !seen[l.Digest.String()] {
			seen[l.Digest.String()] = true
			todo = append(todo, i)
		}
	}
	workers := max(opts.Workers, 1)
	if _, ok := w.(*DirWriter); !ok {
		workers = 1
	}
	if err := forEach(ctx, todo, workers, func(ctx context.Context, i int) error {
		f := a.Package.Files[i]
		rc, _, err := src.OpenObject(ctx, f.ContentAddress, 0, -1)
		if err != nil {
			return fmt.Errorf("oci: export %s of %s: %w", f.Path, r, err)
		}
		defer rc.Close()
		if err := w.WriteBlob(ctx, a.Manifest.Layers[i], rc); err != nil {
			return fmt.Errorf("oci: export %s of %s: %w", f.Path, r, err)
		}
		return nil
	}); err != nil {
		return nil, err
	}
	if err := w.WriteBlob(ctx, a.Descriptor, bytes.NewReader(a.Bytes)); err != nil {
		return nil, err
	}
	entry := a.Descriptor
	entry.Annotations = map[string]string{v1.AnnotationRefName: name}
	if err := w.Commit(ctx, []v1.Descriptor{entry}); err != nil {
		return nil, err
	}
	return a, nil
}

// forEach runs fn on every item, workers at a time, and returns the first
// error; once one fails the others are cancelled.
func forEach(ctx context.Context, items []int, workers int, fn func(context.Context, int) error) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(workers)
	for _, i := range items {
		if gctx.Err() != nil {
			break
		}
		g.Go(func() error { return fn(gctx, i) })
	}
	if err := g.Wait(); err != nil {
		return err
	}
	return ctx.Err()
}
