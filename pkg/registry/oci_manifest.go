package registry

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/opencontainers/go-digest"
)

// MaxOCIManifestSize is the largest manifest the OCI API stores (the
// limit most registries apply; the distribution spec lets a registry
// choose).
const MaxOCIManifestSize = 4 << 20

// Media types the OCI API knows the shape of.
const (
	MediaTypeOCIManifest    = "application/vnd.oci.image.manifest.v1+json"
	MediaTypeOCIIndex       = "application/vnd.oci.image.index.v1+json"
	MediaTypeDockerManifest = "application/vnd.docker.distribution.manifest.v2+json"
	MediaTypeDockerList     = "application/vnd.docker.distribution.manifest.list.v2+json"
)

// OCIManifestMeta is what the registry needs from a manifest's JSON: its
// media type, artifact type (for referrers), subject and annotations.
type OCIManifestMeta struct {
	MediaType    string
	ArtifactType string
	Subject      digest.Digest // "" when none
	Annotations  map[string]string
	// References are the digests of the config, layers and (for an index)
	// manifests it names, in document order.
	References []digest.Digest
}

type ociDescriptor struct {
	MediaType    string            `json:"mediaType"`
	Digest       digest.Digest     `json:"digest"`
	Size         *int64            `json:"size"`
	ArtifactType string            `json:"artifactType,omitempty"`
	Annotations  map[string]string `json:"annotations,omitempty"`
}

type ociDocument struct {
	SchemaVersion *int              `json:"schemaVersion"`
	MediaType     string            `json:"mediaType"`
	ArtifactType  string            `json:"artifactType"`
	Config        *ociDescriptor    `json:"config"`
	Layers        []ociDescriptor   `json:"layers"`
	Manifests     []ociDescriptor   `json:"manifests"`
	Subject       *ociDescriptor    `json:"subject"`
	Annotations   map[string]string `json:"annotations"`
}

// ParseOCIManifest reads the parts of an OCI image manifest or index (or
// a Docker v2 manifest or list) that the registry indexes. contentType is
// the media type the client declared (the Content-Type header); the
// document's own mediaType, when present, must agree with it, and one of
// them must be given. Unknown fields are allowed and kept (the bytes are
// stored as they are); what is checked is that the document is a JSON
// object, schemaVersion is 2, and every descriptor has a valid digest, a
// media type and a non-negative size. Errors wrap ErrInvalid.
func ParseOCIManifest(contentType string, body []byte) (OCIManifestMeta, error) {
	bad := func(format string, a ...any) (OCIManifestMeta, error) {
		return OCIManifestMeta{}, fmt.Errorf("%w: manifest: %s", ErrInvalid, fmt.Sprintf(format, a...))
	}
	if len(body) > MaxOCIManifestSize {
		return bad("%d bytes, more than the limit of %d", len(body), MaxOCIManifestSize)
	}
	var doc ociDocument
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&doc); err != nil {
		return bad("not a JSON object: %v", err)
	}
	if dec.More() {
		return bad("trailing data after the JSON object")
	}
	if doc.SchemaVersion == nil || *doc.SchemaVersion != 2 {
		return bad("schemaVersion must be 2")
	}
	mt := doc.MediaType
	switch {
	case mt == "" && contentType == "":
		return bad("no media type (neither a mediaType field nor a Content-Type)")
	case mt == "":
		mt = contentType
	case contentType != "" && contentType != mt:
		return bad("mediaType %q differs from the Content-Type %q", mt, contentType)
	}
	meta := OCIManifestMeta{MediaType: mt, ArtifactType: doc.ArtifactType, Annotations: doc.Annotations}
	check := func(what string, d *ociDescriptor) error {
		if err := CheckOCIDigest(d.Digest); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		if d.MediaType == "" {
			return fmt.Errorf("%w: %s: no mediaType", ErrInvalid, what)
		}
		if d.Size == nil || *d.Size < 0 {
			return fmt.Errorf("%w: %s: size missing or negative", ErrInvalid, what)
		}
		meta.References = append(meta.References, d.Digest)
		return nil
	}
	switch mt {
	case MediaTypeOCIIndex, MediaTypeDockerList:
		if doc.Config != nil || doc.Layers != nil {
			return bad("an index has no config or layers")
		}
	default:
		if doc.Manifests != nil {
			return bad("a %s has no manifests list", mt)
		}
		if mt == MediaTypeOCIManifest || mt == MediaTypeDockerManifest {
			if doc.Config == nil {
				return bad("an image manifest needs a config")
			}
		}
	}
	if doc.Config != nil {
		if err := check("config", doc.Config); err != nil {
			return OCIManifestMeta{}, fmt.Errorf("manifest: %w", err)
		}
		if meta.ArtifactType == "" && mt == MediaTypeOCIManifest {
			// The referrers API reports an image's config media type as
			// its artifact type when it declares none (image-spec v1.1).
			meta.ArtifactType = doc.Config.MediaType
		}
	}
	for i := range doc.Layers {
		if err := check(fmt.Sprintf("layers[%d]", i), &doc.Layers[i]); err != nil {
			return OCIManifestMeta{}, fmt.Errorf("manifest: %w", err)
		}
	}
	for i := range doc.Manifests {
		if err := check(fmt.Sprintf("manifests[%d]", i), &doc.Manifests[i]); err != nil {
			return OCIManifestMeta{}, fmt.Errorf("manifest: %w", err)
		}
	}
	if doc.Subject != nil {
		if err := CheckOCIDigest(doc.Subject.Digest); err != nil {
			return OCIManifestMeta{}, fmt.Errorf("manifest: subject: %w", err)
		}
		meta.Subject = doc.Subject.Digest
	}
	for k, v := range meta.Annotations {
		if !canonicalText(k) || !canonicalText(v) {
			return bad("annotation %q is not valid UTF-8 text", truncate(k))
		}
	}
	if !canonicalText(meta.MediaType) || !canonicalText(meta.ArtifactType) {
		return bad("media type is not valid UTF-8 text")
	}
	return meta, nil
}

// encodeAnnotations is the annotations column: JSON with sorted keys
// (encoding/json sorts map keys), NULL for none.
func encodeAnnotations(m map[string]string) (any, error) {
	if len(m) == 0 {
		return nil, nil
	}
	b, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	return string(b), nil
}

func decodeAnnotations(s string) (map[string]string, error) {
	var m map[string]string
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		return nil, fmt.Errorf("registry: annotations column: %w", err)
	}
	return m, nil
}
