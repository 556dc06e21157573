package cli_test

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/artifactstore/artifact-store/internal/cli"
)

func write(t *testing.T, path, data string) error {
	t.Helper()
	o, err := cli.OpenOutput(path)
	if err != nil {
		return err
	}
	defer o.Abort()
	if _, err := io.WriteString(o, data); err != nil {
		return err
	}
	return o.Commit()
}

func read(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// leftovers fails the test if a temporary file is left in dir.
func leftovers(t *testing.T, dir string) {
	t.Helper()
	es, _ := os.ReadDir(dir)
	for _, e := range es {
		if strings.HasPrefix(e.Name(), ".") {
			t.Errorf("temporary file left behind: %s", e.Name())
		}
	}
}

// TestOutputNewAndRegular (issue 14 item 1): a new file is created 0644, an
// existing one keeps its mode, and an aborted write leaves it untouched.
func TestOutputNewAndRegular(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "out")
	if err := write(t, p, "one"); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(p); read(t, p) != "one" || fi.Mode().Perm() != 0o644 {
		t.Errorf("new file: %q, mode %v", read(t, p), fi.Mode())
	}
	os.Chmod(p, 0o600)
	if err := write(t, p, "two"); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(p); read(t, p) != "two" || fi.Mode().Perm() != 0o600 {
		t.Errorf("rewritten file: %q, mode %v; want mode 0600 kept", read(t, p), fi.Mode())
	}
	o, err := cli.OpenOutput(p)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(o, "partial")
	o.Abort()
	if read(t, p) != "two" {
		t.Errorf("aborted write changed the file: %q", read(t, p))
	}
	leftovers(t, dir)
}

// TestOutputHardLink (issue 14 item 1): a file with two links is written in
// place: both names see the new bytes and stay one file.
func TestOutputHardLink(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	os.WriteFile(a, []byte("old"), 0o640)
	if err := os.Link(a, b); err != nil {
		t.Fatal(err)
	}
	if err := write(t, a, "new bytes"); err != nil {
		t.Fatal(err)
	}
	fa, _ := os.Stat(a)
	fb, _ := os.Stat(b)
	if read(t, b) != "new bytes" || !os.SameFile(fa, fb) || fa.Mode().Perm() != 0o640 {
		t.Errorf("hard link: b holds %q, same file %v, mode %v", read(t, b), os.SameFile(fa, fb), fa.Mode())
	}
	leftovers(t, dir)
}

// TestOutputSymlink (issue 14 item 1): a symlink is followed and stays a
// symlink; a dangling one is refused.
func TestOutputSymlink(t *testing.T) {
	dir := t.TempDir()
	target, link := filepath.Join(dir, "target"), filepath.Join(dir, "link")
	os.WriteFile(target, []byte("old"), 0o644)
	os.Symlink("target", link)
	if err := write(t, link, "through"); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Lstat(link); fi.Mode()&os.ModeSymlink == 0 || read(t, target) != "through" {
		t.Errorf("symlink replaced (%v) or target not written (%q)", fi.Mode(), read(t, target))
	}
	dangling := filepath.Join(dir, "dangling")
	os.Symlink("nowhere", dangling)
	if err := write(t, dangling, "x"); err == nil {
		t.Error("a dangling symlink was accepted")
	}
	if fi, _ := os.Lstat(dangling); fi.Mode()&os.ModeSymlink == 0 {
		t.Error("the dangling symlink was replaced")
	}
	leftovers(t, dir)
}

// TestOutputFIFO (issue 14 item 1): a FIFO is written through and stays a
// FIFO.
func TestOutputFIFO(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(p, 0o600); err != nil {
		t.Fatal(err)
	}
	got := make(chan string)
	go func() {
		b, _ := os.ReadFile(p)
		got <- string(b)
	}()
	if err := write(t, p, "piped"); err != nil {
		t.Fatal(err)
	}
	select {
	case s := <-got:
		if s != "piped" {
			t.Errorf("reader got %q", s)
		}
	case <-time.After(5 * time.Second):
		t.Error("the FIFO's reader got nothing")
	}
	if fi, _ := os.Lstat(p); fi.Mode()&os.ModeNamedPipe == 0 {
		t.Errorf("the FIFO became %v", fi.Mode())
	}
	leftovers(t, dir)
}

// TestOutputCharDevice (issue 14 item 1): a character device (a /dev/null
// made with mknod, so root only) is written through, never replaced.
func TestOutputCharDevice(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mknod needs root")
	}
	dir := t.TempDir()
	p := filepath.Join(dir, "null")
	if err := syscall.Mknod(p, syscall.S_IFCHR|0o666, 1<<8|3); err != nil { // 1:3, /dev/null
		t.Skipf("mknod: %v", err)
	}
	if err := write(t, p, "discarded"); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Lstat(p); fi.Mode()&os.ModeCharDevice == 0 {
		t.Errorf("the device became %v", fi.Mode())
	}
	leftovers(t, dir)
}

// TestOutputRefused: a directory is neither written nor replaced.
func TestOutputRefused(t *testing.T) {
	dir := t.TempDir()
	if err := write(t, dir, "x"); err == nil || !strings.Contains(err.Error(), "directory") {
		t.Errorf("directory: %v", err)
	}
}

// TestOutputOwner (issue 14 item 1): as root, a file owned by another user
// keeps its owner when it is rewritten.
func TestOutputOwner(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("chown needs root")
	}
	p := filepath.Join(t.TempDir(), "f")
	os.WriteFile(p, []byte("old"), 0o644)
	if err := os.Chown(p, 65534, 65534); err != nil {
		t.Skip(err)
	}
	if err := write(t, p, "new"); err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(p)
	if st := fi.Sys().(*syscall.Stat_t); st.Uid != 65534 || st.Gid != 65534 || read(t, p) != "new" {
		t.Errorf("owner %d:%d, content %q; want 65534:65534 kept", st.Uid, st.Gid, read(t, p))
	}
}
