package registry

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/artifactstore/artifact-store/pkg/dataplane"
	"github.com/artifactstore/artifact-store/pkg/db"
	"github.com/artifactstore/artifact-store/pkg/db/dbtest"
	"github.com/artifactstore/artifact-store/pkg/identity"
	"github.com/artifactstore/artifact-store/pkg/ref"
	"github.com/opencontainers/go-digest"
)

func ociImage(config, layer digest.Digest, subject digest.Digest, artifactType string) []byte {
	s := fmt.Sprintf(`{"schemaVersion":2,"mediaType":%q,`, MediaTypeOCIManifest)
	if artifactType != "" {
		s += fmt.Sprintf(`"artifactType":%q,`, artifactType)
	}
	s += fmt.Sprintf(`"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":%q,"size":2},`, config)
	s += fmt.Sprintf(`"layers":[{"mediaType":"application/octet-stream","digest":%q,"size":5}]`, layer)
	if subject != "" {
		s += fmt.Sprintf(`,"subject":{"mediaType":%q,"digest":%q,"size":10}`, MediaTypeOCIManifest, subject)
	}
	return []byte(s + `,"annotations":{"b":"2","a":"1"}}`)
}

// TestOCIStore: blobs (sha256 and sha512), manifests byte for byte, tags
// that move, referrers, mounts, deletes and uploads, every step an event
// that replay reproduces byte for byte, on both databases.
func TestOCIStore(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		r := newRegistry(t, d)
		const repo = "conformance/repo1"
		config, layer := []byte("{}"), []byte("hello")
		cd, ld := digest.FromBytes(config), digest.SHA512.FromBytes(layer)
		if _, err := r.PutOCIBlob(ctx, repo, cd, bytes.NewReader(config), 2, ""); err != nil {
			t.Fatal(err)
		}
		if _, err := r.PutOCIBlob(ctx, repo, ld, bytes.NewReader(layer), -1, ""); err != nil {
			t.Fatal(err)
		}
		b, err := r.OCIBlobInfo(ctx, repo, ld)
		if err != nil || b.Size != 5 {
			t.Fatalf("sha512 blob: %+v %v", b, err)
		}
		rc, err := r.OpenOCIBlob(ctx, b, 1, 3)
		if err != nil {
			t.Fatal(err)
		}
		var got bytes.Buffer
		got.ReadFrom(rc)
		rc.Close()
		if got.String() != "ell" {
			t.Fatalf("range read %q", got.String())
		}
		// Again: nothing new.
		head, _ := r.Log().Head(ctx)
		if _, err := r.PutOCIBlob(ctx, repo, cd, bytes.NewReader(config), 2, ""); err != nil {
			t.Fatal(err)
		}
		if h2, _ := r.Log().Head(ctx); h2.Seq != head.Seq {
			t.Fatalf("a blob pushed twice appended %d events", h2.Seq-head.Seq)
		}

		img := ociImage(cd, ld, "", "")
		idg := digest.FromBytes(img)
		meta, err := ParseOCIManifest(MediaTypeOCIManifest, img)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := r.PutOCIManifest(ctx, repo, []string{"v1"}, idg, meta, img); err != nil {
			t.Fatal(err)
		}
		m, err := r.OCIManifestInfo(ctx, repo, "v1")
		if err != nil || m.Digest != idg || m.ArtifactType != "application/vnd.oci.image.config.v1+json" || m.Annotations["a"] != "1" {
			t.Fatalf("manifest by tag: %+v %v", m, err)
		}
		body, err := r.OCIManifestBytes(ctx, m)
		if err != nil || !bytes.Equal(body, img) {
			t.Fatalf("manifest bytes differ: %v", err)
		}

		// A referrer with an artifact type, pushed by its sha512 digest.
		ref1 := ociImage(cd, ld, idg, "application/vnd.example.sbom")
		rdg := digest.SHA512.FromBytes(ref1)
		meta, _ = ParseOCIManifest("", ref1)
		if _, err := r.PutOCIManifest(ctx, repo, nil, rdg, meta, ref1); err != nil {
			t.Fatal(err)
		}
		refs, err := r.OCIReferrers(ctx, repo, idg, "")
		if err != nil || len(refs) != 1 || refs[0].Digest != rdg {
			t.Fatalf("referrers: %+v %v", refs, err)
		}
		if refs, _ := r.OCIReferrers(ctx, repo, idg, "other"); len(refs) != 0 {
			t.Fatalf("artifactType filter let %d through", len(refs))
		}

		// Tags move; listing pages.
		meta, _ = ParseOCIManifest("", ref1)
		for _, tag := range []string{"v2", "a", "v1"} {
			if _, err := r.PutOCIManifest(ctx, repo, []string{tag}, rdg, meta, ref1); err != nil {
				t.Fatal(err)
			}
		}
		if m, _ := r.OCIManifestInfo(ctx, repo, "v1"); m.Digest != rdg {
			t.Fatalf("tag v1 did not move: %s", m.Digest)
		}
		tags, err := r.OCITags(ctx, repo, 2, "")
		if err != nil || !slices.Equal(tags, []string{"a", "v1"}) {
			t.Fatalf("tags page 1: %v %v", tags, err)
		}
		if tags, _ := r.OCITags(ctx, repo, -1, "v1"); !slices.Equal(tags, []string{"v2"}) {
			t.Fatalf("tags after v1: %v", tags)
		}
		if _, err := r.OCITags(ctx, "nothing/here", -1, ""); !errors.Is(err, ErrNotFound) {
			t.Fatalf("tags of an empty repository: %v", err)
		}

		// Mounts: from a repository, and from anywhere by sha256 (a package
		// file counts).
		if _, err := r.MountOCIBlob(ctx, "other", cd, repo); err != nil {
			t.Fatal(err)
		}
		if _, err := r.MountOCIBlob(ctx, "other", ld, "nope"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("mount from a repository without it: %v", err)
		}
		if _, err := r.MountOCIBlob(ctx, "third", ld, ""); err != nil {
			t.Fatal(err)
		}
		res, err := r.StoreObject(ctx, strings.NewReader("a package file"), nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := r.MountOCIBlob(ctx, "third", digest.Digest(res.Sum.SHA256.String()), ""); err != nil {
			t.Fatalf("mount of a stored object by sha256: %v", err)
		}

		// Uploads open and close with events.
		id, err := r.StartOCIUpload(ctx, repo)
		if err != nil {
			t.Fatal(err)
		}
		if err := r.CheckOCIUpload(ctx, "other", id); !errors.Is(err, ErrNotFound) {
			t.Fatalf("upload seen from another repository: %v", err)
		}
		if _, err := r.PutOCIBlob(ctx, repo, digest.FromString("up"), strings.NewReader("up"), 2, id); err != nil {
			t.Fatal(err)
		}
		if err := r.CheckOCIUpload(ctx, repo, id); !errors.Is(err, ErrNotFound) {
			t.Fatalf("a finished upload is still open: %v", err)
		}
		id2, _ := r.StartOCIUpload(ctx, repo)
		old, err := r.AbandonedOCIUploads(ctx, time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC))
		if err != nil || len(old) != 1 || old[0].ID != id2 {
			t.Fatalf("abandoned uploads: %+v %v", old, err)
		}
		if old, _ := r.AbandonedOCIUploads(ctx, time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)); len(old) != 0 {
			t.Fatalf("uploads started after the cutoff listed: %+v", old)
		}
		if err := r.CancelOCIUpload(ctx, repo, id2, "client cancelled"); err != nil {
			t.Fatal(err)
		}
		assertReplayIdentical(t, r)

		// Deletes.
		if err := r.DeleteOCITag(ctx, repo, "a"); err != nil {
			t.Fatal(err)
		}
		if err := r.DeleteOCIManifest(ctx, repo, rdg); err != nil {
			t.Fatal(err)
		}
		if _, err := r.OCIManifestInfo(ctx, repo, "v2"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("a tag of a deleted manifest still resolves: %v", err)
		}
		if err := r.DeleteOCIBlob(ctx, repo, ld); err != nil {
			t.Fatal(err)
		}
		if _, err := r.OCIBlobInfo(ctx, repo, ld); !errors.Is(err, ErrNotFound) {
			t.Fatalf("deleted blob: %v", err)
		}
		if err := r.DeleteOCIBlob(ctx, repo, ld); !errors.Is(err, ErrNotFound) {
			t.Fatalf("second delete: %v", err)
		}
		assertReplayIdentical(t, r)

		// The GC's reference sources name what the views hold.
		live, err := queryStrings(ctx, d.SQL, OCIReferenceSources)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Contains(live, m.ContentAddress.String()) || !slices.Contains(live, res.Sum.BLAKE3.String()) {
			t.Fatalf("reference sources %v miss the manifest or the mounted object", live)
		}
	})
}

// TestOCIDigestRefused: bytes that do not match the client's digest, or
// its size, store nothing and record nothing, for both algorithms.
func TestOCIDigestRefused(t *testing.T) {
	ctx := context.Background()
	r := newRegistry(t, dbtest.SQLite(t))
	for _, d := range []digest.Digest{digest.FromString("other"), digest.SHA512.FromString("other")} {
		head, _ := r.Log().Head(ctx)
		_, err := r.PutOCIBlob(ctx, "repo", d, strings.NewReader("these bytes"), -1, "")
		if !errors.Is(err, dataplane.ErrDigestMismatch) {
			t.Fatalf("%s: %v, want a digest mismatch", d.Algorithm(), err)
		}
		if h, _ := r.Log().Head(ctx); h.Seq != head.Seq {
			t.Fatalf("%s: a refused blob appended events", d.Algorithm())
		}
		if _, err := r.OCIBlobInfo(ctx, "repo", d); !errors.Is(err, ErrNotFound) {
			t.Fatalf("%s: refused blob is linked: %v", d.Algorithm(), err)
		}
	}
	right := digest.FromString("these bytes")
	if _, err := r.PutOCIBlob(ctx, "repo", right, strings.NewReader("these bytes"), 3, ""); !errors.Is(err, dataplane.ErrDigestMismatch) {
		t.Fatalf("wrong size: %v", err)
	}
	// Nothing reached the backend either.
	b3 := mustSum(t, "these bytes")
	if _, err := r.DataPlane().StatObject(ctx, b3); !errors.Is(err, dataplane.ErrNotFound) {
		t.Fatalf("refused bytes are stored: %v", err)
	}
	if _, err := r.PutOCIBlob(ctx, "repo", "md5:abc", strings.NewReader(""), 0, ""); !errors.Is(err, ErrInvalid) {
		t.Fatalf("md5 digest: %v", err)
	}
}

func mustSum(t *testing.T, s string) identity.Digest {
	t.Helper()
	return sumOf([]byte(s)).BLAKE3
}

func TestCheckRepository(t *testing.T) {
	for _, s := range []string{"a", "conformance/repo1", "a.b/c_d/e__f/g--h", "app", "0"} {
		if err := CheckRepository(s); err != nil {
			t.Errorf("%q: %v", s, err)
		}
	}
	for _, s := range []string{"", "A", "a/", "/a", "a-", "a..b", "a._b", "a___b", "a//b", "a/.b", strings.Repeat("a", 129)} {
		if err := CheckRepository(s); !errors.Is(err, ErrInvalid) {
			t.Errorf("%q accepted", s)
		}
	}
}

func TestParseOCIManifest(t *testing.T) {
	d := digest.FromString("x")
	good := ociImage(d, d, d, "")
	if _, err := ParseOCIManifest(MediaTypeOCIManifest, good); err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct{ ct, body string }{
		"fail_not_json":         {MediaTypeOCIManifest, "nope"},
		"fail_schema_1":         {MediaTypeOCIManifest, `{"schemaVersion":1,"config":{}}`},
		"fail_no_media_type":    {"", `{"schemaVersion":2}`},
		"fail_type_conflict":    {MediaTypeOCIIndex, string(good)},
		"fail_bad_layer_digest": {MediaTypeOCIManifest, strings.Replace(string(good), d.Encoded(), "XYZ", 1)},
		"fail_trailing":         {MediaTypeOCIManifest, string(good) + "{}"},
		"fail_index_layers":     {MediaTypeOCIIndex, `{"schemaVersion":2,"layers":[]}`},
	} {
		if _, err := ParseOCIManifest(tc.ct, []byte(tc.body)); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// TestImportStored: an import input that is already a stored OCI blob is
// not read again (an ORAS push that is a package costs no second pass over
// its layers), and the package's file reads back as the blob.
func TestImportStored(t *testing.T) {
	eachStore(t, func(t *testing.T, d *db.DB, dp dataplane.DataPlane) {
		ctx := context.Background()
		r := New(d, dp, Options{Actor: "test"})
		layer := []byte("a layer pushed once")
		b, err := r.PutOCIBlob(ctx, "app", digest.FromBytes(layer), bytes.NewReader(layer), int64(len(layer)), "")
		if err != nil {
			t.Fatal(err)
		}
		sum, ok := b.Sum()
		if !ok || sum != sumOf(layer) {
			t.Fatalf("OCIBlob.Sum = %+v, %v; want %+v", sum, ok, sumOf(layer))
		}
		p := ref.Version("app", "1")
		if _, err := r.ImportPackage(ctx, p, []Input{{Path: "f", Stored: &sum, Open: func() (io.ReadCloser, error) {
			t.Error("a stored input was read again")
			return io.NopCloser(bytes.NewReader(layer)), nil
		}}}, ImportOptions{Workers: 1}); err != nil {
			t.Fatal(err)
		}
		rc, f, err := r.GetFile(ctx, p, "f", 0, -1)
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(rc)
		rc.Close()
		if err != nil || !bytes.Equal(got, layer) || f.Sum() != sum {
			t.Fatalf("read back %q (%+v), %v", got, f.Sum(), err)
		}
		if _, ok := (OCIBlob{Digest: digest.SHA512.FromBytes(layer)}).Sum(); ok {
			t.Fatal("a sha512 blob claims to know its SHA-256")
		}
	})
}
