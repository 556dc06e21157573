package main

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/artifactstore/artifact-store/internal/tooltest"
	"github.com/artifactstore/artifact-store/pkg/records"
)

// makeTree writes a tree of files with random contents and awkward names.
func makeTree(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	rng := rand.New(rand.NewPCG(1, 2))
	names := []string{"empty", "a.txt", "sub/b.bin", "sub/deeper/c", "with space", "ü/水.txt", "sub/big.bin"}
	for i := range 40 {
		names = append(names, fmt.Sprintf("gen/%02d/f%d", i%7, i))
	}
	for _, n := range names {
		p := filepath.Join(root, n)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		size := rng.IntN(70_000)
		switch n {
		case "empty":
			size = 0
		case "sub/big.bin":
			size = 9<<20 + 17 // several pipelined buffers
		}
		data := make([]byte, size)
		for i := range data {
			data[i] = byte(rng.Uint32())
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func findList(t *testing.T, root string) []byte {
	out, err := exec.Command("find", root).Output()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func readRecords(t *testing.T, b []byte) []records.File {
	t.Helper()
	r := records.NewReader(bytes.NewReader(b))
	var out []records.File
	for {
		f, err := r.ReadFile()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, f)
	}
}

// peerDigests runs tool (b3sum or sha256sum) over files and returns path → hex.
func peerDigests(t *testing.T, tool string, files []string) map[string]string {
	out, err := exec.Command(tooltest.RequirePeer(t, tool), files...).Output()
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	for line := range strings.Lines(string(out)) {
		hexSum, path, ok := strings.Cut(strings.TrimSuffix(line, "\n"), "  ")
		if !ok {
			t.Fatalf("%s line %q", tool, line)
		}
		m[path] = hexSum
	}
	return m
}

func TestFindPipelineMatchesPeers(t *testing.T) {
	root := makeTree(t)
	list := findList(t, root)
	res := tooltest.Run(t, "", list, nil, "as-digest")
	if res.Code != 0 {
		t.Fatalf("exit %d: %s", res.Code, res.Stderr)
	}
	recs := readRecords(t, res.Stdout)

	// Output order is input order, directories skipped.
	var files []string
	for line := range strings.Lines(string(list)) {
		p := strings.TrimSuffix(line, "\n")
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() {
			files = append(files, p)
		}
	}
	if len(recs) != len(files) {
		t.Fatalf("%d records for %d files", len(recs), len(files))
	}
	b3 := peerDigests(t, "b3sum", files)
	s2 := peerDigests(t, "sha256sum", files)
	for i, r := range recs {
		if r.Path != files[i] {
			t.Fatalf("record %d is %q, want %q (input order)", i, r.Path, files[i])
		}
		st, _ := os.Stat(r.Path)
		if r.Size != uint64(st.Size()) {
			t.Errorf("%s: size %d, want %d", r.Path, r.Size, st.Size())
		}
		if r.ContentAddress.Hex() != b3[r.Path] {
			t.Errorf("%s: blake3 %s, b3sum says %s", r.Path, r.ContentAddress.Hex(), b3[r.Path])
		}
		if r.SHA256.Hex() != s2[r.Path] {
			t.Errorf("%s: sha256 %s, sha256sum says %s", r.Path, r.SHA256.Hex(), s2[r.Path])
		}
	}

	// -0 with find -print0, and PATH arguments, give the same records.
	list0, err := exec.Command("find", root, "-print0").Output()
	if err != nil {
		t.Fatal(err)
	}
	if r0 := tooltest.Run(t, "", list0, nil, "as-digest", "-0"); r0.Code != 0 || !bytes.Equal(r0.Stdout, res.Stdout) {
		t.Fatalf("-0 differs (exit %d): %s", r0.Code, r0.Stderr)
	}
	if ra := tooltest.Run(t, "", nil, nil, "as-digest", files...); ra.Code != 0 || !bytes.Equal(ra.Stdout, res.Stdout) {
		t.Fatalf("PATH arguments differ (exit %d): %s", ra.Code, ra.Stderr)
	}
	// --json renders the same records.
	rj := tooltest.Run(t, "", list, nil, "as-digest", "--json", "--jobs", "1")
	if got := strings.Count(string(rj.Stdout), "\n"); got != len(recs) || !strings.Contains(string(rj.Stdout), `"content_address":"blake3:`+recs[0].ContentAddress.Hex()) {
		t.Fatalf("--json output: %s", rj.Stdout)
	}
}

func TestStdinBytes(t *testing.T) {
	data := []byte("hello, artifact store\n")
	res := tooltest.Run(t, "", data, nil, "as-digest", "-")
	recs := readRecords(t, res.Stdout)
	if res.Code != 0 || len(recs) != 1 || recs[0].Path != "-" || recs[0].Size != uint64(len(data)) {
		t.Fatalf("exit %d, records %+v, stderr %s", res.Code, recs, res.Stderr)
	}
	f := filepath.Join(t.TempDir(), "x")
	os.WriteFile(f, data, 0o644)
	if b3 := peerDigests(t, "b3sum", []string{f}); recs[0].ContentAddress.Hex() != b3[f] {
		t.Fatalf("stdin digest %s, b3sum %s", recs[0].ContentAddress, b3[f])
	}
}

func TestBadPathsReportedRestDigested(t *testing.T) {
	root := t.TempDir()
	good := filepath.Join(root, "good")
	os.WriteFile(good, []byte("ok"), 0o644)
	fifo := filepath.Join(root, "fifo")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	badUTF8 := filepath.Join(root, "bad\xff")
	os.WriteFile(badUTF8, []byte("x"), 0o644)
	newline := filepath.Join(root, "new\nline")
	os.WriteFile(newline, []byte("y"), 0o644)
	missing := filepath.Join(root, "missing")

	input := strings.Join([]string{missing, good, fifo, badUTF8, newline}, "\x00")
	res := tooltest.Run(t, "", []byte(input), nil, "as-digest", "-0")
	if res.Code != 1 {
		t.Fatalf("exit %d, want 1; stderr %s", res.Code, res.Stderr)
	}
	recs := readRecords(t, res.Stdout)
	if len(recs) != 1 || recs[0].Path != good {
		t.Fatalf("records %+v, want only %s", recs, good)
	}
	stderr := string(res.Stderr)
	for _, want := range []string{`missing": no such file`, "fifo", "not a regular file", `bad\xff`, "not valid UTF-8", `new\nline`, "newline", "4 path(s) could not be digested"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr does not mention %q:\n%s", want, stderr)
		}
	}
	for line := range strings.Lines(stderr) {
		if !strings.HasPrefix(line, "as-digest: ") {
			t.Errorf("stderr line without the as-digest: prefix: %q", line)
		}
	}
}

func TestUsage(t *testing.T) {
	cases := []struct {
		args []string
		code int
		out  string // substring of stdout
		err  string // substring of stderr
	}{
		{[]string{"--help"}, 0, "Examples:", ""},
		{[]string{"--version"}, 0, "as-digest ", ""},
		{[]string{"--bogus"}, 2, "", "flag provided but not defined"},
		{[]string{"--jobs", "0"}, 2, "", "--jobs must be at least 1"},
		{[]string{"-0", "x"}, 2, "", "do not also give PATH"},
		{[]string{"-", "x"}, 2, "", "cannot be combined"},
	}
	for _, c := range cases {
		res := tooltest.Run(t, "", nil, nil, "as-digest", c.args...)
		if res.Code != c.code || !strings.Contains(string(res.Stdout), c.out) || !strings.Contains(string(res.Stderr), c.err) {
			t.Errorf("as-digest %v: exit %d stdout %q stderr %q", c.args, res.Code, res.Stdout, res.Stderr)
		}
		if c.code != 0 && len(res.Stdout) != 0 {
			t.Errorf("as-digest %v wrote to stdout on a usage error", c.args)
		}
	}
}

func TestEmptyInput(t *testing.T) {
	res := tooltest.Run(t, "", nil, nil, "as-digest")
	if res.Code != 0 || len(res.Stdout) != 0 {
		t.Fatalf("empty input: exit %d, stdout %q, stderr %s", res.Code, res.Stdout, res.Stderr)
	}
}

// TestDirectoryArgumentWalked (issue 21): a directory named as an argument
// gives the records of `find DIR -type f | LC_ALL=C sort | as-digest`,
// never silently nothing.
func TestDirectoryArgumentWalked(t *testing.T) {
	root := makeTree(t)
	cmd := exec.Command("sh", "-c", `find "$1" -type f | LC_ALL=C sort`, "sh", root)
	list, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	want := tooltest.Run(t, "", list, nil, "as-digest")
	got := tooltest.Run(t, "", nil, nil, "as-digest", root)
	if got.Code != 0 || len(got.Stdout) == 0 || !bytes.Equal(got.Stdout, want.Stdout) {
		t.Fatalf("as-digest DIR (exit %d, %d bytes) differs from find | sort | as-digest (%d bytes): %s",
			got.Code, len(got.Stdout), len(want.Stdout), got.Stderr)
	}
}
