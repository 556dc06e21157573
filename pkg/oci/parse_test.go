package oci

import (
	"errors"
	"strings"
	"testing"
	"testing/fstest"
)

const goodManifest = `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","artifactType":"application/vnd.unknown.artifact.v1",
"config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2,"data":"e30="},
"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha512:` + sha512Empty + `","size":0,"annotations":{"org.opencontainers.image.title":"a.txt"}}],
"annotations":{"org.opencontainers.image.created":"2026-01-01T00:00:00Z"},"unknownField":{"ignored":true}}`

const sha512Empty = "cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e"

const goodIndex = `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2,"annotations":{"org.opencontainers.image.ref.name":"v1"}}]}`

func TestParseManifestGood(t *testing.T) {
	m, err := ParseManifest([]byte(goodManifest))
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Layers) != 1 || m.Layers[0].Annotations["org.opencontainers.image.title"] != "a.txt" || m.Config.Size != 2 {
		t.Fatalf("parsed %+v", m)
	}
}

func TestParseManifestRejects(t *testing.T) {
	repl := func(old, new string) string {
		if !strings.Contains(goodManifest, old) {
			t.Fatalf("test case: %q not in the good manifest", old)
		}
		return strings.Replace(goodManifest, old, new, 1)
	}
	for name, in := range map[string]string{
		"fail_empty":          ``,
		"fail_array":          `[]`,
		"fail_trailing":       goodManifest + ` {}`,
		"fail_duplicate_key":  repl(`"schemaVersion":2,`, `"schemaVersion":2,"schemaVersion":2,`),
		"fail_nested_dup":     repl(`"size":2,`, `"size":2,"size":2,`),
		"fail_schema_1":       repl(`"schemaVersion":2`, `"schemaVersion":1`),
		"fail_no_media_type":  repl(`"mediaType":"application/vnd.oci.image.manifest.v1+json",`, ``),
		"fail_docker":         repl(`application/vnd.oci.image.manifest.v1+json`, `application/vnd.docker.distribution.manifest.v2+json`),
		"fail_index_type":     repl(`application/vnd.oci.image.manifest.v1+json`, `application/vnd.oci.image.index.v1+json`),
		"fail_has_manifests":  repl(`"layers":`, `"manifests":[],"layers":`),
		"fail_bad_digest":     repl(`sha256:44136fa`, `sha256:44136FA`),
		"fail_short_digest":   repl(`44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a`, `44136fa3`),
		"fail_sha384":         repl(`sha512:`+sha512Empty, `sha384:38b060a751ac96384cd9327eb1b1e36a21fdb71114be07434c0cc7bf63f6e1da274edebfe76f65fbd51ad2f14898b95b`),
		"fail_traversal_dig":  repl(`sha512:`+sha512Empty, `sha512:../../etc/passwd`),
		"fail_negative_size":  repl(`"size":0`, `"size":-1`),
		"fail_size_type":      repl(`"size":0`, `"size":"0"`),
		"fail_data_mismatch":  repl(`"data":"e30="`, `"data":"e3w="`),
		"fail_bad_media_type": repl(`"mediaType":"application/vnd.oci.image.layer.v1.tar"`, `"mediaType":"not a media type"`),
		"fail_artifact_type":  repl(`application/vnd.unknown.artifact.v1`, `x`),
		"fail_bad_utf8":       repl(`"a.txt"`, "\"a\xff.txt\""),
		"fail_too_deep":       repl(`{"ignored":true}`, strings.Repeat(`[`, 40)+strings.Repeat(`]`, 40)),
		"fail_huge":           repl(`"ignored":true`, `"ignored":"`+strings.Repeat("x", MaxManifestBytes)+`"`),
	} {
		t.Run(name, func(t *testing.T) {
			_, err := ParseManifest([]byte(in))
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("ParseManifest = %v, want ErrInvalid", err)
			}
		})
	}
}

func TestParseIndex(t *testing.T) {
	x, err := ParseIndex([]byte(goodIndex))
	if err != nil || len(x.Manifests) != 1 {
		t.Fatalf("ParseIndex(good) = %+v, %v", x, err)
	}
	// A layout's index.json may omit the media type.
	if _, err := ParseIndex([]byte(strings.Replace(goodIndex, `"mediaType":"application/vnd.oci.image.index.v1+json",`, "", 1))); err != nil {
		t.Fatalf("index without mediaType: %v", err)
	}
	for name, in := range map[string]string{
		"fail_manifest_type": strings.Replace(goodIndex, `image.index.v1`, `image.manifest.v1`, 1),
		"fail_layers":        strings.Replace(goodIndex, `"manifests":`, `"layers":[],"manifests":`, 1),
		"fail_bad_digest":    strings.Replace(goodIndex, `sha256:4`, `sha256:X`, 1),
		"fail_dup":           strings.Replace(goodIndex, `"schemaVersion":2`, `"schemaVersion":2,"schemaVersion":2`, 1),
		"fail_schema":        strings.Replace(goodIndex, `"schemaVersion":2`, `"schemaVersion":3`, 1),
		"fail_not_json":      `{"schemaVersion":2,`,
	} {
		if _, err := ParseIndex([]byte(in)); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: ParseIndex = %v, want ErrInvalid", name, err)
		}
	}
}

// FuzzParseManifest: no input panics, and an accepted manifest, re-encoded
// canonically, is accepted again with the same canonical form.
func FuzzParseManifest(f *testing.F) {
	f.Add([]byte(goodManifest))
	f.Add([]byte(goodIndex))
	f.Add([]byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{},"layers":[]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseManifest(b)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error not wrapping ErrInvalid: %v", err)
			}
			return
		}
		c1, err := Canonical(m)
		if err != nil {
			t.Fatal(err)
		}
		m2, err := ParseManifest(c1)
		if err != nil {
			t.Fatalf("re-encoded manifest refused: %v\n%s", err, c1)
		}
		c2, _ := Canonical(m2)
		if string(c1) != string(c2) {
			t.Fatalf("canonical form not stable:\n%s\n%s", c1, c2)
		}
	})
}

// FuzzParseIndex: as FuzzParseManifest, for indexes.
func FuzzParseIndex(f *testing.F) {
	f.Add([]byte(goodIndex))
	f.Add([]byte(goodManifest))
	f.Add([]byte(`{"schemaVersion":2,"manifests":[]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		x, err := ParseIndex(b)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error not wrapping ErrInvalid: %v", err)
			}
			return
		}
		c1, err := Canonical(x)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ParseIndex(c1); err != nil {
			t.Fatalf("re-encoded index refused: %v\n%s", err, c1)
		}
	})
}

// FuzzOpenLayout: an image layout's oci-layout and index.json as a
// directory gives a layout or an error, never a panic, and every
// descriptor of an opened layout has a valid digest.
func FuzzOpenLayout(f *testing.F) {
	f.Add([]byte(`{"imageLayoutVersion":"1.0.0"}`), []byte(`{"schemaVersion":2,"manifests":[]}`))
	f.Add([]byte(`{"imageLayoutVersion":"2.0.0"}`), []byte(`{}`))
	f.Add([]byte(`{"imageLayoutVersion":"1.0.0","x":1}`), []byte(`{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:../../etc","size":1}]}`))
	f.Fuzz(func(t *testing.T, hdr, index []byte) {
		l, err := OpenLayout(fstest.MapFS{"oci-layout": {Data: hdr}, "index.json": {Data: index}})
		if err != nil {
			return
		}
		for _, m := range l.Index.Manifests {
			if m.Digest.Validate() != nil {
				t.Fatalf("opened a layout naming an invalid digest %q", m.Digest)
			}
			l.Stat(m) // a blob that is not there: an error, not a panic
		}
		for _, n := range l.RefNames() {
			l.Find(n)
		}
	})
}
