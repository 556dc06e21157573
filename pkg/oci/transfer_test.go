package oci

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/artifactstore/artifact-store/pkg/dataplane"
	"github.com/artifactstore/artifact-store/pkg/db"
	"github.com/artifactstore/artifact-store/pkg/db/dbtest"
	"github.com/artifactstore/artifact-store/pkg/manifest"
	"github.com/artifactstore/artifact-store/pkg/ref"
	"github.com/artifactstore/artifact-store/pkg/registry"
)

// readFiles returns a package's files as path → bytes, read back from the store.
func readFiles(t *testing.T, reg *registry.Registry, r ref.Ref) map[string][]byte {
	t.Helper()
	ctx := context.Background()
	fs, err := reg.Files(ctx, r)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	for _, f := range fs {
		rc, _, err := reg.GetFile(ctx, r, f.Path, 0, -1)
		if err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		b.ReadFrom(rc)
		rc.Close()
		out[f.Path] = b.Bytes()
	}
	return out
}

func equalFiles(a, b map[string][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for p, x := range a {
		if y, ok := b[p]; !ok || !bytes.Equal(x, y) {
			return false
		}
	}
	return true
}

// withoutVersion re-encodes a manifest with its version blanked, so that
// two manifests can be compared apart from it.
func withoutVersion(t *testing.T, b []byte) []byte {
	t.Helper()
	m, err := manifest.Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	m.Package.Version = "x"
	out, err := manifest.Encode(m)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestRoundTrip: export → import under another version, through a
// directory and through a tar stream, on both databases, gives the same
// files and the same canonical manifest apart from the version.
func TestRoundTrip(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		s := newStore(t, d)
		src := ref.Version("app", "1.2.3+build.7")
		files := fixture(t)
		files["dup/copy-of-app"] = files["bin/app"] // two paths, one blob
		mb := s.put(t, src, files, registry.FinalizeOptions{CreatedAt: "2026-12-01T10:00:00Z", Facts: map[string]string{"git_commit": "abc"}})

		dir := filepath.Join(t.TempDir(), "layout")
		w, err := NewDirWriter(dir)
		if err != nil {
			t.Fatal(err)
		}
		a, err := Export(ctx, s.reg, src, w, ExportOptions{Workers: 3})
		if err != nil {
			t.Fatal(err)
		}
		var tarBuf bytes.Buffer
		a2, err := Export(ctx, s.reg, src, NewTarWriter(&tarBuf), ExportOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if a.Descriptor.Digest != a2.Descriptor.Digest {
			t.Fatalf("directory and tar exports differ: %s, %s", a.Descriptor.Digest, a2.Descriptor.Digest)
		}
		var tarAgain bytes.Buffer
		if _, err := Export(ctx, s.reg, src, NewTarWriter(&tarAgain), ExportOptions{}); err != nil || !bytes.Equal(tarBuf.Bytes(), tarAgain.Bytes()) {
			t.Fatalf("two tar exports differ (err %v)", err)
		}
		dl, err := OpenLayout(os.DirFS(dir))
		if err != nil {
			t.Fatal(err)
		}
		if got := dl.RefNames(); len(got) != 1 || got[0] != "1.2.3_build.7" {
			t.Fatalf("ref names %q", got)
		}
		tfs, err := TarFS(bytes.NewReader(tarBuf.Bytes()), int64(tarBuf.Len()))
		if err != nil {
			t.Fatal(err)
		}
		tl, err := OpenLayout(tfs)
		if err != nil {
			t.Fatal(err)
		}
		for i, l := range []*Layout{dl, tl} {
			dst := ref.Version("app", []string{"9.9.9", "9.9.10"}[i])
			_, got, err := Import(ctx, s.reg, l, dst, ImportOptions{RefName: "1.2.3_build.7", Workers: 2})
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(withoutVersion(t, got), withoutVersion(t, mb)) {
				t.Fatalf("imported manifest differs apart from the version")
			}
			if bytes.Equal(got, mb) {
				t.Fatal("imported manifest has the source's version")
			}
			if !equalFiles(readFiles(t, s.reg, dst), files) {
				t.Fatal("imported files differ")
			}
		}
	})
}

// TestExportVerifies: a stored object whose bytes were changed on disk
// fails the export with ErrDigestMismatch, and leaves no blob with the
// bad bytes in the layout.
func TestExportVerifies(t *testing.T) {
	ctx := context.Background()
	s := newStore(t, dbtest.SQLite(t))
	r := ref.Version("app", "1")
	s.put(t, r, map[string][]byte{"f": []byte("the original bytes")}, registry.FinalizeOptions{})
	var obj string
	filepath.WalkDir(filepath.Join(s.root), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.Contains(p, "blake3") {
			obj = p
		}
		return nil
	})
	if obj == "" {
		t.Fatal("stored object not found")
	}
	os.Chmod(obj, 0o644)
	if err := os.WriteFile(obj, []byte("the tampered bytes"), 0o644); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	w, _ := NewDirWriter(dir)
	_, err := Export(ctx, s.reg, r, w, ExportOptions{})
	if !errors.Is(err, dataplane.ErrDigestMismatch) {
		t.Fatalf("Export = %v, want a digest mismatch", err)
	}
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if b, _ := os.ReadFile(p); bytes.Contains(b, []byte("tampered")) {
				t.Errorf("tampered bytes reached the layout at %s", p)
			}
		}
		return nil
	})
	if _, err := os.Stat(filepath.Join(dir, "index.json")); err == nil {
		t.Error("a failed export wrote index.json")
	}
}

// TestImportRefuses: malformed layouts and non-package artifacts are
// refused with the right error, and nothing is recorded.
func TestImportRefuses(t *testing.T) {
	ctx := context.Background()
	s := newStore(t, dbtest.SQLite(t))
	src := ref.Version("app", "1.0.0")
	s.put(t, src, fixture(t), registry.FinalizeOptions{})

	// export writes a fresh layout and returns its directory and artifact.
	export := func(t *testing.T) (string, *Artifact) {
		dir := t.TempDir()
		w, err := NewDirWriter(dir)
		if err != nil {
			t.Fatal(err)
		}
		a, err := Export(ctx, s.reg, src, w, ExportOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return dir, a
	}
	blob := func(dir string, d v1.Descriptor) string {
		return filepath.Join(dir, filepath.FromSlash(BlobPath(d.Digest)))
	}
	// rewriteManifest replaces the layout's manifest by edit's result.
	rewriteManifest := func(t *testing.T, dir string, a *Artifact, edit func(m *v1.Manifest)) {
		m := a.Manifest
		m.Layers = append([]v1.Descriptor{}, m.Layers...)
		for i := range m.Layers {
			ann := map[string]string{}
			for k, v := range m.Layers[i].Annotations {
				ann[k] = v
			}
			m.Layers[i].Annotations = ann
		}
		edit(&m)
		b, err := Canonical(m)
		if err != nil {
			t.Fatal(err)
		}
		writeManifest(t, dir, b)
	}
	for _, c := range []struct {
		name   string
		break_ func(t *testing.T, dir string, a *Artifact)
		want   error
		msg    string
	}{
		{"fail_bad_oci_layout", func(t *testing.T, dir string, a *Artifact) {
			os.WriteFile(filepath.Join(dir, "oci-layout"), []byte(`{"imageLayoutVersion":"2.0.0"}`), 0o644)
		}, ErrInvalid, "imageLayoutVersion"},
		{"fail_no_oci_layout", func(t *testing.T, dir string, a *Artifact) {
			os.Remove(filepath.Join(dir, "oci-layout"))
		}, ErrNotFound, "not an OCI image layout"},
		{"fail_missing_blob", func(t *testing.T, dir string, a *Artifact) {
			os.Remove(blob(dir, a.Manifest.Layers[3]))
		}, ErrNotFound, "missing"},
		{"fail_digest_mismatch", func(t *testing.T, dir string, a *Artifact) {
			p := blob(dir, a.Manifest.Layers[3])
			b, _ := os.ReadFile(p)
			b[100] ^= 1
			os.WriteFile(p, b, 0o644)
		}, dataplane.ErrDigestMismatch, "do not match"},
		{"fail_size_mismatch", func(t *testing.T, dir string, a *Artifact) {
			p := blob(dir, a.Manifest.Layers[0])
			b, _ := os.ReadFile(p)
			os.WriteFile(p, append(b, 'x'), 0o644)
		}, dataplane.ErrDigestMismatch, "holds 39 bytes"},
		{"fail_manifest_tampered", func(t *testing.T, dir string, a *Artifact) {
			os.WriteFile(blob(dir, a.Descriptor), bytes.Replace(a.Bytes, []byte("1.0.0"), []byte("6.6.6"), 1), 0o644)
		}, dataplane.ErrDigestMismatch, "hash to"},
		{"fail_huge_manifest", func(t *testing.T, dir string, a *Artifact) {
			writeManifest(t, dir, append(a.Bytes[:len(a.Bytes)-1], []byte(`,"x":"`+strings.Repeat("x", MaxManifestBytes)+`"}`)...))
		}, ErrInvalid, "more than"},
		{"fail_title_dotdot", func(t *testing.T, dir string, a *Artifact) {
			rewriteManifest(t, dir, a, func(m *v1.Manifest) { m.Layers[0].Annotations[v1.AnnotationTitle] = "../../etc/passwd" })
		}, ErrInvalid, "not a package path"},
		{"fail_title_absolute", func(t *testing.T, dir string, a *Artifact) {
			rewriteManifest(t, dir, a, func(m *v1.Manifest) { m.Layers[0].Annotations[v1.AnnotationTitle] = "/etc/passwd" })
		}, ErrInvalid, "not a package path"},
		{"fail_no_title", func(t *testing.T, dir string, a *Artifact) {
			rewriteManifest(t, dir, a, func(m *v1.Manifest) { delete(m.Layers[2].Annotations, v1.AnnotationTitle) })
		}, ErrUnsupported, "no org.opencontainers.image.title"},
		{"fail_image", func(t *testing.T, dir string, a *Artifact) {
			rewriteManifest(t, dir, a, func(m *v1.Manifest) { m.ArtifactType = ""; m.Config.MediaType = v1.MediaTypeImageConfig })
		}, ErrUnsupported, "container image"},
		{"fail_config_disagrees", func(t *testing.T, dir string, a *Artifact) {
			rewriteManifest(t, dir, a, func(m *v1.Manifest) { m.Layers[0].Annotations[v1.AnnotationTitle] = "bin/renamed" })
		}, ErrInvalid, "not a file of the config manifest"},
		{"fail_no_such_ref", func(t *testing.T, dir string, a *Artifact) {
			os.WriteFile(filepath.Join(dir, "index.json"), bytes.Replace(mustRead(t, filepath.Join(dir, "index.json")), []byte(`"1.0.0"`), []byte(`"other"`), 1), 0o644)
		}, ErrNotFound, "no manifest named"},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir, a := export(t)
			c.break_(t, dir, a)
			before := s.eventCount(t)
			dst := ref.Version("app", "2.0.0-"+strings.ReplaceAll(c.name, "_", "-"))
			_, _, err := func() (*Plan, []byte, error) {
				l, err := OpenLayout(os.DirFS(dir))
				if err != nil {
					return nil, nil, err
				}
				return Import(ctx, s.reg, l, dst, ImportOptions{RefName: "1.0.0"})
			}()
			if !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.msg) {
				t.Fatalf("Import = %v; want %v mentioning %q", err, c.want, c.msg)
			}
			if after := s.eventCount(t); after != before {
				t.Fatalf("a refused import appended %d events", after-before)
			}
			if _, err := s.reg.GetPackage(ctx, dst); !errors.Is(err, registry.ErrNotFound) {
				t.Fatalf("package %s exists after a refused import (%v)", dst, err)
			}
		})
	}
}

func mustRead(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// writeManifest stores b as a blob and points the index's only entry at it.
func writeManifest(t *testing.T, dir string, b []byte) {
	t.Helper()
	w, err := NewDirWriter(dir)
	if err != nil {
		t.Fatal(err)
	}
	d := v1.Descriptor{MediaType: v1.MediaTypeImageManifest, Digest: digestOf(b), Size: int64(len(b)),
		Annotations: map[string]string{v1.AnnotationRefName: "1.0.0"}}
	if err := w.WriteBlob(context.Background(), d, bytes.NewReader(b)); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(context.Background(), []v1.Descriptor{d}); err != nil {
		t.Fatal(err)
	}
}
