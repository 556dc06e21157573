package registry

import (
	"errors"
	"strings"
	"testing"
)

// The OCI parsers take what a client sends to as-serve: any input gives a
// value or an error wrapping ErrInvalid, never a panic.

func FuzzCheckRepository(f *testing.F) {
	for _, s := range []string{"app", "team-a/app", "a/b/c", "../etc", "a//b", "A", "a.b-c_d", "", strings.Repeat("a", 300), "a/\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		err := CheckRepository(s)
		if err == nil {
			for _, seg := range strings.Split(s, "/") {
				if seg == "" || seg == "." || seg == ".." {
					t.Fatalf("CheckRepository(%q) accepts a path that climbs or is empty", s)
				}
			}
			if strings.ContainsAny(s, "\x00\\ ") || strings.ToLower(s) != s {
				t.Fatalf("CheckRepository(%q) accepts a name outside the grammar", s)
			}
		}
	})
}

func FuzzCheckUploadID(f *testing.F) {
	for _, s := range []string{strings.Repeat("ab", 16), "../x", "", strings.Repeat("A", 32)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if CheckUploadID(s) == nil && (len(s) != 32 || strings.ContainsAny(s, "/.\\")) {
			t.Fatalf("CheckUploadID(%q) accepts an id that is not 32 hex digits", s)
		}
	})
}

func FuzzParseOCIManifest(f *testing.F) {
	f.Add("application/vnd.oci.image.manifest.v1+json", []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":[]}`))
	f.Add("application/vnd.oci.image.index.v1+json", []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}`))
	f.Add("", []byte(`{"schemaVersion":2,"subject":{"mediaType":"x","digest":"sha256:00","size":1}}`))
	f.Add("text/plain", []byte(`[]`))
	f.Fuzz(func(t *testing.T, ct string, body []byte) {
		meta, err := ParseOCIManifest(ct, body)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("ParseOCIManifest: %v does not wrap ErrInvalid", err)
			}
			return
		}
		for _, d := range append(meta.References, meta.Subject) {
			if d != "" && d.Validate() != nil {
				t.Fatalf("ParseOCIManifest accepted an invalid digest %q", d)
			}
		}
	})
}
