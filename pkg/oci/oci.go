// Package oci is artifact-store's one mapping onto the OCI image format
// (image-spec v1.1; docs/adr/0006-oci-compatibility.md): a finalised
// package is one OCI image manifest whose config blob is the package's
// canonical CBOR manifest and whose layers are its files, in path order.
//
// [FromPackage] builds that manifest from a package's canonical manifest
// bytes, serialised as RFC 8785 JSON so that a package has exactly one OCI
// manifest digest. [ParseManifest] and [ParseIndex] read OCI documents
// strictly (size limit, duplicate keys, media types, digests). [Layout]
// reads an OCI image layout (a directory, or a tar file through [TarFS]);
// [DirWriter] and [TarWriter] write one. [Export] and [Import] move a
// package between a registry and a layout, verifying every byte against
// its descriptor on the way.
package oci

import (
	_ "crypto/sha256" // registers the algorithms go-digest verifies
	_ "crypto/sha512"
	"errors"
	"fmt"

	"github.com/artifactstore/artifact-store/pkg/dataplane"
)

// Media types and annotations of the mapping that the OCI specifications
// do not define (the specification's own come from image-spec's v1 package).
const (
	// ArtifactType is the manifest's artifactType: an artifact-store package.
	ArtifactType = "application/vnd.artifactstore.package.v1"
	// MediaTypeManifestCBOR is the config blob's media type: the package's
	// canonical CBOR manifest (docs/manifest.md).
	MediaTypeManifestCBOR = "application/vnd.artifactstore.manifest.v1+cbor"
	// MediaTypeFile is every layer's media type: a file's bytes, as is.
	MediaTypeFile = "application/octet-stream"
	// AnnotationBLAKE3 is a layer's BLAKE3 content address.
	AnnotationBLAKE3 = "io.github.artifactstore.blake3"
	// AnnotationORASUnpack marks a layer that oras packed from a directory
	// (a tar+gzip to unpack); such a layer is not one file.
	AnnotationORASUnpack = "io.deis.oras.content.unpack"
)

// MaxManifestBytes is the largest OCI manifest, index or oci-layout file
// this package reads: 4 MiB, the limit registries commonly apply.
const MaxManifestBytes = 4 << 20

// Errors callers branch on. ErrNotFound and ErrDigestMismatch wrap the data
// plane's sentinels, so the tools' exit codes (not found 3, integrity 4)
// follow without a table of their own.
var (
	// ErrInvalid: a malformed manifest, index, descriptor or layout.
	ErrInvalid = errors.New("oci: invalid")
	// ErrUnsupported: a well-formed OCI document that is not a package (a
	// container image, an untitled layer, a packed directory).
	ErrUnsupported = errors.New("oci: not a package")
	// ErrNotFound: a blob or reference absent from a layout.
	ErrNotFound = fmt.Errorf("oci: %w", dataplane.ErrNotFound)
	// ErrDigestMismatch: bytes that do not match their descriptor.
	ErrDigestMismatch = fmt.Errorf("oci: %w", dataplane.ErrDigestMismatch)
)

func invalidf(format string, a ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, a...))
}
