package manifest

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/artifactstore/artifact-store/pkg/canonical"
	"github.com/artifactstore/artifact-store/pkg/identity"
	"github.com/artifactstore/artifact-store/pkg/records"
)

// fileRec returns a record for path whose digests derive from seed.
func fileRec(path string, seed byte) records.File {
	var b3, s2 [32]byte
	for i := range b3 {
		b3[i] = seed + byte(i)
		s2[i] = seed ^ byte(i)
	}
	ca, _ := identity.NewDigest(identity.BLAKE3, b3[:])
	sh, _ := identity.NewDigest(identity.SHA256, s2[:])
	return records.File{Path: path, Size: uint64(seed) * 1000, ContentAddress: ca, SHA256: sh}
}

func sample() Manifest {
	return Manifest{
		Package: Package{Name: "app", Version: "1.4.2", CreatedAt: "2026-01-02T03:04:05Z",
			Labels: map[string]string{"team": "core", "os": "linux"}},
		Files:           []records.File{fileRec("bin/app", 1), fileRec("lib/libx.so", 2), fileRec("share/ü.txt", 3)},
		StorageReceipts: []Receipt{{ContentAddress: fileRec("", 1).ContentAddress, BackendID: "local", Key: "blake3/01/02/0102"}},
		Retention:       Retention{Class: "standard", Hold: true},
		Provenance: Provenance{Producer: Producer{Tool: "as-manifest", Version: "1.0.0"},
			Facts: map[string]string{"git_commit": "abc123"}},
	}
}

func TestRoundTrip(t *testing.T) {
	m := sample()
	b, err := Encode(m)
	if err != nil {
		t.Fatal(err)
	}
	if err := canonical.Check(b); err != nil {
		t.Fatal(err)
	}
	got, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, m) {
		t.Fatalf("Decode(Encode(m)) = %+v, want %+v", got, m)
	}
	j, err := JCS(m)
	if err != nil {
		t.Fatal(err)
	}
	got, err = FromJCS(j)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, m) {
		t.Fatalf("FromJCS(JCS(m)) = %+v, want %+v", got, m)
	}
	c, err := CBORFromJCS(j)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(c, b) {
		t.Fatalf("CBORFromJCS(JCS(m)) differs from Encode(m)")
	}
	d, _ := Digest(m)
	if d != DigestOf(b) || d.Algorithm() != identity.BLAKE3 {
		t.Fatalf("Digest = %v", d)
	}
}

func TestJCSShape(t *testing.T) {
	m := Manifest{Provenance: Provenance{Producer: Producer{Tool: "t", Version: "v"}}}
	j, err := JCS(m)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"files":[],"manifest_version":1,"package":{"created_at":null,"labels":{},"name":"","version":""},"provenance":{"facts":{},"producer":{"tool":"t","version":"v"}},"retention_summary":{"class":"","hold":false},"storage_receipts":[]}`
	if string(j) != want {
		t.Fatalf("JCS =\n%s\nwant\n%s", j, want)
	}
}

func TestValidateRejects(t *testing.T) {
	for name, mut := range map[string]func(*Manifest){
		"name upper":         func(m *Manifest) { m.Package.Name = "App" },
		"name without ver":   func(m *Manifest) { m.Package.Version = "" },
		"version space":      func(m *Manifest) { m.Package.Version = "1 2" },
		"version at":         func(m *Manifest) { m.Package.Version = "1@2" },
		"created_at offset":  func(m *Manifest) { m.Package.CreatedAt = "2026-01-02T03:04:05+01:00" },
		"created_at frac":    func(m *Manifest) { m.Package.CreatedAt = "2026-01-02T03:04:05.5Z" },
		"label key":          func(m *Manifest) { m.Package.Labels = map[string]string{"a b": "x"} },
		"dotdot path":        func(m *Manifest) { m.Files[0].Path = "../x" },
		"abs path":           func(m *Manifest) { m.Files[0].Path = "/x" },
		"unsorted":           func(m *Manifest) { m.Files[0], m.Files[1] = m.Files[1], m.Files[0] },
		"duplicate":          func(m *Manifest) { m.Files[1].Path = m.Files[0].Path },
		"size 2^53":          func(m *Manifest) { m.Files[0].Size = 1 << 53 },
		"zero digest":        func(m *Manifest) { m.Files[0].SHA256 = identity.Digest{} },
		"swapped digests":    func(m *Manifest) { m.Files[0].SHA256 = m.Files[0].ContentAddress },
		"receipt backend":    func(m *Manifest) { m.StorageReceipts[0].BackendID = "" },
		"no producer":        func(m *Manifest) { m.Provenance.Producer.Tool = "" },
		"retention class":    func(m *Manifest) { m.Retention.Class = "Gold Tier" },
		"fact key empty":     func(m *Manifest) { m.Provenance.Facts = map[string]string{"": "x"} },
		"receipt duplicated": func(m *Manifest) { m.StorageReceipts = append(m.StorageReceipts, m.StorageReceipts[0]) },
	} {
		t.Run(name, func(t *testing.T) {
			m := sample()
			mut(&m)
			if _, err := Encode(m); !errors.Is(err, ErrInvalid) {
				t.Fatalf("Encode: err = %v, want ErrInvalid", err)
			}
			if _, err := JCS(m); !errors.Is(err, ErrInvalid) {
				t.Fatalf("JCS: err = %v, want ErrInvalid", err)
			}
		})
	}
}

// TestBuilderReproducible builds one tree's manifest from records listed in
// different orders, with different path spellings (different working
// directories, absolute and relative) at different times, and gets one
// digest.
func TestBuilderReproducible(t *testing.T) {
	rel := []string{"bin/app", "lib/libx.so", "share/doc/README", "share/ü.txt"}
	build := func(paths []string, root string) identity.Digest {
		t.Helper()
		b := Builder{Root: root, Package: Package{Name: "app", Version: "1"},
			Provenance: Provenance{Producer: Producer{Tool: "test", Version: "1"}}}
		for _, p := range paths {
			seed := byte(0)
			for _, r := range rel {
				if strings.HasSuffix(p, r) {
					seed = byte(len(r))
				}
			}
			if err := b.Add(fileRec(p, seed)); err != nil {
				t.Fatal(err)
			}
		}
		m, err := b.Manifest()
		if err != nil {
			t.Fatal(err)
		}
		if m.Files[0].Path != "bin/app" {
			t.Fatalf("first path %q", m.Files[0].Path)
		}
		d, err := Digest(m)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	prefixed := func(prefix string) []string {
		out := make([]string, len(rel))
		for i, r := range rel {
			out[i] = prefix + r
		}
		rand.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
		return out
	}
	want := build(prefixed("dist/"), "")
	for _, tc := range []struct{ prefix, root string }{
		{"dist/", "dist"},
		{"./dist/", ""},
		{"./dist/", "dist/"},
		{"/tmp/x/dist/", ""},
		{"/home/u/work/dist/", "/home/u/work/dist"},
		{"../../dist/", ""},
		{"", ""},
		{"", "."},
		{"./", ""},
		{"dist//", ""},
	} {
		if got := build(prefixed(tc.prefix), tc.root); got != want {
			t.Errorf("prefix %q root %q: digest %v, want %v", tc.prefix, tc.root, got, want)
		}
	}
}

// TestBuilderRealTree digests a real tree from two working directories.
func TestBuilderRealTree(t *testing.T) {
	dir := t.TempDir()
	for _, p := range []string{"dist/bin/app", "dist/etc/conf", "dist/a"} {
		os.MkdirAll(filepath.Join(dir, filepath.Dir(p)), 0o755)
		os.WriteFile(filepath.Join(dir, p), []byte("content of "+p), 0o644)
	}
	digestTree := func(base string, order []string) identity.Digest {
		b := Builder{Provenance: Provenance{Producer: Producer{Tool: "t", Version: "1"}}}
		for _, p := range order {
			f, err := os.Open(filepath.Join(dir, p))
			if err != nil {
				t.Fatal(err)
			}
			s, err := identity.SumReader(f)
			f.Close()
			if err != nil {
				t.Fatal(err)
			}
			if err := b.Add(records.FileOf(filepath.Join(base, p), s)); err != nil {
				t.Fatal(err)
			}
		}
		m, err := b.Manifest()
		if err != nil {
			t.Fatal(err)
		}
		d, _ := Digest(m)
		return d
	}
	a := digestTree(".", []string{"dist/bin/app", "dist/etc/conf", "dist/a"})
	b := digestTree(dir, []string{"dist/a", "dist/etc/conf", "dist/bin/app"})
	if a != b {
		t.Fatalf("digests differ: %v %v", a, b)
	}
}

func TestBuilderErrors(t *testing.T) {
	for name, tc := range map[string]struct {
		root  string
		paths []string
		want  string
	}{
		"duplicate":     {"", []string{"d/a", "d/b", "d/./a"}, "records 1 and 3: duplicate path"},
		"dotdot":        {"", []string{"../a", "b"}, `record 1: path "../a"`},
		"file and dir":  {"", []string{"d/x", "d/x/y", "d/z"}, `"x" is a file and also a directory of "x/y"`},
		"outside root":  {"dist", []string{"dist/a", "other/b"}, `record 2: path "other/b": not under the root`},
		"root itself":   {"dist", []string{"dist"}, "not under the root"},
		"abs and rel":   {"", []string{"/x/a", "b"}, "record 1"},
		"root mismatch": {"/abs", []string{"abs/a"}, "not under the root"},
	} {
		t.Run(name, func(t *testing.T) {
			b := Builder{Root: tc.root, Provenance: Provenance{Producer: Producer{Tool: "t", Version: "1"}}}
			for i, p := range tc.paths {
				if err := b.Add(fileRec(p, byte(i))); err != nil {
					t.Fatal(err)
				}
			}
			_, err := b.Manifest()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestDecodeErrorsNameField(t *testing.T) {
	good, err := Encode(sample())
	if err != nil {
		t.Fatal(err)
	}
	// Replace the second file's size (1000 * 2 = 2000 = 0x19 0x07d0) with
	// a text string of the same length: wrong type, still canonical.
	i := bytes.Index(good, []byte{0x64, 's', 'i', 'z', 'e', 0x19, 0x07, 0xd0})
	if i < 0 {
		t.Fatal("size not found")
	}
	bad := bytes.Clone(good)
	copy(bad[i+5:], []byte{0x62, 'x', 'y'})
	_, err = Decode(bad)
	var me *Error
	if !errors.As(err, &me) || me.Field != "files[1].size" || me.Offset != i+5 {
		t.Fatalf("err = %v, want files[1].size at byte %d", err, i+5)
	}
}

// TestFastDigest checks that Decode's allocation-free digest parser agrees
// with identity.Parse: whatever it accepts, Parse accepts as the same value.
func TestFastDigest(t *testing.T) {
	good := "blake3:" + strings.Repeat("0123456789abcdef", 4)
	cases := []string{good, "sha256:" + good[7:], strings.ToUpper(good), "blake3:" + strings.Repeat("0123456789ABCDEF", 4),
		"blake3:" + strings.Repeat("g", 64), "md5:" + good[7:], "blake3:" + good[8:], "sha512:" + good[7:], "blake3 " + good[7:]}
	for _, s := range cases {
		fd, ok := fastDigest([]byte(s))
		pd, err := identity.Parse(s)
		if ok && (err != nil || fd != pd) {
			t.Errorf("%q: fastDigest accepted %v, Parse gives %v, %v", s, fd, pd, err)
		}
		if !ok && err == nil && (s == good || strings.HasPrefix(s, "sha256:")) {
			t.Errorf("%q: fastDigest refused a valid address", s)
		}
	}
}

// TestBuilderManyRecords crosses the builder's chunk boundaries.
func TestBuilderManyRecords(t *testing.T) {
	b := Builder{Provenance: Provenance{Producer: Producer{Tool: "t", Version: "1"}}}
	const n = 3*chunkSize + 7
	for i := n - 1; i >= 0; i-- {
		if err := b.Add(fileRec(fmt.Sprintf("d/%06d", i), byte(i))); err != nil {
			t.Fatal(err)
		}
	}
	m, err := b.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	if b.Len() != n || len(m.Files) != n {
		t.Fatalf("Len %d, files %d, want %d", b.Len(), len(m.Files), n)
	}
	for i, f := range m.Files {
		if want := fileRec(fmt.Sprintf("%06d", i), byte(i)); f != want {
			t.Fatalf("files[%d] = %+v, want %+v", i, f, want)
		}
	}
	if err := b.Add(fileRec(fmt.Sprintf("d/%06d", 5), 5)); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Manifest(); err == nil || !strings.Contains(err.Error(), fmt.Sprintf("records %d and %d", n-5, n+1)) {
		t.Fatalf("duplicate across chunks: %v", err)
	}
}

// TestFileUnderFileRefused (issue 14 item 6): a manifest holding both "x"
// and "x/y" is neither encoded nor decoded.
func TestFileUnderFileRefused(t *testing.T) {
	m := sample()
	m.Files = []records.File{fileRec("x", 1), fileRec("x-", 2), fileRec("x/y", 3)}
	if _, err := Encode(m); err == nil || !strings.Contains(err.Error(), `"x" is a file and also a directory of "x/y"`) {
		t.Errorf("Encode: %v, want the x and x/y conflict", err)
	}
	b, err := canonical.Marshal(m.toWire())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Decode(b); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), `"x" is a file and also a directory of "x/y"`) {
		t.Errorf("Decode: %v, want ErrInvalid naming the x and x/y conflict", err)
	}
}

// TestDecodeHeaderRefusesWhatDecodeRefuses: the list rules DecodeHeader
// checks without keeping the lists (file order, duplicate paths, receipt
// order, duplicate receipts, receipt fields) refuse as Decode does, naming
// the same entry.
func TestDecodeHeaderRefusesWhatDecodeRefuses(t *testing.T) {
	r1 := Receipt{ContentAddress: fileRec("", 1).ContentAddress, BackendID: "local", Key: "k1"}
	r2 := Receipt{ContentAddress: fileRec("", 2).ContentAddress, BackendID: "local", Key: "k2"}
	for name, c := range map[string]struct {
		mutate func(*Manifest)
		want   string
	}{
		"files out of order":    {func(m *Manifest) { m.Files = []records.File{fileRec("b", 1), fileRec("a", 2)} }, `files[1].path`},
		"duplicate path":        {func(m *Manifest) { m.Files = []records.File{fileRec("a", 1), fileRec("a", 2)} }, `duplicate path "a"`},
		"receipts out of order": {func(m *Manifest) { m.StorageReceipts = []Receipt{r2, r1} }, `storage_receipts[1]: out of order`},
		"duplicate receipt":     {func(m *Manifest) { m.StorageReceipts = []Receipt{r1, r1} }, `storage_receipts[1]: duplicate receipt`},
		"receipt not blake3": {func(m *Manifest) {
			m.StorageReceipts = []Receipt{r1, {ContentAddress: fileRec("", 3).SHA256, BackendID: "local", Key: "k"}}
		}, `storage_receipts[1].content_address`},
	} {
		m := sample()
		c.mutate(&m)
		b, err := canonical.Marshal(m.toWire())
		if err != nil {
			t.Fatal(err)
		}
		for fn, decode := range map[string]func([]byte) (Manifest, error){"Decode": Decode, "DecodeHeader": DecodeHeader} {
			if _, err := decode(b); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), c.want) {
				t.Errorf("%s: %s: %v, want ErrInvalid naming %q", name, fn, err, c.want)
			}
		}
	}
}

// TestEmptyProducerVersionRefused: a producer's legacy version is written
// only when it is not empty, so a manifest that carries "version": "" is
// not in canonical form and neither Decode nor FromJCS takes it (FromJCS
// did, and JCS of the result dropped the field: found by FuzzFromJCS).
// A non-empty one still round-trips byte for byte.
func TestEmptyProducerVersionRefused(t *testing.T) {
	const doc = `{"files":[],"manifest_version":1,"package":{"created_at":null,"labels":{},"name":"a","version":"1"},"provenance":{"facts":{},"producer":{"tool":"t","version":%s}},"retention_summary":{"class":"","hold":false},"storage_receipts":[]}`
	bad := fmt.Sprintf(doc, `""`)
	if _, err := FromJCS([]byte(bad)); err == nil || !strings.Contains(err.Error(), "version") {
		t.Fatalf("FromJCS took an empty producer version: %v", err)
	}
	c, err := CBORFromJCS([]byte(bad))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Decode(c); err == nil {
		t.Fatal("Decode took an empty producer version")
	}
	good := fmt.Sprintf(doc, `"v1"`)
	m, err := FromJCS([]byte(good))
	if err != nil {
		t.Fatal(err)
	}
	if j, err := JCS(m); err != nil || string(j) != good {
		t.Fatalf("JCS(FromJCS(x)) = %s, %v; want x", j, err)
	}
}
