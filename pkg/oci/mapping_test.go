package oci

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"sort"
	"testing"

	v1 "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/artifactstore/artifact-store/pkg/db"
	"github.com/artifactstore/artifact-store/pkg/db/dbtest"
	"github.com/artifactstore/artifact-store/pkg/identity"
	"github.com/artifactstore/artifact-store/pkg/manifest"
	"github.com/artifactstore/artifact-store/pkg/records"
	"github.com/artifactstore/artifact-store/pkg/ref"
	"github.com/artifactstore/artifact-store/pkg/registry"
)

var update = flag.Bool("update", false, "rewrite testdata/golden_* from the code")

// fixtureManifest is the canonical manifest of app@1.2.3 over
// testdata/fixture, built without a database.
func fixtureManifest(t testing.TB, createdAt string) []byte {
	t.Helper()
	files := fixture(t)
	m := manifest.Manifest{
		Package:    manifest.Package{Name: "app", Version: "1.2.3", CreatedAt: createdAt, Labels: map[string]string{"team": "build"}},
		Retention:  manifest.Retention{Class: "standard"},
		Provenance: manifest.Provenance{Producer: manifest.Producer{Tool: "as-put", Version: "1.0.0"}},
	}
	for p, b := range files {
		sum, _ := identity.SumReader(bytes.NewReader(b))
		m.Files = append(m.Files, records.FileOf(p, sum))
	}
	sort.Slice(m.Files, func(i, j int) bool { return m.Files[i].Path < m.Files[j].Path })
	b, err := manifest.Encode(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestGolden pins the OCI manifest of app@1.2.3 byte for byte, and checks
// the golden file against the fixture independently: every layer's digest
// is crypto/sha256 of the file its title names.
func TestGolden(t *testing.T) {
	for _, c := range []struct{ name, created string }{
		{"golden_app-1.2.3.json", ""},
		{"golden_app-1.2.3-created.json", "2026-12-01T10:00:00Z"},
	} {
		t.Run(c.name, func(t *testing.T) {
			cb := fixtureManifest(t, c.created)
			a, err := FromPackage(cb)
			if err != nil {
				t.Fatal(err)
			}
			golden := filepath.Join("testdata", c.name)
			if *update {
				if err := os.WriteFile(golden, append(append([]byte{}, a.Bytes...), '\n'), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -run TestGolden -update)", err)
			}
			want = bytes.TrimSuffix(want, []byte("\n"))
			if !bytes.Equal(a.Bytes, want) {
				t.Fatalf("OCI manifest differs from %s:\n got %s\nwant %s", golden, a.Bytes, want)
			}
			if sum := sha256.Sum256(want); a.Descriptor.Digest.Encoded() != hex.EncodeToString(sum[:]) || a.Descriptor.Size != int64(len(want)) {
				t.Fatalf("descriptor %+v does not describe the bytes", a.Descriptor)
			}
			// Independent reading of the golden bytes.
			var m v1.Manifest
			if err := json.Unmarshal(want, &m); err != nil {
				t.Fatal(err)
			}
			files := fixture(t)
			if len(m.Layers) != len(files) {
				t.Fatalf("%d layers for %d files", len(m.Layers), len(files))
			}
			for i, l := range m.Layers {
				p := l.Annotations[v1.AnnotationTitle]
				sum := sha256.Sum256(files[p])
				if l.Digest.Encoded() != hex.EncodeToString(sum[:]) || l.Size != int64(len(files[p])) || l.MediaType != "application/octet-stream" {
					t.Errorf("layer %d (%q): %+v does not describe the file", i, p, l)
				}
				if i > 0 && m.Layers[i-1].Annotations[v1.AnnotationTitle] >= p {
					t.Errorf("layers not in path order at %d", i)
				}
			}
			if csum := sha256.Sum256(cb); m.Config.Digest.Encoded() != hex.EncodeToString(csum[:]) || m.Config.MediaType != "application/vnd.artifactstore.manifest.v1+cbor" {
				t.Errorf("config %+v is not the CBOR manifest", m.Config)
			}
			if m.ArtifactType != "application/vnd.artifactstore.package.v1" || m.Annotations[v1.AnnotationVersion] != "1.2.3" {
				t.Errorf("artifactType %q, annotations %v", m.ArtifactType, m.Annotations)
			}
			if got, has := m.Annotations[v1.AnnotationCreated]; got != c.created || has != (c.created != "") {
				t.Errorf("created annotation %q (present %v), want %q", got, has, c.created)
			}
			if _, err := ParseManifest(want); err != nil {
				t.Errorf("ParseManifest refuses our own manifest: %v", err)
			}
		})
	}
}

// TestReproducible builds the OCI manifest of the same package twice on
// each database, from packages stored through the registry, and requires
// one digest everywhere, equal to the database-free golden's.
func TestReproducible(t *testing.T) {
	want, err := FromPackage(fixtureManifest(t, "2026-12-01T10:00:00Z"))
	if err != nil {
		t.Fatal(err)
	}
	digests := map[db.Dialect]string{}
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		var got []string
		for range 2 {
			s := newStore(t, d)
			r := ref.Version("app", "1.2.3")
			if len(got) == 1 {
				r = ref.Version("app", "1.2.3") // same package again, in a second store over a fresh database
				s = newStore(t, dbtest.Open(t, d.Dialect()))
			}
			mb := s.put(t, r, fixture(t), registry.FinalizeOptions{CreatedAt: "2026-12-01T10:00:00Z"})
			a, err := FromPackage(mb)
			if err != nil {
				t.Fatal(err)
			}
			// The registry adds storage receipts; the files, and so the
			// layers, are the same as the golden's.
			if !equalLayers(a.Manifest.Layers, want.Manifest.Layers) {
				t.Fatalf("layers differ from the database-free build")
			}
			got = append(got, a.Descriptor.Digest.String())
		}
		if got[0] != got[1] {
			t.Fatalf("two builds gave %s and %s", got[0], got[1])
		}
		digests[d.Dialect()] = got[0]
	})
	if len(digests) == 2 && digests[db.SQLite] != digests[db.Postgres] {
		t.Fatalf("SQLite gave %s, PostgreSQL %s", digests[db.SQLite], digests[db.Postgres])
	}
	t.Logf("digests: %v", digests)
}

func equalLayers(a, b []v1.Descriptor) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return bytes.Equal(x, y)
}

func TestTag(t *testing.T) {
	for v, want := range map[string]string{"1.2.3": "1.2.3", "1.0.0+build.5": "1.0.0_build.5", "v2_rc": "v2_rc", "1~beta": "", ".hidden": "", "-x": ""} {
		got, err := Tag(v)
		if got != want || (err != nil) != (want == "") {
			t.Errorf("Tag(%q) = %q, %v; want %q", v, got, err, want)
		}
	}
}

func TestFromPackageRefusesBadManifest(t *testing.T) {
	cb := fixtureManifest(t, "")
	cb[len(cb)-1] ^= 0xff
	if _, err := FromPackage(cb); err == nil {
		t.Fatal("FromPackage accepted a damaged manifest")
	}
	_ = context.Background
}
