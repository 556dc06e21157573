package local

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/artifactstore/artifact-store/pkg/identity"
	"github.com/artifactstore/artifact-store/pkg/storage"
	"github.com/artifactstore/artifact-store/pkg/storage/storagetest"
)

func open(t *testing.T) *Backend {
	t.Helper()
	b, err := Open(t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func TestConformance(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) storage.Backend { return open(t) })
}

func put(t *testing.T, b storage.Backend, p []byte) identity.Digest {
	t.Helper()
	ctx := t.Context()
	w, err := b.Create(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Cancel(ctx)
	if _, err := w.Write(p); err != nil {
		t.Fatal(err)
	}
	addr := w.(storage.Summer).Sum().BLAKE3
	if err := w.Commit(ctx, addr); err != nil {
		t.Fatal(err)
	}
	return addr
}

func TestLayout(t *testing.T) {
	b := open(t)
	addr := put(t, b, []byte("hello"))
	h := addr.Hex()
	want := filepath.Join(b.Root(), "blake3", h[:2], h[2:4], h)
	fi, err := os.Lstat(want)
	if err != nil {
		t.Fatalf("object not at %s: %v", want, err)
	}
	if !fi.Mode().IsRegular() || fi.Mode().Perm() != 0o444 || fi.Size() != 5 {
		t.Fatalf("object %s: mode %v size %d", want, fi.Mode(), fi.Size())
	}
}

func TestSHA256Address(t *testing.T) {
	b := open(t)
	ctx := t.Context()
	p := []byte("oci bytes")
	s := sha256.Sum256(p)
	addr, err := identity.NewDigest(identity.SHA256, s[:])
	if err != nil {
		t.Fatal(err)
	}
	w, _ := b.Create(ctx)
	w.Write(p)
	if err := w.Commit(ctx, addr); err != nil {
		t.Fatal(err)
	}
	if info, err := b.Head(ctx, addr); err != nil || info.Size != int64(len(p)) {
		t.Fatalf("Head: %v %v", info, err)
	}
}

func TestOddAlgorithmRefused(t *testing.T) {
	b := open(t)
	ctx := t.Context()
	reg := identity.NewAlgorithms()
	if err := reg.Register("md5x", 16, nil); err != nil {
		t.Fatal(err)
	}
	odd, err := reg.Parse("md5x:00112233445566778899aabbccddeeff")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Head(ctx, odd); !errors.Is(err, storage.ErrInvalidKey) {
		t.Fatalf("Head(odd algorithm): %v, want ErrInvalidKey", err)
	}
	w, _ := b.Create(ctx)
	if err := w.Commit(ctx, odd); !errors.Is(err, storage.ErrInvalidKey) {
		t.Fatalf("Commit(odd algorithm): %v, want ErrInvalidKey", err)
	}
	if _, err := os.Stat(filepath.Join(b.Root(), "md5x")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a tree for the odd algorithm was created: %v", err)
	}
}

// TestEscapeByText: traversal and absolute paths cannot even become an
// address; the parser is the only way in.
func TestEscapeByText(t *testing.T) {
	for _, s := range []string{
		"../etc/passwd", "/etc/passwd", "blake3:../../../../etc/passwd",
		"../blake3:" + string(bytes.Repeat([]byte("a"), 64)),
		"blake3:" + string(bytes.Repeat([]byte("."), 64)),
		"blake3:/" + string(bytes.Repeat([]byte("a"), 63)),
	} {
		if _, err := identity.Parse(s); err == nil {
			t.Errorf("Parse(%q) accepted it", s)
		}
	}
	reg := identity.NewAlgorithms()
	for _, name := range []identity.Algorithm{"..", "../x", "/abs", "a/b", "A", ""} {
		if err := reg.Register(name, 32, nil); err == nil {
			t.Errorf("Register(%q) accepted it", name)
		}
	}
}

// TestPlantedSymlinks: symlinks planted inside the root, at a fan-out
// directory or at an object, are refused, never followed, whether they
// point outside the root or back inside it.
func TestPlantedSymlinks(t *testing.T) {
	ctx := t.Context()
	content := []byte("the real object")
	outside := t.TempDir()
	secret := filepath.Join(outside, "secret")
	os.WriteFile(secret, content, 0o644)

	for _, tc := range []struct {
		name  string
		plant func(t *testing.T, root, hex string)
	}{
		{"algorithm dir to outside", func(t *testing.T, root, hex string) {
			must(t, os.Symlink(outside, filepath.Join(root, "blake3")))
		}},
		{"fan-out dir to outside", func(t *testing.T, root, hex string) {
			must(t, os.MkdirAll(filepath.Join(root, "blake3", hex[:2]), 0o755))
			must(t, os.Symlink(outside, filepath.Join(root, "blake3", hex[:2], hex[2:4])))
		}},
		{"fan-out dir to inside", func(t *testing.T, root, hex string) {
			must(t, os.MkdirAll(filepath.Join(root, "elsewhere"), 0o755))
			must(t, os.MkdirAll(filepath.Join(root, "blake3", hex[:2]), 0o755))
			must(t, os.Symlink(filepath.Join(root, "elsewhere"), filepath.Join(root, "blake3", hex[:2], hex[2:4])))
		}},
		{"object to outside", func(t *testing.T, root, hex string) {
			must(t, os.MkdirAll(filepath.Join(root, "blake3", hex[:2], hex[2:4]), 0o755))
			must(t, os.Symlink(secret, filepath.Join(root, "blake3", hex[:2], hex[2:4], hex)))
		}},
		{"object to inside", func(t *testing.T, root, hex string) {
			must(t, os.MkdirAll(filepath.Join(root, "blake3", hex[:2], hex[2:4]), 0o755))
			must(t, os.WriteFile(filepath.Join(root, "decoy"), content, 0o644))
			must(t, os.Symlink(filepath.Join(root, "decoy"), filepath.Join(root, "blake3", hex[:2], hex[2:4], hex)))
		}},
		{"object relative", func(t *testing.T, root, hex string) {
			must(t, os.MkdirAll(filepath.Join(root, "blake3", hex[:2], hex[2:4]), 0o755))
			must(t, os.Symlink("../../../../../../../../"+secret, filepath.Join(root, "blake3", hex[:2], hex[2:4], hex)))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := open(t)
			h := identity.NewHasher()
			h.Write(content)
			addr := h.Sum().BLAKE3
			tc.plant(t, b.Root(), addr.Hex())

			if r, err := b.Get(ctx, addr, 0, -1); err == nil {
				got, _ := io.ReadAll(r)
				r.Close()
				t.Fatalf("Get followed the planted symlink and read %q", got)
			} else if !errors.Is(err, storage.ErrInvalidKey) {
				t.Fatalf("Get: %v: a planted symlink must be refused with ErrInvalidKey", err)
			}
			if _, err := b.Head(ctx, addr); err == nil {
				t.Fatal("Head followed the planted symlink")
			}
			if err := b.Delete(ctx, addr); err == nil {
				t.Fatal("Delete went through the planted symlink")
			}
			w, err := b.Create(ctx)
			if err != nil {
				t.Fatal(err)
			}
			w.Write(content)
			if err := w.Commit(ctx, addr); err == nil {
				t.Fatal("Commit went through the planted symlink")
			}
			// CommitBatch reaches directories through descriptors of its
			// own: it must refuse the same plants.
			w, err = b.Create(ctx)
			if err != nil {
				t.Fatal(err)
			}
			w.Write(content)
			if errs := b.CommitBatch(ctx, []storage.Writer{w}, []identity.Digest{addr}); errs[0] == nil {
				t.Fatal("CommitBatch went through the planted symlink")
			} else if !errors.Is(errs[0], storage.ErrInvalidKey) {
				t.Fatalf("CommitBatch: %v: a planted symlink must be refused with ErrInvalidKey", errs[0])
			}
			// Nothing outside changed.
			entries, _ := os.ReadDir(outside)
			if len(entries) != 1 {
				t.Fatalf("outside dir now holds %d entries", len(entries))
			}
			if got, _ := os.ReadFile(secret); !bytes.Equal(got, content) {
				t.Fatal("outside file changed")
			}
			var tmp []string
			b.ListIncomplete(ctx, func(n string) error { tmp = append(tmp, n); return nil })
			if len(tmp) > 0 {
				t.Fatalf("temporary files left: %q", tmp)
			}
		})
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestCleanStale(t *testing.T) {
	dir := t.TempDir()
	b, err := Open(dir, Options{StaleAge: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	w, _ := b.Create(ctx) // in flight in this live process: must survive
	defer w.Cancel(ctx)
	w.Write([]byte("in flight"))
	tmp := filepath.Join(dir, "tmp")
	dead := filepath.Join(tmp, "999999999-00000000000000aa.tmp") // pid beyond pid_max
	live := filepath.Join(tmp, "1-00000000000000bb.tmp")         // pid 1 is alive
	old := filepath.Join(tmp, "1-00000000000000cc.tmp")          // alive but too old
	junk := filepath.Join(tmp, "junk")                           // no pid, fresh
	link := filepath.Join(tmp, "1-00000000000000dd.tmp")         // planted symlink
	for _, p := range []string{dead, live, old, junk} {
		must(t, os.WriteFile(p, []byte("x"), 0o600))
	}
	victim := filepath.Join(t.TempDir(), "victim")
	must(t, os.WriteFile(victim, []byte("keep"), 0o600))
	must(t, os.Symlink(victim, link))
	past := time.Now().Add(-2 * time.Hour)
	must(t, os.Chtimes(old, past, past))
	b.Close()

	b, err = Open(dir, Options{StaleAge: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	for p, keep := range map[string]bool{dead: false, live: true, old: false, junk: true, link: false} {
		_, err := os.Lstat(p)
		if kept := err == nil; kept != keep {
			t.Errorf("%s: kept=%v, want %v", filepath.Base(p), kept, keep)
		}
	}
	if _, err := os.Stat(victim); err != nil {
		t.Fatalf("symlink target removed: %v", err)
	}
	var n int
	b.ListIncomplete(ctx, func(string) error { n++; return nil })
	if n != 3 { // live, junk and the in-flight writer
		t.Fatalf("%d temporary files left, want 3", n)
	}
}

func TestHealthUnreachable(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root ignores permissions")
	}
	b := open(t)
	tmp := filepath.Join(b.Root(), "tmp")
	must(t, os.Chmod(tmp, 0o500))
	defer os.Chmod(tmp, 0o755)
	h, err := b.Health(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if h.Reachable || h.Detail == "" || h.TotalBytes <= 0 {
		t.Fatalf("Health with an unwritable root: %+v", h)
	}
}

// TestCorruptionVisible: the backend serves what is on disk; detection is
// the data plane's VerifyObject. Here: a flipped bit is served as is and
// nothing crashes.
func TestCorruptionVisible(t *testing.T) {
	b := open(t)
	addr := put(t, b, []byte("precious bytes"))
	p, _ := objectPath(addr)
	full := filepath.Join(b.Root(), p)
	must(t, os.Chmod(full, 0o644))
	raw, _ := os.ReadFile(full)
	raw[3] ^= 1
	must(t, os.WriteFile(full, raw, 0o644))
	r, err := b.Get(context.Background(), addr, 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	got, _ := io.ReadAll(r)
	if bytes.Equal(got, []byte("precious bytes")) {
		t.Fatal("corruption not on disk")
	}
}

// TestDirectWrites: large aligned writes go through O_DIRECT (where the
// filesystem allows it), the unaligned tail buffered, and the object is
// exactly the bytes written.
func TestDirectWrites(t *testing.T) {
	b := open(t)
	ctx := t.Context()
	src := make([]byte, 6<<20+123)
	for i := range src {
		src[i] = byte(i * 31)
	}
	w, err := b.Create(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Cancel(ctx)
	if _, err := w.Write(src[:2<<20]); err != nil {
		t.Fatal(err)
	}
	lw := w.(*writer)
	if !lw.direct.on && !lw.direct.failed {
		t.Fatal("an aligned 2 MiB write did not try O_DIRECT")
	}
	if lw.direct.failed {
		t.Log("filesystem refused O_DIRECT; buffered fallback used")
	}
	for _, p := range [][]byte{src[2<<20 : 4<<20], src[4<<20 : 4<<20+5], src[4<<20+5 : 6<<20], src[6<<20:]} {
		if _, err := w.Write(p); err != nil {
			t.Fatal(err)
		}
	}
	if lw.direct.on {
		t.Fatal("O_DIRECT still on after unaligned writes")
	}
	addr := lw.Sum().BLAKE3
	if err := w.Commit(ctx, addr); err != nil {
		t.Fatal(err)
	}
	r, err := b.Get(ctx, addr, 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	got, _ := io.ReadAll(r)
	if !bytes.Equal(got, src) {
		t.Fatal("object differs from the bytes written")
	}
}

// TestRepair: a re-put replaces a stored object that is truncated,
// extended or has a flipped byte (issue 14 item 3).
func TestRepair(t *testing.T) {
	storagetest.RunRepair(t, func(t *testing.T) (storage.Backend, storagetest.Damage) {
		b := open(t)
		return b, func(ctx context.Context, addr identity.Digest, p []byte) error {
			rel, err := objectPath(addr)
			if err != nil {
				return err
			}
			full := filepath.Join(b.Root(), rel)
			if err := os.Chmod(full, 0o644); err != nil {
				return err
			}
			if err := os.WriteFile(full, p, 0o444); err != nil {
				return err
			}
			return os.Chmod(full, 0o444)
		}
	}, true)
}

// TestWriteToRange: a range read partly with Read and then copied with
// WriteTo (the sendfile path of as-serve's blob GET) yields exactly the
// range, and a second WriteTo has nothing left to give.
func TestWriteToRange(t *testing.T) {
	b := open(t)
	p := make([]byte, 300_000)
	for i := range p {
		p[i] = byte(i * 7)
	}
	addr := put(t, b, p)
	rc, err := b.Get(t.Context(), addr, 1000, 200_000)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	head := make([]byte, 10)
	if _, err := io.ReadFull(rc, head); err != nil {
		t.Fatal(err)
	}
	wt, ok := rc.(io.WriterTo)
	if !ok {
		t.Fatal("the local reader has no WriteTo")
	}
	var rest bytes.Buffer
	if _, err := wt.WriteTo(&rest); err != nil {
		t.Fatal(err)
	}
	if got := append(head, rest.Bytes()...); !bytes.Equal(got, p[1000:201_000]) {
		t.Fatalf("range read back %d bytes, not the %d of the range", len(got), 200_000)
	}
	if n, err := wt.WriteTo(io.Discard); n != 0 || err != nil {
		t.Fatalf("second WriteTo: %d bytes, %v", n, err)
	}
}

// TestIntactVanished: an object that a commit saw but that was deleted
// before it could be re-hashed (a GC sweep between the two) is not an
// error: the commit stores the new bytes. TestGCSoak hit this window.
func TestIntactVanished(t *testing.T) {
	b := open(t)
	h := identity.NewHasher()
	h.Write([]byte("gone"))
	addr := h.Sum().BLAKE3
	p, err := objectPath(addr)
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := b.intact(t.Context(), p, addr, 4, 4); ok || err != nil {
		t.Fatalf("intact of a vanished object = %v, %v; want false, nil", ok, err)
	}
}
