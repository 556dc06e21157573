package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/artifactstore/artifact-store/internal/tooltest"
)

// store is a fresh embedded store for the tools: its environment.
func newStore(t *testing.T) []string {
	t.Helper()
	d := t.TempDir()
	return []string{"ARTIFACTSTORE_DATABASE_URL=sqlite:" + filepath.Join(d, "s.db"),
		"ARTIFACTSTORE_STORAGE_LOCAL_ROOT=" + filepath.Join(d, "objects"), "ARTIFACTSTORE_ACTOR=test"}
}

// tree writes a small package tree and returns its root.
func tree(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	for p, b := range map[string]string{"bin/app": "#!/bin/sh\necho app\n", "README.md": "read me\n", "lib/a/b.so": strings.Repeat("so", 5000), "empty": ""} {
		os.MkdirAll(filepath.Join(root, filepath.Dir(p)), 0o755)
		if err := os.WriteFile(filepath.Join(root, p), []byte(b), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func sh(t *testing.T, env []string, script string) (string, int) {
	t.Helper()
	cmd := exec.Command("bash", "-o", "pipefail", "-c", script)
	cmd.Env = append(append(os.Environ(), "PATH="+filepath.Dir(tooltest.Path(t, "as-oci"))+":"+os.Getenv("PATH")), env...)
	out, err := cmd.CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(out, []byte("goroutine ")) || bytes.Contains(out, []byte("panic:")) {
		t.Fatalf("%s: a panic:\n%s", script, out)
	}
	return string(out), code
}

func ok(t *testing.T, env []string, script string) string {
	t.Helper()
	out, code := sh(t, env, script)
	if code != 0 {
		t.Fatalf("%s: exit %d\n%s", script, code, out)
	}
	return out
}

func put(t *testing.T, env []string, root, pkg string) {
	t.Helper()
	ok(t, env, "as-digest "+root+" | as-put --package "+pkg+" --root "+root+" --finalize > /dev/null")
}

// TestRoundTrip: export → import under another version gives the same
// files and the same manifest apart from the version; exports are
// reproducible (same index and manifest bytes twice, directory and tar);
// a tag exports under the tag's name.
func TestRoundTrip(t *testing.T) {
	env := newStore(t)
	root := tree(t)
	put(t, env, root, "app@1.2.3")
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	ok(t, env, "as-oci export app@1.2.3 "+a)
	ok(t, env, "as-oci export app@1.2.3 "+b)
	ia, _ := os.ReadFile(filepath.Join(a, "index.json"))
	ib, _ := os.ReadFile(filepath.Join(b, "index.json"))
	if len(ia) == 0 || !bytes.Equal(ia, ib) || !bytes.Contains(ia, []byte(`"org.opencontainers.image.ref.name":"1.2.3"`)) {
		t.Fatalf("index.json differs or lacks the ref name:\n%s\n%s", ia, ib)
	}
	ok(t, env, "diff -r "+a+" "+b)
	ta := ok(t, env, "as-oci export app@1.2.3 - 2>/dev/null | sha256sum")
	tb := ok(t, env, "as-oci export --tar app@1.2.3 2>/dev/null | sha256sum")
	if ta != tb {
		t.Fatalf("two tar exports differ: %s %s", ta, tb)
	}
	ok(t, env, "as-oci import --package app@1.2.3-copy "+a+":1.2.3")
	ok(t, env, "as-oci export app@1.2.3 - 2>/dev/null | as-oci import --package app@1.2.3-tar -")
	m1 := ok(t, env, "as-get --manifest app@1.2.3 --json")
	for _, v := range []string{"1.2.3-copy", "1.2.3-tar"} {
		m2 := ok(t, env, "as-get --manifest app@"+v+" --json")
		if strings.Replace(m2, `"version":"`+v+`"`, `"version":"1.2.3"`, 1) != m1 {
			t.Errorf("app@%s's manifest differs from app@1.2.3's apart from the version:\n%s\n%s", v, m1, m2)
		}
		out := filepath.Join(dir, "out-"+v)
		ok(t, env, "as-get --package app@"+v+" --into "+out+" 2>/dev/null && diff -r "+root+" "+out)
	}
	// Re-importing into an existing version is a conflict; nothing changes.
	if out, code := sh(t, env, "as-oci import --package app@1.2.3-copy "+a); code != 5 {
		t.Errorf("import into an existing version: exit %d (want 5)\n%s", code, out)
	}
	if out, code := sh(t, env, "as-oci export nope@1 "+filepath.Join(dir, "c")); code != 3 {
		t.Errorf("export of a missing package: exit %d (want 3)\n%s", code, out)
	}
}

// TestImportRefusesMalformed: a broken layout is refused clearly, with the
// right exit code, and no package is recorded.
func TestImportRefusesMalformed(t *testing.T) {
	env := newStore(t)
	root := tree(t)
	put(t, env, root, "app@1")
	good := filepath.Join(t.TempDir(), "good")
	ok(t, env, "as-oci export app@1 "+good)
	var idx struct {
		Manifests []struct{ Digest string } `json:"manifests"`
	}
	ib, _ := os.ReadFile(filepath.Join(good, "index.json"))
	json.Unmarshal(ib, &idx)
	mdig := strings.TrimPrefix(idx.Manifests[0].Digest, "sha256:")
	mb, _ := os.ReadFile(filepath.Join(good, "blobs", "sha256", mdig))
	var man struct {
		Layers []struct {
			Digest      string            `json:"digest"`
			Annotations map[string]string `json:"annotations"`
		} `json:"layers"`
	}
	json.Unmarshal(mb, &man)
	bigLayer := ""
	for _, l := range man.Layers {
		if l.Annotations["org.opencontainers.image.title"] == "lib/a/b.so" {
			bigLayer = strings.TrimPrefix(l.Digest, "sha256:")
		}
	}
	copyLayout := func(t *testing.T) string {
		d := filepath.Join(t.TempDir(), "l")
		ok(t, nil, "cp -r "+good+" "+d)
		return d
	}
	// rewrite replaces the manifest with f(manifest) and points the index at it.
	rewrite := func(t *testing.T, d string, f func(string) string) {
		nm := []byte(f(string(mb)))
		sum := sha256.Sum256(nm)
		h := hex.EncodeToString(sum[:])
		os.WriteFile(filepath.Join(d, "blobs", "sha256", h), nm, 0o644)
		ni := strings.Replace(string(ib), mdig, h, 1)
		ni = strings.Replace(ni, `"size":`+itoa(len(mb)), `"size":`+itoa(len(nm)), 1)
		os.WriteFile(filepath.Join(d, "index.json"), []byte(ni), 0o644)
	}
	cases := []struct {
		name   string
		break_ func(t *testing.T, d string)
		code   int
		want   string
	}{
		{"bad oci-layout", func(t *testing.T, d string) {
			os.WriteFile(filepath.Join(d, "oci-layout"), []byte(`{"imageLayoutVersion":"9.9.9"}`), 0o644)
		}, 1, "oci-layout"},
		{"missing blob", func(t *testing.T, d string) { os.Remove(filepath.Join(d, "blobs", "sha256", bigLayer)) }, 3, bigLayer[:12]},
		{"digest mismatch", func(t *testing.T, d string) {
			p := filepath.Join(d, "blobs", "sha256", bigLayer)
			b, _ := os.ReadFile(p)
			b[10] ^= 1
			os.WriteFile(p, b, 0o644)
		}, 4, ""},
		{"title with ..", func(t *testing.T, d string) {
			rewrite(t, d, func(s string) string { return strings.Replace(s, `"lib/a/b.so"`, `"../b.so"`, 1) })
		}, 1, ".."},
		{"huge manifest", func(t *testing.T, d string) {
			rewrite(t, d, func(s string) string {
				return strings.Replace(s, `{`, `{"padding":"`+strings.Repeat("x", 5<<20)+`",`, 1)
			})
		}, 1, "allowed"},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := copyLayout(t)
			c.break_(t, d)
			pkg := "bad@" + itoa(i)
			out, code := sh(t, env, "as-oci import --package "+pkg+" "+d)
			if code != c.code || !strings.Contains(out, c.want) {
				t.Errorf("exit %d (want %d), output %q (want it to name %q)", code, c.code, out, c.want)
			}
			if out, code := sh(t, env, "as-get --manifest "+pkg); code != 3 {
				t.Errorf("a refused import recorded %s: exit %d %s", pkg, code, out)
			}
		})
	}
	if out, code := sh(t, env, "as-oci import "+good); code != 2 || !strings.Contains(out, "--package") {
		t.Errorf("import without --package: exit %d %s", code, out)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

// TestPeers: oras pulls an export byte-identical; what oras pushes into a
// layout imports as a package with the directory's files; crane, pushing
// the exported layout through as-serve, reports the manifest and config
// digests of the layout.
func TestPeers(t *testing.T) {
	oras := tooltest.CachedPeer(t, "oras")
	crane := tooltest.CachedPeer(t, "crane")
	env := newStore(t)
	root := tree(t)
	put(t, env, root, "app@2.0.0")
	dir := t.TempDir()
	lay := filepath.Join(dir, "lay")
	ok(t, env, "as-oci export app@2.0.0 "+lay)
	pulled := filepath.Join(dir, "pulled")
	ok(t, env, oras+" pull --oci-layout "+lay+":2.0.0 -o "+pulled)
	ok(t, env, "diff -r "+root+" "+pulled)

	pushed := filepath.Join(dir, "pushed")
	ok(t, env, "cd "+root+" && "+oras+" push --oci-layout "+pushed+":1.0 bin/app README.md lib/a/b.so empty")
	ok(t, env, "as-oci import --package pushed@1.0 "+pushed+":1.0")
	out := filepath.Join(dir, "out")
	ok(t, env, "as-get --package pushed@1.0 --into "+out+" && diff -r "+root+" "+out)

	// crane: push the exported layout to as-serve, read the digests back.
	addr := serve(t)
	ok(t, nil, crane+" push --insecure "+lay+" "+addr+"/app:2.0.0")
	var idx struct {
		Manifests []struct{ Digest string } `json:"manifests"`
	}
	ib, _ := os.ReadFile(filepath.Join(lay, "index.json"))
	json.Unmarshal(ib, &idx)
	got := strings.TrimSpace(ok(t, nil, crane+" digest --insecure "+addr+"/app:2.0.0"))
	if got != idx.Manifests[0].Digest {
		t.Fatalf("crane digest %s, layout manifest %s", got, idx.Manifests[0].Digest)
	}
	cfg := ok(t, nil, crane+" config --insecure "+addr+"/app:2.0.0 | sha256sum")
	mb, _ := os.ReadFile(filepath.Join(lay, "blobs", "sha256", strings.TrimPrefix(got, "sha256:")))
	var man struct {
		Config struct{ Digest string } `json:"config"`
	}
	json.Unmarshal(mb, &man)
	if "sha256:"+strings.Fields(cfg)[0] != man.Config.Digest {
		t.Fatalf("crane config hashes to %s, the layout's config is %s", cfg, man.Config.Digest)
	}
}

// serve starts as-serve on a fresh store and returns its address.
func serve(t *testing.T) string {
	t.Helper()
	return tooltest.StartServe(t, newStore(t))
}
