package e2e

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/artifactstore/artifact-store/pkg/db"
)

// TestRootRuleShared: as-put and as-manifest relativise paths by one rule,
// so an absolute --root with the relative paths of 'find dist' works in
// both (as-put refused it: "not under the root").
func TestRootRuleShared(t *testing.T) {
	e := newEnv(t, db.SQLite)
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "dist", "bin"), 0o755)
	os.WriteFile(filepath.Join(dir, "dist", "bin", "app"), []byte("app\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "dist", "README"), []byte("read me\n"), 0o644)
	cd := "cd " + dir + " && "
	put := e.ok(cd + `find dist -type f | as-digest | as-put --package root@1 --root "$PWD/dist" --finalize --json`)
	man := e.ok(cd + `find dist -type f | as-digest | as-manifest --root "$PWD/dist" --package root@1 | as-manifest jcs`)
	for _, out := range []string{put, man} {
		if !strings.Contains(out, `"path":"README"`) || !strings.Contains(out, `"path":"bin/app"`) {
			t.Errorf("paths not relative to the root:\n%s", out)
		}
	}
	// A relative root with absolute paths means the same.
	out := e.ok(cd + `find "$PWD/dist" -type f | as-digest | as-put --package root@2 --root dist --json`)
	if !strings.Contains(out, `"path":"bin/app"`) {
		t.Errorf("relative root, absolute paths:\n%s", out)
	}
}

// TestDeclaredTimeShared: SOURCE_DATE_EPOCH and --created-at are read by
// one function: both tools refuse what one refuses, and normalise an
// offset the same way.
func TestDeclaredTimeShared(t *testing.T) {
	e := newEnv(t, db.SQLite)
	f := filepath.Join(t.TempDir(), "f")
	os.WriteFile(f, []byte("x"), 0o644)
	for i, bad := range []string{"SOURCE_DATE_EPOCH=123abc", "SOURCE_DATE_EPOCH=-1", "SOURCE_DATE_EPOCH=' 5'"} {
		for _, tool := range []string{"as-put --package t" + string(rune('a'+i)) + "@1 --finalize", "as-manifest"} {
			out, code := e.sh("as-digest " + f + " | " + bad + " " + tool + " > /dev/null")
			if code != 2 || !strings.Contains(out, "SOURCE_DATE_EPOCH") {
				t.Errorf("%s %s: exit %d (want 2): %s", bad, tool, code, out)
			}
		}
	}
	// The refused runs created nothing, not even the store.
	if _, err := os.Stat(strings.TrimPrefix(e.dbURL, "sqlite:")); !os.IsNotExist(err) {
		t.Errorf("refused runs created the store: %v", err)
	}
	const offset, utc = "2026-01-02T05:04:05+02:00", `"created_at":"2026-01-02T03:04:05Z"`
	put := e.ok("as-digest " + f + " | as-put --package off@1 --finalize --json --created-at " + offset)
	man := e.ok("as-digest " + f + " | as-manifest --created-at " + offset + " | as-manifest jcs")
	if !strings.Contains(put, utc) || !strings.Contains(man, utc) {
		t.Errorf("offset not normalised alike:\nas-put %s\nas-manifest %s", put, man)
	}
	// Set but empty is unset in both.
	put = e.ok("as-digest " + f + " | SOURCE_DATE_EPOCH= as-put --package empty@1 --finalize --json")
	man = e.ok("as-digest " + f + " | SOURCE_DATE_EPOCH= as-manifest | as-manifest jcs")
	if !strings.Contains(put, `"created_at":null`) || !strings.Contains(man, `"created_at":null`) {
		t.Errorf("empty SOURCE_DATE_EPOCH:\n%s\n%s", put, man)
	}
}

// TestIdentityAcrossBuilds: two builds of as-put with different version
// strings give byte-identical manifests for the same tree and
// declarations; the build is recorded in the log instead.
func TestIdentityAcrossBuilds(t *testing.T) {
	if testing.Short() {
		t.Skip("builds as-put twice")
	}
	e := newEnv(t, db.SQLite)
	tree := t.TempDir()
	os.WriteFile(filepath.Join(tree, "a"), []byte("alpha"), 0o644)
	os.WriteFile(filepath.Join(tree, "b"), []byte("bravo"), 0o644)
	var manifests [][]byte
	for _, v := range []string{"1.0.0-test", "2.0.0-test"} {
		bin := filepath.Join(t.TempDir(), "as-put")
		build := exec.Command("go", "build", "-ldflags", "-X github.com/artifactstore/artifact-store/internal/cli.version="+v, "-o", bin, "./cmd/as-put")
		build.Dir = repoRoot()
		if out, err := build.CombinedOutput(); err != nil {
			t.Fatalf("build %s: %v\n%s", v, err, out)
		}
		if out := e.ok(bin + " --version"); !strings.Contains(out, v) {
			t.Fatalf("--version of the %s build: %s", v, out)
		}
		data := t.TempDir()
		out := e.ok("find " + tree + " -type f | sort | as-digest | XDG_DATA_HOME=" + data + " ARTIFACTSTORE_STORAGE_LOCAL_ROOT=" + data + "/objects SOURCE_DATE_EPOCH=1700000000 " +
			bin + " --package same@1 --root " + tree + " --label team=ci --finalize | base64 -w0")
		manifests = append(manifests, []byte(out))
		log := e.ok("XDG_DATA_HOME=" + data + " ARTIFACTSTORE_STORAGE_LOCAL_ROOT=" + data + "/objects as-events tail --since 0 --json")
		if !strings.Contains(log, "v1.package.produced") || !strings.Contains(log, "as-put "+v) {
			t.Errorf("the %s build is not in the log:\n%s", v, log)
		}
	}
	if !bytes.Equal(manifests[0], manifests[1]) {
		t.Fatalf("manifests differ between builds:\n%s\n%s", manifests[0], manifests[1])
	}
}

// TestExitCodes: each code of the README table, seen through the tools.
func TestExitCodes(t *testing.T) {
	e := newEnv(t, db.SQLite)
	f := filepath.Join(t.TempDir(), "f")
	os.WriteFile(f, []byte("exit codes\n"), 0o644)
	e.ok("as-digest " + f + " | as-put --package codes@1 --finalize > /dev/null")
	addr := strings.Fields(e.ok("as-digest --json " + f + " | sed 's/.*\"content_address\":\"\\([^\"]*\\)\".*/\\1/'"))[0]
	obj := filepath.Join(e.root, "blake3", addr[7:9], addr[9:11], addr[7:])
	missingDB := "sqlite:" + filepath.Join(t.TempDir(), "none.db")
	cases := []struct {
		name, script string
		code         int
	}{
		{"usage: malformed reference", "as-get --package App@1 f", 2},
		{"not found: no package", "as-get --package nope@1 f", 3},
		{"not found: file", "as-get --package codes@1 nope", 3},
		{"not found: object", "as-get blake3:" + strings.Repeat("0", 64), 3},
		{"conflict: finalised", "as-digest " + f + " | as-put --package codes@1 --fact k=v --finalize", 5},
		{"unavailable: missing database", "as-events --db " + missingDB + " head", 6},
		{"unavailable: schema check of a missing store", "as-replay --check --db " + missingDB, 6},
		{"integrity: corrupt object", "chmod u+w " + obj + " && printf X >> " + obj + " && as-get " + addr + " > /dev/null", 4},
	}
	for _, c := range cases {
		out, code := e.sh(c.script)
		if code != c.code {
			t.Errorf("%s: exit %d, want %d: %s", c.name, code, c.code, out)
		}
	}
	// Interrupted: SIGINT while as-put waits on its input.
	cmd := exec.Command("bash", "-c", "sleep 5 | as-put --package int@1")
	cmd.Env = append(os.Environ(), e.vars...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	cmd2 := exec.Command("bash", "-c", "sleep 1; pkill -INT -f 'as-put --package int@1'")
	cmd2.Run()
	err := cmd.Wait()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 130 {
		t.Errorf("SIGINT: %v, want exit 130", err)
	}
}
