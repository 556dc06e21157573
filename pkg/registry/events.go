package registry

import "github.com/artifactstore/artifact-store/pkg/identity"

// Event types the registry appends. The v1. namespace is reserved for them;
// a payload's shape never changes under the same type name (a new shape gets
// a new name), so that replay of an old log always means the same thing.
const (
	TypePackageCreated   = "v1.package.created"
	TypeFileIngested     = "v1.file.ingested"
	TypeObjectStored     = "v1.object.stored"
	TypePackageFinalized = "v1.package.finalized" // payload: the canonical manifest
	TypeRetentionChanged = "v1.retention.class_changed"
	TypeHoldPlaced       = "v1.retention.hold_placed"
	TypeHoldReleased     = "v1.retention.hold_released"
	// TypePackageProduced records which build of which tool finalised a
	// package, beside (never inside) its manifest: the identity does not
	// change with a new release of the tools (ADR 0003). It shapes no view.
	TypePackageProduced = "v1.package.produced"
)

// Payloads, encoded with package canonical. Field names are the wire names.

type packageCreated struct {
	Name      string            `cbor:"name"`
	Version   string            `cbor:"version"`
	Retention string            `cbor:"retention_class"`
	Labels    map[string]string `cbor:"labels"`
}

// location is where an object's bytes are: a storage_locations row.
type location struct {
	ContentAddress identity.Digest `cbor:"content_address"`
	SHA256         identity.Digest `cbor:"sha256"`
	Size           uint64          `cbor:"size"`
	BackendID      string          `cbor:"backend_id"`
	Key            string          `cbor:"key"`
}

type fileIngested struct {
	Name     string   `cbor:"name"`
	Version  string   `cbor:"version"`
	Path     string   `cbor:"path"`
	Replace  bool     `cbor:"replace"`
	Location location `cbor:"location"`
}

type objectStored struct {
	Location location `cbor:"location"`
}

type retentionChanged struct {
	Name    string `cbor:"name"`
	Version string `cbor:"version"`
	Class   string `cbor:"retention_class"`
}

type holdPlaced struct {
	Name    string `cbor:"name"`
	Version string `cbor:"version"`
	Reason  string `cbor:"reason"`
}

type packageProduced struct {
	Name    string `cbor:"name"`
	Version string `cbor:"version"`
	Tool    string `cbor:"tool"`
	Build   string `cbor:"build"`
}

type holdReleased struct {
	Name    string `cbor:"name"`
	Version string `cbor:"version"`
}
