package ociserve

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/artifactstore/artifact-store/pkg/ref"
	"github.com/artifactstore/artifact-store/pkg/registry"
	"github.com/opencontainers/go-digest"
)

// The parsers of what a request carries: its path, digests, references,
// Content-Range and Range. Each is pure and fuzzed (fuzz_test.go).

var errParse = errors.New("ociserve: malformed")

// kind is the resource a /v2/ path names.
type kind int

const (
	kindNone      kind = iota
	kindBase           // /v2/
	kindManifest       // /v2/<name>/manifests/<reference>
	kindBlob           // /v2/<name>/blobs/<digest>
	kindUploads        // /v2/<name>/blobs/uploads/
	kindUpload         // /v2/<name>/blobs/uploads/<id>
	kindTags           // /v2/<name>/tags/list
	kindReferrers      // /v2/<name>/referrers/<digest>
)

var kindNames = map[kind]string{
	kindNone: "none", kindBase: "base", kindManifest: "manifests", kindBlob: "blobs",
	kindUploads: "uploads", kindUpload: "upload", kindTags: "tags", kindReferrers: "referrers",
}

func (k kind) String() string { return kindNames[k] }

// parsePath splits a request path into the resource kind, the repository
// name and the last component (reference, digest or upload id). The name
// may contain '/', so the path is read from its end: the last one or two
// segments say what it is, everything between /v2/ and them is the name.
// The name is not validated here (see registry.CheckRepository).
func parsePath(p string) (k kind, name, arg string) {
	if p == "/v2/" || p == "/v2" {
		return kindBase, "", ""
	}
	rest, ok := strings.CutPrefix(p, "/v2/")
	if !ok {
		return kindNone, "", ""
	}
	segs := strings.Split(rest, "/")
	n := len(segs)
	join := func(k kind, drop int, arg string) (kind, string, string) {
		if n-drop < 1 {
			return kindNone, "", ""
		}
		name := strings.Join(segs[:n-drop], "/")
		if name == "" {
			return kindNone, "", ""
		}
		return k, name, arg
	}
	switch {
	case n >= 3 && segs[n-3] == "blobs" && segs[n-2] == "uploads":
		if segs[n-1] == "" {
			return join(kindUploads, 3, "")
		}
		return join(kindUpload, 3, segs[n-1])
	case n >= 3 && segs[n-2] == "blobs" && segs[n-1] == "uploads":
		return join(kindUploads, 2, "")
	case n >= 3 && segs[n-2] == "manifests" && segs[n-1] != "":
		return join(kindManifest, 2, segs[n-1])
	case n >= 3 && segs[n-2] == "blobs" && segs[n-1] != "":
		return join(kindBlob, 2, segs[n-1])
	case n >= 3 && segs[n-2] == "tags" && segs[n-1] == "list":
		return join(kindTags, 2, "")
	case n >= 3 && segs[n-2] == "referrers" && segs[n-1] != "":
		return join(kindReferrers, 2, segs[n-1])
	}
	return kindNone, "", ""
}

// parseDigest parses an OCI digest the API accepts (sha256 or sha512).
func parseDigest(s string) (digest.Digest, error) {
	d := digest.Digest(s)
	if err := registry.CheckOCIDigest(d); err != nil {
		return "", err
	}
	return d, nil
}

// parseReference parses a manifest reference: a digest (it has a ':') or
// a tag.
func parseReference(s string) (tag string, d digest.Digest, err error) {
	if strings.Contains(s, ":") {
		d, err = parseDigest(s)
		return "", d, err
	}
	if err := ref.CheckTag(s); err != nil {
		return "", "", err
	}
	return s, "", nil
}

// parseContentRange parses a chunk's Content-Range header as the
// distribution spec writes it, "<start>-<end>" (inclusive, no unit), and
// also accepts the RFC 9110 form "bytes <start>-<end>/<total or *>" that
// some clients send.
func parseContentRange(s string) (start, end int64, err error) {
	bad := func() (int64, int64, error) {
		return 0, 0, fmt.Errorf("%w Content-Range %q", errParse, truncate(s))
	}
	v := s
	if rest, ok := strings.CutPrefix(v, "bytes "); ok {
		v = rest
		if i := strings.IndexByte(v, '/'); i >= 0 {
			v = v[:i]
		}
	}
	a, b, ok := strings.Cut(v, "-")
	if !ok {
		return bad()
	}
	start, err1 := parseUint(a)
	end, err2 := parseUint(b)
	if err1 != nil || err2 != nil || end < start {
		return bad()
	}
	return start, end, nil
}

// byteRange is a resolved Range request: offset and length.
type byteRange struct{ off, n int64 }

// parseRange resolves a Range header ("bytes=a-b", "bytes=a-",
// "bytes=-n"; one range only) against an object of size bytes. ok is
// false when the header asks for no bytes the object has (416).
func parseRange(s string, size int64) (r byteRange, ok bool, err error) {
	spec, found := strings.CutPrefix(s, "bytes=")
	if !found || strings.Contains(spec, ",") {
		return byteRange{}, false, fmt.Errorf("%w Range %q (one range of bytes=a-b)", errParse, truncate(s))
	}
	a, b, found := strings.Cut(strings.TrimSpace(spec), "-")
	if !found {
		return byteRange{}, false, fmt.Errorf("%w Range %q", errParse, truncate(s))
	}
	if a == "" { // suffix: the last n bytes
		n, err := parseUint(b)
		if err != nil {
			return byteRange{}, false, fmt.Errorf("%w Range %q", errParse, truncate(s))
		}
		if n == 0 {
			return byteRange{}, false, nil
		}
		n = min(n, size)
		return byteRange{size - n, n}, size > 0, nil
	}
	start, err := parseUint(a)
	if err != nil {
		return byteRange{}, false, fmt.Errorf("%w Range %q", errParse, truncate(s))
	}
	end := size - 1
	if b != "" {
		if end, err = parseUint(b); err != nil || end < start {
			return byteRange{}, false, fmt.Errorf("%w Range %q", errParse, truncate(s))
		}
		end = min(end, size-1)
	}
	if start >= size {
		return byteRange{}, false, nil
	}
	return byteRange{start, end - start + 1}, true, nil
}

// parseUint parses a decimal number of at most 18 digits (no sign).
func parseUint(s string) (int64, error) {
	if s == "" || len(s) > 18 {
		return 0, errParse
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, errParse
		}
	}
	return strconv.ParseInt(s, 10, 64)
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func truncate(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}
