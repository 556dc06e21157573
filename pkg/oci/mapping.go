package oci

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/gowebpki/jcs"
	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/specs-go"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/artifactstore/artifact-store/pkg/identity"
	"github.com/artifactstore/artifact-store/pkg/manifest"
	"github.com/artifactstore/artifact-store/pkg/ref"
)

// Artifact is a package as an OCI artifact: what an exporter writes and a
// registry serves. Manifest.Layers[i] is the file Package.Files[i].
type Artifact struct {
	Package manifest.Manifest // the decoded package manifest
	Config  []byte            // its canonical CBOR bytes: the config blob
	// Manifest is the OCI image manifest, and Bytes its RFC 8785 JSON:
	// the bytes whose SHA-256 is Descriptor.Digest.
	Manifest   v1.Manifest
	Bytes      []byte
	Descriptor v1.Descriptor // of Bytes: media type, digest, size
}

// FromPackage maps a finalised package, given its canonical CBOR manifest
// (registry.GetManifestBytes), to its OCI artifact. The result depends on
// those bytes alone: no clock, no host, no order of its own.
func FromPackage(cbor []byte) (*Artifact, error) {
	m, err := manifest.Decode(cbor)
	if err != nil {
		return nil, fmt.Errorf("oci: %w", err)
	}
	om := v1.Manifest{
		Versioned:    specs.Versioned{SchemaVersion: 2},
		MediaType:    v1.MediaTypeImageManifest,
		ArtifactType: ArtifactType,
		Config: v1.Descriptor{
			MediaType: MediaTypeManifestCBOR,
			Digest:    digest.SHA256.FromBytes(cbor),
			Size:      int64(len(cbor)),
		},
		Layers: make([]v1.Descriptor, 0, len(m.Files)), // [] rather than null for no files
	}
	for _, f := range m.Files {
		om.Layers = append(om.Layers, v1.Descriptor{
			MediaType: MediaTypeFile,
			Digest:    FromIdentity(f.SHA256),
			Size:      int64(f.Size),
			Annotations: map[string]string{
				v1.AnnotationTitle: f.Path,
				AnnotationBLAKE3:   f.ContentAddress.String(),
			},
		})
	}
	if m.Package.Version != "" {
		om.Annotations = map[string]string{v1.AnnotationVersion: m.Package.Version}
		if m.Package.CreatedAt != "" {
			om.Annotations[v1.AnnotationCreated] = m.Package.CreatedAt
		}
	}
	b, err := Canonical(om)
	if err != nil {
		return nil, err
	}
	return &Artifact{
		Package: m, Config: cbor, Manifest: om, Bytes: b,
		Descriptor: v1.Descriptor{MediaType: v1.MediaTypeImageManifest, Digest: digest.SHA256.FromBytes(b), Size: int64(len(b))},
	}, nil
}

// Canonical returns v as RFC 8785 (JCS) JSON: sorted keys, no
// insignificant white space, one spelling per value.
func Canonical(v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("oci: encode: %w", err)
	}
	out, err := jcs.Transform(b)
	if err != nil {
		return nil, fmt.Errorf("oci: canonicalise: %w", err)
	}
	return out, nil
}

// FromIdentity converts a sha256 identity.Digest to an OCI digest.
func FromIdentity(d identity.Digest) digest.Digest {
	return digest.NewDigestFromEncoded(digest.Algorithm(d.Algorithm()), d.Hex())
}

// ToIdentity converts an OCI sha256 digest to an identity.Digest; other
// algorithms (sha512) have no identity form and give ok false.
func ToIdentity(d digest.Digest) (identity.Digest, bool) {
	if d.Algorithm() != digest.SHA256 {
		return identity.Digest{}, false
	}
	id, err := identity.Parse(d.String())
	return id, err == nil
}

// Tag returns the OCI tag that names version (the
// org.opencontainers.image.ref.name an export writes): the version itself,
// with '+' (SemVer build metadata) mapped to '_' as Helm does. A version
// with no tag form (one holding '~', or starting with '.' or '-') is an
// error naming the rule.
func Tag(version string) (string, error) {
	t := strings.ReplaceAll(version, "+", "_")
	if err := ref.CheckTag(t); err != nil {
		return "", fmt.Errorf("%w: version %q has no OCI tag form: %w", ErrUnsupported, version, err)
	}
	return t, nil
}
