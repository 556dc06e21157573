package ociserve

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/artifactstore/artifact-store/pkg/oci"
	"github.com/artifactstore/artifact-store/pkg/records"
	"github.com/artifactstore/artifact-store/pkg/ref"
	"github.com/artifactstore/artifact-store/pkg/registry"
	"github.com/opencontainers/go-digest"
)

// Finalised packages as OCI content (docs/adr/0012-as-serve.md): where
// repository name holds no pushed manifest under a reference, the finalised
// package name@reference (a version, its OCI tag form with '_' for '+', or
// a package tag), or the one whose mapped manifest has that digest, is
// served as pkg/oci's reproducible image manifest, and its config and
// files as blobs.

// packageArtifact maps the finalised package name@reference.
func packageArtifact(ctx context.Context, reg *registry.Registry, name, reference string) (*oci.Artifact, error) {
	if strings.Contains(reference, ":") {
		d, err := digest.Parse(reference)
		if err != nil {
			return nil, fmt.Errorf("%w: manifest %s in %s", registry.ErrNotFound, reference, name)
		}
		var found *oci.Artifact
		err = eachFinalised(ctx, reg, name, func(cbor []byte) bool {
			a, err := oci.FromPackage(cbor)
			if err == nil && a.Descriptor.Digest == d {
				found = a
				return false
			}
			return true
		})
		if err != nil {
			return nil, err
		}
		if found == nil {
			return nil, fmt.Errorf("%w: manifest %s in %s", registry.ErrNotFound, reference, name)
		}
		return found, nil
	}
	refs := []ref.Ref{ref.Version(name, reference)}
	if v := strings.ReplaceAll(reference, "_", "+"); v != reference {
		refs = append(refs, ref.Version(name, v))
	}
	refs = append(refs, ref.Ref{Name: name, Tag: reference})
	for _, rf := range refs {
		cbor, err := reg.GetManifestBytes(ctx, rf, records.CBOR)
		if errors.Is(err, registry.ErrNotFound) || errors.Is(err, registry.ErrNotFinalized) {
			continue
		}
		if err != nil {
			return nil, err
		}
		return oci.FromPackage(cbor)
	}
	return nil, fmt.Errorf("%w: manifest %s in %s", registry.ErrNotFound, reference, name)
}

// packageConfig returns the canonical CBOR manifest of the finalised
// package called name whose SHA-256 is d: the config blob of its mapping.
func packageConfig(ctx context.Context, reg *registry.Registry, name string, d digest.Digest) ([]byte, error) {
	var found []byte
	if d.Algorithm() == digest.SHA256 {
		err := eachFinalised(ctx, reg, name, func(cbor []byte) bool {
			if digest.SHA256.FromBytes(cbor) == d {
				found = cbor
				return false
			}
			return true
		})
		if err != nil {
			return nil, err
		}
	}
	if found == nil {
		return nil, fmt.Errorf("%w: blob %s in %s", registry.ErrNotFound, d, name)
	}
	return found, nil
}

// eachFinalised calls f with the canonical CBOR manifest of each finalised
// package called name until f returns false.
func eachFinalised(ctx context.Context, reg *registry.Registry, name string, f func(cbor []byte) bool) error {
	if strings.ContainsAny(name, `*?[\`) {
		return nil // a glob, not a name: List would match others
	}
	for l, err := range reg.List(ctx, registry.Filter{Name: name, State: "finalized"}) {
		if err != nil {
			return err
		}
		cbor, err := reg.GetManifestBytes(ctx, ref.Version(l.Name, l.Version), records.CBOR)
		if err != nil {
			return err
		}
		if !f(cbor) {
			return nil
		}
	}
	return nil
}

// packagePush is what an ORAS-style push makes of a manifest pushed by tag
// (docs/adr/0012-as-serve.md): when it is an OCI image manifest with at
// least one layer and every layer is titled with a valid package path
// (org.opencontainers.image.title), and the tag is a valid version, the
// push is also the finalised package name@tag, its files the layers' blobs.
// It returns nil, nil when the manifest is not such a push.
type packagePush struct {
	ref    ref.Ref
	inputs []registry.Input
}

// planPackagePush decides whether the manifest body pushed under tag is a
// package push and, if the version exists, whether the push may go on:
// pushing again the manifest the tag already names is allowed; anything
// else to an existing version is DENIED (versions are immutable, §16).
func planPackagePush(ctx context.Context, reg *registry.Registry, name, tag string, d digest.Digest, body []byte) (*packagePush, error) {
	if tag == "" {
		return nil, nil
	}
	m, err := oci.ParseManifest(body)
	if err != nil || len(m.Layers) == 0 {
		return nil, nil
	}
	rf := ref.Version(name, tag)
	if _, err := ref.Parse(rf.String()); err != nil {
		return nil, nil // the tag is no version
	}
	p := &packagePush{ref: rf}
	for _, l := range m.Layers {
		path := l.Annotations[specTitle]
		if path == "" || records.CheckPath(path) != nil {
			return nil, nil
		}
		b, err := reg.OCIBlobInfo(ctx, name, l.Digest)
		if err != nil {
			return nil, toAPIError(err, CodeBlobUnknown)
		}
		in := registry.Input{Path: path, Reopen: true,
			Open: func() (io.ReadCloser, error) { return reg.OpenOCIBlob(ctx, b, 0, -1) }}
		if sum, ok := b.Sum(); ok {
			in.Stored = &sum // pushed and verified already: not read again
		}
		p.inputs = append(p.inputs, in)
	}
	if _, err := reg.GetPackage(ctx, rf); err == nil {
		if cur, err := reg.OCIManifestInfo(ctx, name, tag); err == nil && cur.Digest == d {
			return nil, nil // the same push again
		}
		return nil, newError(http.StatusForbidden, CodeDenied, fmt.Sprintf("package %s exists and versions are immutable; push a new version", rf))
	} else if !errors.Is(err, registry.ErrNotFound) {
		return nil, toAPIError(err, CodeManifestInvalid)
	}
	return p, nil
}

// specTitle is the annotation naming a layer's file (image-spec
// annotations.md).
const specTitle = "org.opencontainers.image.title"

// run imports the package: created, filled and finalised in one
// transaction, or not at all.
func (p *packagePush) run(ctx context.Context, reg *registry.Registry) error {
	if _, err := reg.ImportPackage(ctx, p.ref, p.inputs, registry.ImportOptions{Workers: 4}); err != nil {
		if errors.Is(err, registry.ErrExists) {
			return newError(http.StatusForbidden, CodeDenied, fmt.Sprintf("package %s exists and versions are immutable; push a new version", p.ref))
		}
		return toAPIError(err, CodeManifestInvalid)
	}
	return nil
}
