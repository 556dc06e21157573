package oci

import (
	"context"
	"fmt"
	"io"
	"maps"

	v1 "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/artifactstore/artifact-store/pkg/identity"
	"github.com/artifactstore/artifact-store/pkg/manifest"
	"github.com/artifactstore/artifact-store/pkg/records"
	"github.com/artifactstore/artifact-store/pkg/ref"
	"github.com/artifactstore/artifact-store/pkg/registry"
)

// Sink is what Import stores a package into (a *registry.Registry).
type Sink interface {
	ImportPackage(ctx context.Context, r ref.Ref, in []registry.Input, opts registry.ImportOptions) ([]byte, error)
}

// ImportOptions tune Import.
type ImportOptions struct {
	// RefName selects the manifest by its ref.name in the layout's index;
	// "" takes the index's only manifest.
	RefName string
	// Workers is how many files are stored at once (at least 1).
	Workers int
}

// Plan is what Import stores: the package's files, with what their
// descriptors say of them, and the declarations carried from the config.
type Plan struct {
	Manifest   v1.Manifest
	Descriptor v1.Descriptor // of the manifest
	Files      []PlannedFile // in layer order
	// Config is the artifact's package manifest when its config blob is
	// one (MediaTypeManifestCBOR); its labels, facts, created_at, producer
	// and retention class are carried to the new package.
	Config *manifest.Manifest
}

// PlannedFile is one layer as a file.
type PlannedFile struct {
	Path   string
	Layer  v1.Descriptor
	Expect identity.Sum // SHA-256 (when the layer's digest is sha256), size, BLAKE3 when known
}

// PlanImport reads and checks everything Import needs from the layout
// before any byte is stored: the manifest named by name (verified against
// its descriptor), that it is a package-shaped artifact (every layer a file
// with a valid package path as its title, no two alike; not a container
// image, not a directory packed by oras), that every blob is present with
// its descriptor's size, and, if the config is one of our manifests, that
// it lists exactly the layers' files.
func PlanImport(l *Layout, name string) (*Plan, error) {
	desc, err := l.Find(name)
	if err != nil {
		return nil, err
	}
	switch desc.MediaType {
	case v1.MediaTypeImageManifest:
	case v1.MediaTypeImageIndex:
		return nil, fmt.Errorf("%w: %s is an image index (a multi-platform image?); name a manifest of one package", ErrUnsupported, desc.Digest)
	default:
		return nil, fmt.Errorf("%w: %s has media type %s, not an OCI image manifest", ErrUnsupported, desc.Digest, desc.MediaType)
	}
	b, err := l.ReadBlob(desc, MaxManifestBytes)
	if err != nil {
		return nil, err
	}
	m, err := ParseManifest(b)
	if err != nil {
		return nil, err
	}
	if m.Config.MediaType == v1.MediaTypeImageConfig && m.ArtifactType == "" {
		return nil, fmt.Errorf("%w: %s is a container image (config %s): its layers are filesystem changes, not files", ErrUnsupported, desc.Digest, m.Config.MediaType)
	}
	p := &Plan{Manifest: m, Descriptor: desc}
	seen := map[string]int{}
	for i, layer := range m.Layers {
		title, ok := layer.Annotations[v1.AnnotationTitle]
		if !ok {
			return nil, fmt.Errorf("%w: layer %d (%s) has no %s annotation, so it is not a file with a path; an image or an untitled artifact cannot be imported", ErrUnsupported, i, layer.Digest, v1.AnnotationTitle)
		}
		if err := records.CheckPath(title); err != nil {
			return nil, fmt.Errorf("%w: layer %d title %q is not a package path: %w", ErrInvalid, i, title, err)
		}
		if layer.Annotations[AnnotationORASUnpack] == "true" {
			return nil, fmt.Errorf("%w: layer %d (%q) is a directory packed by oras (%s); push its files instead", ErrUnsupported, i, title, AnnotationORASUnpack)
		}
		if j, dup := seen[title]; dup {
			return nil, fmt.Errorf("%w: layers %d and %d are both titled %q", ErrInvalid, j, i, title)
		}
		seen[title] = i
		pf := PlannedFile{Path: title, Layer: layer, Expect: identity.Sum{Size: layer.Size}}
		if d, ok := ToIdentity(layer.Digest); ok {
			pf.Expect.SHA256 = d
		}
		if s, ok := layer.Annotations[AnnotationBLAKE3]; ok {
			d, err := identity.Parse(s)
			if err != nil || d.Algorithm() != identity.BLAKE3 {
				return nil, fmt.Errorf("%w: layer %d %s annotation %q is not a blake3 address", ErrInvalid, i, AnnotationBLAKE3, s)
			}
			pf.Expect.BLAKE3 = d
		}
		p.Files = append(p.Files, pf)
	}
	for _, f := range p.Files {
		if err := l.Stat(f.Layer); err != nil {
			return nil, fmt.Errorf("layer %q: %w", f.Path, err)
		}
	}
	if m.Config.MediaType == MediaTypeManifestCBOR {
		cb, err := l.ReadBlob(m.Config, manifest.MaxBytes)
		if err != nil {
			return nil, fmt.Errorf("config: %w", err)
		}
		cm, err := manifest.Decode(cb)
		if err != nil {
			return nil, fmt.Errorf("%w: config: %w", ErrInvalid, err)
		}
		if err := sameFiles(cm, p.Files); err != nil {
			return nil, err
		}
		p.Config = &cm
	}
	return p, nil
}

// sameFiles checks that the config manifest lists exactly the layers.
func sameFiles(cm manifest.Manifest, files []PlannedFile) error {
	if len(cm.Files) != len(files) {
		return fmt.Errorf("%w: the config manifest lists %d files, the artifact has %d layers", ErrInvalid, len(cm.Files), len(files))
	}
	byPath := map[string]records.File{}
	for _, f := range cm.Files {
		byPath[f.Path] = f
	}
	for _, f := range files {
		c, ok := byPath[f.Path]
		if !ok {
			return fmt.Errorf("%w: layer %q is not a file of the config manifest", ErrInvalid, f.Path)
		}
		if int64(c.Size) != f.Layer.Size || f.Layer.Digest != FromIdentity(c.SHA256) ||
			!f.Expect.BLAKE3.IsZero() && f.Expect.BLAKE3 != c.ContentAddress {
			return fmt.Errorf("%w: layer %q differs from the config manifest's file of that path", ErrInvalid, f.Path)
		}
	}
	return nil
}

// Import stores the artifact that opts.RefName names in the layout as the
// finalised package r (name@version), in one registry operation: the plan
// is checked first (PlanImport), then every layer's bytes are stored,
// verified against the layer's digest and size while stored; on any
// failure nothing is recorded. It returns the plan and the new package's
// canonical manifest bytes.
func Import(ctx context.Context, dst Sink, l *Layout, r ref.Ref, opts ImportOptions) (*Plan, []byte, error) {
	if !r.IsVersion() {
		return nil, nil, fmt.Errorf("%w: import needs name@version, not %s", ref.ErrInvalid, r)
	}
	p, err := PlanImport(l, opts.RefName)
	if err != nil {
		return nil, nil, err
	}
	in := make([]registry.Input, len(p.Files))
	for i, f := range p.Files {
		expect := f.Expect
		in[i] = registry.Input{Path: f.Path, Expect: &expect, Open: func() (io.ReadCloser, error) {
			if !f.Expect.SHA256.IsZero() {
				return l.OpenRaw(f.Layer) // the data plane checks SHA-256 and size
			}
			return l.Open(f.Layer) // sha512: checked here while read
		}}
	}
	var iopts registry.ImportOptions
	iopts.Workers = opts.Workers
	if c := p.Config; c != nil {
		iopts.Create = registry.CreateOptions{RetentionClass: c.Retention.Class, Labels: maps.Clone(c.Package.Labels)}
		iopts.Finalize = registry.FinalizeOptions{CreatedAt: c.Package.CreatedAt, Facts: maps.Clone(c.Provenance.Facts)}
		iopts.Producer = c.Provenance.Producer
	}
	b, err := dst.ImportPackage(ctx, r, in, iopts)
	if err != nil {
		return nil, nil, err
	}
	return p, b, nil
}
