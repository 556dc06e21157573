package oci

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
)

// maxDepth bounds the nesting of the JSON documents read here; OCI
// manifests nest four deep.
const maxDepth = 32

// ParseManifest reads an OCI image manifest (image-spec v1.1
// manifest.md) strictly: at most MaxManifestBytes of UTF-8 JSON holding one
// object with no duplicate keys, schemaVersion 2, mediaType
// application/vnd.oci.image.manifest.v1+json, and valid descriptors (see
// ValidateDescriptor) for config, every layer and the subject. Unknown
// fields are ignored, as the specification requires.
func ParseManifest(b []byte) (v1.Manifest, error) {
	var m v1.Manifest
	var probe struct {
		Manifests json.RawMessage `json:"manifests"`
	}
	if err := strictUnmarshal(b, "manifest", &m, &probe); err != nil {
		return v1.Manifest{}, err
	}
	if m.SchemaVersion != 2 {
		return v1.Manifest{}, invalidf("manifest: schemaVersion %d, want 2", m.SchemaVersion)
	}
	if err := checkMediaType("manifest", m.MediaType, v1.MediaTypeImageManifest); err != nil {
		return v1.Manifest{}, err
	}
	if probe.Manifests != nil {
		return v1.Manifest{}, invalidf("manifest: has a manifests field (an index?)")
	}
	if m.ArtifactType != "" {
		if err := checkMediaTypeSyntax(m.ArtifactType); err != nil {
			return v1.Manifest{}, invalidf("manifest: artifactType: %v", err)
		}
	}
	if err := ValidateDescriptor(m.Config); err != nil {
		return v1.Manifest{}, invalidf("manifest: config: %v", unwrapInvalid(err))
	}
	for i, l := range m.Layers {
		if err := ValidateDescriptor(l); err != nil {
			return v1.Manifest{}, invalidf("manifest: layers[%d]: %v", i, unwrapInvalid(err))
		}
	}
	if m.Subject != nil {
		if err := ValidateDescriptor(*m.Subject); err != nil {
			return v1.Manifest{}, invalidf("manifest: subject: %v", unwrapInvalid(err))
		}
	}
	return m, nil
}

// ParseIndex reads an OCI image index (image-spec v1.1 image-index.md,
// also the index.json of a layout) with the rules of ParseManifest:
// schemaVersion 2, mediaType application/vnd.oci.image.index.v1+json when
// present (a layout's index.json may omit it), valid descriptors.
func ParseIndex(b []byte) (v1.Index, error) {
	var x v1.Index
	var probe struct {
		Layers json.RawMessage `json:"layers"`
		Config json.RawMessage `json:"config"`
	}
	if err := strictUnmarshal(b, "index", &x, &probe); err != nil {
		return v1.Index{}, err
	}
	if x.SchemaVersion != 2 {
		return v1.Index{}, invalidf("index: schemaVersion %d, want 2", x.SchemaVersion)
	}
	if x.MediaType != "" {
		if err := checkMediaType("index", x.MediaType, v1.MediaTypeImageIndex); err != nil {
			return v1.Index{}, err
		}
	}
	if probe.Layers != nil || probe.Config != nil {
		return v1.Index{}, invalidf("index: has a layers or config field (a manifest?)")
	}
	if x.ArtifactType != "" {
		if err := checkMediaTypeSyntax(x.ArtifactType); err != nil {
			return v1.Index{}, invalidf("index: artifactType: %v", err)
		}
	}
	for i, d := range x.Manifests {
		if err := ValidateDescriptor(d); err != nil {
			return v1.Index{}, invalidf("index: manifests[%d]: %v", i, unwrapInvalid(err))
		}
	}
	if x.Subject != nil {
		if err := ValidateDescriptor(*x.Subject); err != nil {
			return v1.Index{}, invalidf("index: subject: %v", unwrapInvalid(err))
		}
	}
	return x, nil
}

// ValidateDescriptor checks a descriptor (image-spec descriptor.md): a
// media type of RFC 6838 form, a sha256 or sha512 digest that go-digest
// validates, a size ≥ 0, and embedded data, if any, that matches both.
func ValidateDescriptor(d v1.Descriptor) error {
	if err := checkMediaTypeSyntax(d.MediaType); err != nil {
		return invalidf("mediaType: %v", err)
	}
	if err := CheckDigest(d.Digest); err != nil {
		return err
	}
	if d.Size < 0 {
		return invalidf("size %d is negative", d.Size)
	}
	if d.ArtifactType != "" {
		if err := checkMediaTypeSyntax(d.ArtifactType); err != nil {
			return invalidf("artifactType: %v", err)
		}
	}
	if d.Data != nil {
		if int64(len(d.Data)) != d.Size {
			return invalidf("data holds %d bytes, size says %d", len(d.Data), d.Size)
		}
		if got := d.Digest.Algorithm().FromBytes(d.Data); got != d.Digest {
			return invalidf("data hashes to %s, digest says %s", got, d.Digest)
		}
	}
	return nil
}

// CheckDigest accepts the digests this package verifies: sha256 and
// sha512, in go-digest's canonical form (lowercase hex of the right length).
func CheckDigest(d digest.Digest) error {
	if err := d.Validate(); err != nil {
		return invalidf("digest %q: %v", string(d), err)
	}
	switch d.Algorithm() {
	case digest.SHA256, digest.SHA512:
		return nil
	}
	return invalidf("digest %q: algorithm %s not supported (sha256, sha512)", string(d), d.Algorithm())
}

func checkMediaType(what, got, want string) error {
	switch {
	case got == want:
		return nil
	case got == "":
		return invalidf("%s: no mediaType (want %s)", what, want)
	case strings.HasPrefix(got, "application/vnd.docker."):
		return invalidf("%s: Docker media type %s is not supported (want %s)", what, got, want)
	}
	return invalidf("%s: mediaType %q, want %s", what, got, want)
}

// checkMediaTypeSyntax checks type "/" subtype with the restricted-name
// characters of RFC 6838 §4.2, at most 127 bytes each (parameters are not
// allowed in OCI media types).
func checkMediaTypeSyntax(s string) error {
	typ, sub, ok := strings.Cut(s, "/")
	if !ok {
		return fmt.Errorf("%q is not type/subtype", s)
	}
	for _, part := range []string{typ, sub} {
		if part == "" || len(part) > 127 {
			return fmt.Errorf("%q: empty or over-long part", s)
		}
		for i := 0; i < len(part); i++ {
			c := part[i]
			alnum := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
			if i == 0 && !alnum || !alnum && !strings.ContainsRune("!#$&-^_.+", rune(c)) {
				return fmt.Errorf("%q: byte %q not allowed", s, c)
			}
		}
	}
	return nil
}

// unwrapInvalid drops the "oci: invalid: " prefix of a nested error, so
// that the outer message says it once.
func unwrapInvalid(err error) string {
	return strings.TrimPrefix(err.Error(), ErrInvalid.Error()+": ")
}

// strictUnmarshal decodes b into each of vs after checking that b is at
// most MaxManifestBytes of UTF-8 holding exactly one JSON object, nested at
// most maxDepth deep, with no key twice in any object.
func strictUnmarshal(b []byte, what string, vs ...any) error {
	if len(b) > MaxManifestBytes {
		return invalidf("%s: %d bytes, more than the %d allowed", what, len(b), MaxManifestBytes)
	}
	if !utf8.Valid(b) {
		return invalidf("%s: not valid UTF-8", what)
	}
	if err := checkJSON(b); err != nil {
		return invalidf("%s: %v", what, err)
	}
	for _, v := range vs {
		if err := json.Unmarshal(b, v); err != nil {
			return invalidf("%s: %v", what, err)
		}
	}
	return nil
}

// checkJSON walks b's tokens: one object, no duplicate keys, bounded depth,
// nothing after it.
func checkJSON(b []byte) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return fmt.Errorf("not JSON: %w", err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return errors.New("not a JSON object")
	}
	if err := walkObject(dec, 1); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("data after the JSON object")
	}
	return nil
}

func walkObject(dec *json.Decoder, depth int) error {
	if depth > maxDepth {
		return fmt.Errorf("nested deeper than %d", maxDepth)
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		key, ok := tok.(string)
		if !ok {
			return errors.New("object key is not a string")
		}
		if seen[key] {
			return fmt.Errorf("key %q appears twice", key)
		}
		seen[key] = true
		if err := walkValue(dec, depth); err != nil {
			return err
		}
	}
	_, err := dec.Token() // '}'
	return err
}

func walkValue(dec *json.Decoder, depth int) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	d, ok := tok.(json.Delim)
	if !ok {
		return nil
	}
	switch d {
	case '{':
		return walkObject(dec, depth+1)
	case '[':
		if depth+1 > maxDepth {
			return fmt.Errorf("nested deeper than %d", maxDepth)
		}
		for dec.More() {
			if err := walkValue(dec, depth+1); err != nil {
				return err
			}
		}
		_, err := dec.Token() // ']'
		return err
	}
	return fmt.Errorf("unexpected %v", d)
}
