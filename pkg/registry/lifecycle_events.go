package registry

// Event types of the package lifecycle (docs/adr/0010-tags-and-expiry.md).
// Like every v1. type, a payload's shape never changes under its name.
const (
	TypeTagSet           = "v1.tag.set"
	TypeTagDeleted       = "v1.tag.deleted"
	TypePackageExpired   = "v1.package.expired"
	TypePackageAbandoned = "v1.package.abandoned"
	TypePackageDeleted   = "v1.package.deleted"
)

// tagSet points Tag of package Name at Version. Previous is the version it
// pointed at before, "" for a new tag.
type tagSet struct {
	Name     string `cbor:"name"`
	Tag      string `cbor:"tag"`
	Version  string `cbor:"version"`
	Previous string `cbor:"previous"`
}

type tagDeleted struct {
	Name    string `cbor:"name"`
	Tag     string `cbor:"tag"`
	Version string `cbor:"version"` // the version it pointed at
}

// packageEnded is the payload of v1.package.expired, .abandoned and
// .deleted: the package, the time of the run that ended it (--now or the
// clock, as RFC 3339 UTC text; the view takes it from here), why (the rule
// of an expiry, the operator's reason of a delete) and the tags that still
// pointed at it and go with it.
type packageEnded struct {
	Name    string   `cbor:"name"`
	Version string   `cbor:"version"`
	At      string   `cbor:"at"`
	Reason  string   `cbor:"reason"`
	Tags    []string `cbor:"tags"`
}
