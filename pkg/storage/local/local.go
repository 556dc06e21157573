// Package local is the local filesystem storage backend: a
// [storage.Backend] that keeps every object as one read-only file under a
// root directory (DESIGN.md §7, docs/adr/0004).
//
// Only pkg/dataplane and the tools' wiring import this package; everything
// else reaches bytes through the data plane.
package local

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/artifactstore/artifact-store/pkg/identity"
	"github.com/artifactstore/artifact-store/pkg/storage"
)

// DefaultStaleAge is how old a temporary file must be before Open removes
// it even though the process named in it may still be alive.
const DefaultStaleAge = 24 * time.Hour

// Options configure Open. The zero value is ready to use.
type Options struct {
	// ID names the backend in errors (its backend_id); default "local".
	ID string
	// StaleAge: see CleanStale. Zero means DefaultStaleAge.
	StaleAge time.Duration
	// ReadOnly opens an existing root for reading only: a missing root is
	// storage.ErrUnavailable and nothing is created or cleaned in it.
	ReadOnly bool
}

// Backend is the local filesystem backend. It is safe for concurrent use,
// also by several processes sharing one root on one host.
type Backend struct {
	id       string
	dir      string   // the root as given, for Statfs and messages
	root     *os.Root // every file operation goes through it: nothing escapes
	staleAge time.Duration
	pid      int
	// tmp is the temporary directory, held open (nil when read-only):
	// Create makes its files relative to it with one openat.
	tmp *os.File
}

var _ storage.Backend = (*Backend)(nil)
var _ storage.Lister = (*Backend)(nil)
var _ storage.IncompleteLister = (*Backend)(nil)
var _ storage.BatchCommitter = (*Backend)(nil)

// The on-disk tree under the root. This comment and objectPath are the one
// place where it is defined.
//
//	<root>/
//	  tmp/<pid>-<16 hex>.tmp               writes in flight (same filesystem as the objects)
//	  <algorithm>/<hex[0:2]>/<hex[2:4]>/<hex>   committed objects, mode 0444
//
// The object part is storage.Key (shared with every backend): for example
// <root>/blake3/af/13/af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262.
// Only the algorithms the backend can verify (blake3, sha256) have a tree.
// A write goes to a fresh temporary file; Commit checks its digest, creates
// the fan-out directories, fsyncs the file and (at the same time) the parent
// of each directory it created, renames the file to its final name and
// fsyncs the directory that holds it. Rename is atomic, so a reader sees either no object or the
// whole object, and after a crash a final name holds either nothing or the
// whole, fsynced object; at worst a temporary file is left, which Open
// removes (CleanStale).
//
// Containment: every path is relative and is opened through an os.Root,
// which refuses to resolve anything outside the root; in addition the
// fan-out directories are checked with Lstat and objects opened with
// O_NOFOLLOW, so a symbolic link planted inside the root is refused, not
// followed, even if it points back inside.
//
// objectPath returns the object's path relative to the root, with
// ErrInvalidKey for the zero Digest and for algorithms other than blake3
// and sha256.
func objectPath(addr identity.Digest) (string, error) {
	switch addr.Algorithm() {
	case identity.BLAKE3, identity.SHA256:
	default:
		if addr.IsZero() {
			return "", fmt.Errorf("%w: zero address", storage.ErrInvalidKey)
		}
		return "", fmt.Errorf("%w: algorithm %q is not stored by this backend", storage.ErrInvalidKey, string(addr.Algorithm()))
	}
	key, err := storage.Key(addr)
	if err != nil {
		return "", err
	}
	return filepath.FromSlash(key), nil
}

const tmpDir = "tmp"

// Open opens (creating if needed) the backend rooted at dir, then removes
// stale temporary files (CleanStale).
func Open(dir string, opts Options) (*Backend, error) {
	if opts.ID == "" {
		opts.ID = "local"
	}
	if opts.StaleAge <= 0 {
		opts.StaleAge = DefaultStaleAge
	}
	if dir == "" {
		return nil, fmt.Errorf("storage: local: empty root directory")
	}
	if opts.ReadOnly {
		if st, err := os.Stat(dir); err != nil || !st.IsDir() {
			if err == nil {
				err = errors.New("not a directory")
			}
			return nil, &storage.Error{Backend: opts.ID, Op: "open", Err: fmt.Errorf("%w: object root %s: %v", storage.ErrUnavailable, dir, err)}
		}
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, &storage.Error{Backend: opts.ID, Op: "open", Err: fmt.Errorf("%w: %v", storage.ErrUnavailable, err)}
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, &storage.Error{Backend: opts.ID, Op: "open", Err: fmt.Errorf("%w: %v", storage.ErrUnavailable, err)}
	}
	b := &Backend{id: opts.ID, dir: dir, root: root, staleAge: opts.StaleAge, pid: os.Getpid()}
	if opts.ReadOnly {
		return b, nil
	}
	if _, err := b.ensureDir(tmpDir); err != nil {
		root.Close()
		return nil, b.err("open", identity.Digest{}, err)
	}
	if b.tmp, err = root.Open(tmpDir); err != nil {
		root.Close()
		return nil, b.err("open", identity.Digest{}, err)
	}
	if _, err := b.CleanStale(context.Background()); err != nil {
		b.Close()
		return nil, err
	}
	return b, nil
}

// Close releases the root directory. The Backend must not be used after.
func (b *Backend) Close() error {
	if b.tmp != nil {
		b.tmp.Close()
	}
	return b.root.Close()
}

// Root returns the directory the backend was opened on.
func (b *Backend) Root() string { return b.dir }

func (b *Backend) err(op string, addr identity.Digest, err error) error {
	return &storage.Error{Backend: b.id, Op: op, Address: addr, Err: err}
}

// CleanStale removes temporary files left by writes that will never finish.
// Temporary names carry the pid of the process that created them. A file is
// removed when that process no longer exists (kill(pid, 0) reports ESRCH),
// or when the file has not been modified for StaleAge, whatever the pid
// (pids are reused, and a hung writer must not pin space forever). Files of
// the current process are removed only by age. Entries that are not regular
// files (a planted symlink) are unlinked, never followed. The pid rule
// assumes one host: a root shared by several hosts (NFS) must rely on the
// age rule alone, so such setups must keep StaleAge above the longest
// write. It returns how many entries it removed.
func (b *Backend) CleanStale(ctx context.Context) (int, error) {
	d, err := b.root.Open(tmpDir)
	if err != nil {
		return 0, b.err("clean", identity.Digest{}, err)
	}
	entries, err := d.ReadDir(-1)
	d.Close()
	if err != nil {
		return 0, b.err("clean", identity.Digest{}, err)
	}
	removed := 0
	now := time.Now()
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return removed, err
		}
		name := path.Join(tmpDir, e.Name())
		fi, err := b.root.Lstat(name)
		if err != nil {
			continue // gone already
		}
		stale := !fi.Mode().IsRegular() || now.Sub(fi.ModTime()) > b.staleAge
		if !stale {
			pid, ok := tempPID(e.Name())
			stale = ok && pid != b.pid && !processAlive(pid)
		}
		if stale {
			if err := b.root.Remove(name); err == nil {
				removed++
			}
		}
	}
	return removed, nil
}

// tempPID extracts the pid from "<pid>-<hex>.tmp".
func tempPID(name string) (int, bool) {
	p, _, ok := strings.Cut(name, "-")
	if !ok || p == "" || strings.Trim(p, "0123456789") != "" {
		return 0, false
	}
	pid, err := strconv.Atoi(p)
	return pid, err == nil && pid > 0
}

func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

func tempName(pid int) string {
	var r [8]byte
	rand.Read(r[:])
	return path.Join(tmpDir, strconv.Itoa(pid)+"-"+hex.EncodeToString(r[:])+".tmp")
}

// checkDirs verifies that every fan-out directory on the way to p is a real
// directory, not a symlink. A missing one gives fs.ErrNotExist.
func (b *Backend) checkDirs(p string) error {
	dir := filepath.Dir(p)
	parts := strings.Split(dir, string(filepath.Separator))
	for i := range parts {
		sub := filepath.Join(parts[:i+1]...)
		fi, err := b.root.Lstat(sub)
		if err != nil {
			return err
		}
		if !fi.IsDir() {
			return fmt.Errorf("%w: %s in the root is not a directory (a symlink or file was planted there); refusing it", storage.ErrInvalidKey, sub)
		}
	}
	return nil
}

// checkObject verifies that the fan-out directories are real directories
// and the object a regular file (not a planted symlink): ErrNotFound if
// anything on the way is missing, ErrInvalidKey if something was planted.
func (b *Backend) checkObject(p string) error {
	if err := b.checkDirs(p); err != nil {
		return mapErr(err)
	}
	fi, err := b.root.Lstat(p)
	if err != nil {
		return mapErr(err)
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%w: %s in the root is not a regular file (a symlink or other file was planted there); refusing it", storage.ErrInvalidKey, p)
	}
	return nil
}

// ensureDir makes sure dir (relative, one level below an existing real
// directory) exists as a real directory. It reports whether it created it.
func (b *Backend) ensureDir(dir string) (bool, error) {
	fi, err := b.root.Lstat(dir)
	if err == nil {
		if !fi.IsDir() {
			return false, fmt.Errorf("%w: %s in the root is not a directory (a symlink or file was planted there); refusing it", storage.ErrInvalidKey, dir)
		}
		return false, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return false, err
	}
	if err := b.root.Mkdir(dir, 0o755); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return b.ensureDir(dir) // a concurrent writer made it; check what it is
		}
		return false, err
	}
	return true, nil
}

// syncDir fsyncs a directory so that entries created or renamed in it are
// durable.
func (b *Backend) syncDir(dir string) error {
	d, err := b.root.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// mapErr turns filesystem errors into SPI sentinels.
func mapErr(err error) error {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("%w (%v)", storage.ErrNotFound, err)
	case errors.Is(err, syscall.ELOOP):
		return fmt.Errorf("%w: a symlink was planted at the object's name; refusing it (%v)", storage.ErrInvalidKey, err)
	}
	return err
}

// Create implements storage.Backend.
func (b *Backend) Create(ctx context.Context) (storage.Writer, error) {
	if err := ctx.Err(); err != nil {
		return nil, b.err("create", identity.Digest{}, err)
	}
	if b.tmp == nil {
		return nil, b.err("create", identity.Digest{}, errors.New("the backend is open read-only"))
	}
	name := tempName(b.pid)
	// Relative to the held temporary directory, and as a file the runtime
	// does not try to register for polling: os.OpenFile of a regular file
	// costs four fcntl and a failed epoll_ctl besides the openat.
	fd, err := unix.Openat(int(b.tmp.Fd()), path.Base(name), unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, b.err("create", identity.Digest{}, &os.PathError{Op: "openat", Path: name, Err: err})
	}
	f := os.NewFile(uintptr(fd), name)
	return &writer{b: b, ctx: ctx, f: f, name: name, h: identity.NewHasher()}, nil
}

// parallelWrite is the write size from which the file write runs on its own
// goroutine while the bytes are hashed.
const parallelWrite = 256 << 10

// writebackEvery is how many bytes a writer accumulates before it asks the
// kernel to start writing them to disk (see startWriteback).
const writebackEvery = 8 << 20

type writer struct {
	b    *Backend
	ctx  context.Context
	f    *os.File
	name string
	h    *identity.Hasher
	n    int64
	// flushed is how far writeback has been started (startWriteback).
	flushed int64
	direct  direct // O_DIRECT for large aligned writes (direct_linux.go)
	err     error  // first write error: Commit refuses
	done    bool
}

func (w *writer) Write(p []byte) (int, error) {
	if w.done {
		return 0, w.b.err("write", identity.Digest{}, storage.ErrWriterClosed)
	}
	if w.err != nil {
		return 0, w.err
	}
	if err := w.ctx.Err(); err != nil {
		w.err = w.b.err("write", identity.Digest{}, err)
		return 0, w.err
	}
	var n int
	var err error
	if len(p) >= parallelWrite {
		// Hash and write concurrently: both only read p.
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			if w.direct.prepare(w.f, p, w.n) {
				n, err = w.f.Write(p)
				if err == nil || n != 0 || !errors.Is(err, syscall.EINVAL) || !w.direct.disable(w.f) {
					return
				}
			}
			n, err = w.f.Write(p)
		}()
		w.h.Write(p)
		wg.Wait()
	} else {
		w.direct.prepare(w.f, p, w.n) // clears O_DIRECT if it was on
		n, err = w.f.Write(p)
		w.h.Write(p[:n])
	}
	w.n += int64(n)
	if !w.direct.on && w.n-w.flushed >= writebackEvery {
		startWriteback(w.f, w.flushed, w.n-w.flushed)
		w.flushed = w.n
	}
	if err != nil {
		w.err = w.b.err("write", identity.Digest{}, err)
		return n, w.err
	}
	return n, nil
}

func (w *writer) Size() int64 { return w.n }

// Sum implements storage.Summer.
func (w *writer) Sum() identity.Sum { return w.h.Sum() }

func (w *writer) Cancel(ctx context.Context) error {
	if w.done {
		return nil
	}
	w.abort()
	return nil
}

// abort removes the temporary file and finishes the writer.
func (w *writer) abort() {
	w.done = true
	w.f.Close()
	w.b.root.Remove(w.name)
}

func (w *writer) Commit(ctx context.Context, addr identity.Digest) error {
	if w.done {
		return w.b.err("commit", addr, storage.ErrWriterClosed)
	}
	if err := w.commit(ctx, addr); err != nil {
		if !w.done {
			w.abort()
		}
		return w.b.err("commit", addr, err)
	}
	return nil
}

// commit publishes one object: prepare, make the data durable, rename,
// make the name durable.
func (w *writer) commit(ctx context.Context, addr identity.Digest) error {
	pp, err := w.prepare(ctx, addr, nil)
	if err != nil || pp == nil {
		return err
	}
	// Two rounds of syncs instead of three: the file's data and the entries
	// of newly created directories become durable together (an empty
	// directory surviving a crash is harmless), then the rename, then the
	// directory that holds the new name. The name is never durable before
	// the data.
	errs := make(chan error, len(pp.created))
	for _, c := range pp.created {
		go func() { errs <- w.b.syncDir(filepath.Dir(c)) }()
	}
	err = w.f.Sync()
	for range pp.created {
		if derr := <-errs; err == nil {
			err = derr
		}
	}
	if err != nil {
		return err
	}
	if err := w.publish(ctx, pp); err != nil {
		return err
	}
	return w.b.syncDir(filepath.Dir(pp.path))
}

// prepared is an object verified and ready to be renamed into place.
type prepared struct {
	path    string   // the final name, relative to the root
	created []string // fan-out directories this commit created
	repair  bool     // it replaces a damaged stored object
	// at, if not nil, holds an open descriptor of the final directory,
	// dir: publish renames relative to it (CommitBatch).
	at  *batchDirs
	dir int
}

// intact reports whether the stored file p holds exactly the bytes of addr:
// the size must be want and, when it is, the file is re-hashed in full.
// The re-hash costs one read of an object the caller has just written in
// full anyway, and only on a duplicate ingest; a size check alone would
// miss a flipped byte, which is what a damaged disk produces.
func (b *Backend) intact(ctx context.Context, p string, addr identity.Digest, want, size int64) (bool, error) {
	if size != want {
		return false, nil
	}
	f, err := b.root.OpenFile(p, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if errors.Is(err, fs.ErrNotExist) {
		// Deleted since it was seen (a GC sweep of an object that was
		// unreferenced until this ingest): store the new bytes.
		return false, nil
	}
	if err != nil {
		return false, err
	}
	defer f.Close()
	sum, err := identity.SumReader(&ctxReader{ctx: ctx, r: f})
	if err != nil {
		if cerr := ctx.Err(); cerr != nil {
			return false, cerr
		}
		// An unreadable object is damaged too: replace it.
		return false, nil
	}
	got := sum.BLAKE3
	if addr.Algorithm() == identity.SHA256 {
		got = sum.SHA256
	}
	return got == addr && sum.Size == want, nil
}

// ctxReader stops a long read when ctx is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (r *ctxReader) Read(p []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	return r.r.Read(p)
}

// prepare verifies the bytes against addr and readies the final name: it
// returns nil (and finishes the writer) if the object is already stored.
// known, if not nil, holds the fan-out directories this batch has already
// found or made real directories; prepare adds to it and checks no
// directory in it again (CommitBatch: of 20,000 objects nearly all share
// their first two levels).
func (w *writer) prepare(ctx context.Context, addr identity.Digest, known map[string]bool) (*prepared, error) {
	p, sum, err := w.verify(ctx, addr)
	if err != nil {
		return nil, err
	}
	return w.prepareAt(ctx, addr, p, sum, known)
}

// verify checks that the writer may commit and holds exactly the bytes of
// addr, and returns the object's path.
func (w *writer) verify(ctx context.Context, addr identity.Digest) (string, identity.Sum, error) {
	if w.err != nil {
		return "", identity.Sum{}, w.err
	}
	if err := ctx.Err(); err != nil {
		return "", identity.Sum{}, err
	}
	if err := w.ctx.Err(); err != nil {
		return "", identity.Sum{}, err
	}
	p, err := objectPath(addr)
	if err != nil {
		return "", identity.Sum{}, err
	}
	sum := w.h.Sum()
	got := sum.BLAKE3
	if addr.Algorithm() == identity.SHA256 {
		got = sum.SHA256
	}
	if got != addr {
		return "", identity.Sum{}, &storage.MismatchError{Want: addr, Got: got, Size: sum.Size}
	}
	return p, sum, nil
}

// prepareIn is prepare for CommitBatch: a new object's final directory is
// reached through dirs' open descriptors; an object whose name exists
// already takes prepare's path (kept if intact, repaired if not, refused
// if something was planted there).
func (w *writer) prepareIn(ctx context.Context, addr identity.Digest, dirs *batchDirs, known map[string]bool) (*prepared, error) {
	p, sum, err := w.verify(ctx, addr)
	if err != nil {
		return nil, err
	}
	dir, err := dirs.dir(filepath.Dir(p))
	if err != nil {
		return nil, err
	}
	switch exists, err := dirs.exists(dir, filepath.Base(p)); {
	case err != nil:
		return nil, err
	case exists:
		return w.prepareAt(ctx, addr, p, sum, known)
	}
	if err := w.f.Chmod(0o444); err != nil {
		return nil, err
	}
	return &prepared{path: p, at: dirs, dir: dir}, nil
}

// prepareAt is prepare after verify, through os.Root.
func (w *writer) prepareAt(ctx context.Context, addr identity.Digest, p string, sum identity.Sum, known map[string]bool) (*prepared, error) {

	// Already stored: the existing object is kept only if it is intact.
	// A damaged one (wrong size, or the right size with other bytes) is
	// replaced atomically by renaming the verified temporary over it, so
	// the good bytes just supplied are never thrown away (issue 14 item 3).
	repair := false
	if fi, err := w.b.root.Lstat(p); err == nil {
		if err := w.b.checkDirs(p); err != nil {
			return nil, err
		}
		if !fi.Mode().IsRegular() {
			return nil, fmt.Errorf("%w: %s in the root is not a regular file; refusing it", storage.ErrInvalidKey, p)
		}
		intact, err := w.b.intact(ctx, p, addr, sum.Size, fi.Size())
		if err != nil {
			return nil, err
		}
		if intact {
			w.abort()
			return nil, nil
		}
		repair = true
	}

	if err := w.f.Chmod(0o444); err != nil {
		return nil, err
	}
	// Fan-out directories, top down; remember which ones are new.
	parts := strings.Split(filepath.Dir(p), string(filepath.Separator))
	pp := &prepared{path: p, repair: repair}
	for i := range parts {
		sub := filepath.Join(parts[:i+1]...)
		if known[sub] {
			continue
		}
		made, err := w.b.ensureDir(sub)
		if err != nil {
			return nil, err
		}
		if made {
			pp.created = append(pp.created, sub)
		}
		if known != nil {
			known[sub] = true
		}
	}
	return pp, nil
}

// publish renames the (durable) temporary file to its final name.
func (w *writer) publish(ctx context.Context, pp *prepared) error {
	if err := w.f.Close(); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if pp.at != nil {
		if err := pp.at.rename(w.name, pp.dir, filepath.Base(pp.path)); err != nil {
			return err
		}
	} else if err := w.b.root.Rename(w.name, pp.path); err != nil {
		return err
	}
	w.done = true
	return nil
}

// CommitBatch implements storage.BatchCommitter: it publishes many writers
// with two filesystem-wide durability barriers (syncfs) in all, instead of
// two fsync rounds per object. Order of events, as for Commit: every
// object is verified; then one barrier makes all their data and new
// directories durable; then each is renamed into place; then a second
// barrier makes the new names durable. No name is durable before its data.
// Where syncfs does not exist it commits the writers one by one.
func (b *Backend) CommitBatch(ctx context.Context, ws []storage.Writer, addrs []identity.Digest) []error {
	errs := make([]error, len(ws))
	barrier := fsBarrier(b)
	if barrier == nil {
		for i, w := range ws {
			errs[i] = w.Commit(ctx, addrs[i])
		}
		return errs
	}
	lw := make([]*writer, len(ws))
	pps := make([]*prepared, len(ws))
	known := map[string]bool{}
	dirs, err := openBatchDirs(b)
	if err != nil { // the one-by-one path reports what is wrong, per object
		for i, w := range ws {
			errs[i] = w.Commit(ctx, addrs[i])
		}
		return errs
	}
	defer dirs.close()
	fail := func(i int, err error) {
		if !lw[i].done {
			lw[i].abort()
		}
		errs[i] = b.err("commit", addrs[i], err)
	}
	for i, w := range ws {
		x, ok := w.(*writer)
		switch {
		case !ok || x.b != b:
			errs[i] = w.Commit(ctx, addrs[i]) // not ours: commit it alone
			continue
		case x.done:
			errs[i] = b.err("commit", addrs[i], storage.ErrWriterClosed)
			continue
		}
		lw[i] = x
		pp, err := x.prepareIn(ctx, addrs[i], dirs, known)
		if err != nil {
			fail(i, err)
			continue
		}
		pps[i] = pp // nil: already stored, nothing to publish
	}
	if err := barrier(); err != nil {
		for i, pp := range pps {
			if pp != nil {
				fail(i, err)
			}
		}
		return errs
	}
	published := false
	for i, pp := range pps {
		if pp == nil {
			continue
		}
		if err := lw[i].publish(ctx, pp); err != nil {
			fail(i, err)
			continue
		}
		published = true
	}
	if published {
		if err := barrier(); err != nil {
			for i, pp := range pps {
				if pp != nil && errs[i] == nil {
					// Published but perhaps not durable: report it, as
					// Commit does when its last directory sync fails.
					errs[i] = b.err("commit", addrs[i], err)
				}
			}
		}
	}
	return errs
}

// Get implements storage.Backend.
func (b *Backend) Get(ctx context.Context, addr identity.Digest, offset, length int64) (io.ReadCloser, error) {
	if err := storage.CheckRangeArgs(offset, length); err != nil {
		return nil, b.err("get", addr, err)
	}
	p, err := objectPath(addr)
	if err != nil {
		return nil, b.err("get", addr, err)
	}
	if err := ctx.Err(); err != nil {
		return nil, b.err("get", addr, err)
	}
	if err := b.checkObject(p); err != nil {
		return nil, b.err("get", addr, err)
	}
	f, err := b.root.OpenFile(p, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return nil, b.err("get", addr, mapErr(err))
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, b.err("get", addr, err)
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, b.err("get", addr, fmt.Errorf("%w: %s is not a regular file", storage.ErrInvalidKey, p))
	}
	n, err := storage.CheckRange(offset, length, fi.Size())
	if err != nil {
		f.Close()
		return nil, b.err("get", addr, err)
	}
	return &reader{ctx: ctx, f: f, r: io.NewSectionReader(f, offset, n)}, nil
}

type reader struct {
	ctx context.Context
	f   *os.File
	r   io.Reader
}

func (r *reader) Read(p []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	return r.r.Read(p)
}

// WriteTo copies the object's range to w as one *io.LimitedReader over
// the file, so that a w which is a network connection (an HTTP response)
// can send it with sendfile, without copying through user space.
func (r *reader) WriteTo(w io.Writer) (int64, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	sr, ok := r.r.(*io.SectionReader)
	if !ok {
		return io.Copy(w, struct{ io.Reader }{r})
	}
	_, off, n := sr.Outer()
	pos, err := sr.Seek(0, io.SeekCurrent)
	if err != nil {
		return 0, err
	}
	if _, err := r.f.Seek(off+pos, io.SeekStart); err != nil {
		return 0, err
	}
	m, err := io.Copy(w, &io.LimitedReader{R: r.f, N: n - pos})
	sr.Seek(pos+m, io.SeekStart)
	return m, err
}

func (r *reader) Close() error { return r.f.Close() }

// Head implements storage.Backend.
func (b *Backend) Head(ctx context.Context, addr identity.Digest) (storage.Info, error) {
	p, err := objectPath(addr)
	if err != nil {
		return storage.Info{}, b.err("head", addr, err)
	}
	if err := ctx.Err(); err != nil {
		return storage.Info{}, b.err("head", addr, err)
	}
	if err := b.checkObject(p); err != nil {
		return storage.Info{}, b.err("head", addr, err)
	}
	fi, err := b.root.Lstat(p)
	if err != nil {
		return storage.Info{}, b.err("head", addr, mapErr(err))
	}
	return storage.Info{Address: addr, Size: fi.Size()}, nil
}

// Delete implements storage.Backend. Fan-out directories are left in place
// (removing them would race with a concurrent Commit into them).
func (b *Backend) Delete(ctx context.Context, addr identity.Digest) error {
	p, err := objectPath(addr)
	if err != nil {
		return b.err("delete", addr, err)
	}
	if err := ctx.Err(); err != nil {
		return b.err("delete", addr, err)
	}
	if err := b.checkObject(p); err != nil {
		return b.err("delete", addr, err)
	}
	if err := b.root.Remove(p); err != nil {
		return b.err("delete", addr, mapErr(err))
	}
	if err := b.syncDir(filepath.Dir(p)); err != nil {
		return b.err("delete", addr, err)
	}
	return nil
}

// Health implements storage.Backend: Statfs of the root for capacity and a
// write probe (create, write, fsync, remove a temporary file) for
// reachability.
func (b *Backend) Health(ctx context.Context) (storage.Health, error) {
	if err := ctx.Err(); err != nil {
		return storage.Health{}, err
	}
	h := storage.Health{FreeBytes: -1, TotalBytes: -1}
	var st syscall.Statfs_t
	if err := syscall.Statfs(b.dir, &st); err != nil {
		h.Detail = fmt.Sprintf("local root %s: statfs: %v", b.dir, err)
		return h, nil
	}
	h.FreeBytes = int64(st.Bavail) * int64(st.Bsize)
	h.TotalBytes = int64(st.Blocks) * int64(st.Bsize)
	if err := b.probe(); err != nil {
		h.Detail = fmt.Sprintf("local root %s: write probe: %v", b.dir, err)
		return h, nil
	}
	h.Reachable = true
	h.Detail = "local root " + b.dir
	return h, nil
}

func (b *Backend) probe() error {
	name := tempName(b.pid)
	f, err := b.root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write([]byte("health probe\n"))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if rerr := b.root.Remove(name); err == nil {
		err = rerr
	}
	return err
}

// List implements storage.Lister. Entries whose names are not objects of
// the layout are skipped.
func (b *Backend) List(ctx context.Context, fn func(storage.Info) error) error {
	for _, alg := range []identity.Algorithm{identity.BLAKE3, identity.SHA256} {
		err := b.walk(ctx, string(alg), 0, func(rel string, fi fs.FileInfo) error {
			addr, err := identity.Parse(string(alg) + ":" + fi.Name())
			if err != nil {
				return nil
			}
			if p, _ := objectPath(addr); p != rel || !fi.Mode().IsRegular() {
				return nil
			}
			return fn(storage.Info{Address: addr, Size: fi.Size()})
		})
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return b.err("list", identity.Digest{}, err)
		}
	}
	return nil
}

// walk calls fn for every entry three levels below dir (the objects of one
// algorithm), never following symlinks.
func (b *Backend) walk(ctx context.Context, dir string, depth int, fn func(rel string, fi fs.FileInfo) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	d, err := b.root.Open(dir)
	if err != nil {
		return err
	}
	entries, err := d.ReadDir(-1)
	d.Close()
	if err != nil {
		return err
	}
	for _, e := range entries {
		rel := filepath.Join(dir, e.Name())
		if depth < 2 {
			if e.IsDir() && e.Type()&fs.ModeSymlink == 0 {
				if err := b.walk(ctx, rel, depth+1, fn); err != nil {
					return err
				}
			}
			continue
		}
		fi, err := e.Info()
		if err != nil {
			continue
		}
		if err := fn(rel, fi); err != nil {
			return err
		}
	}
	return nil
}

// ListIncomplete implements storage.IncompleteLister: the temporary files.
func (b *Backend) ListIncomplete(ctx context.Context, fn func(name string) error) error {
	d, err := b.root.Open(tmpDir)
	if err != nil {
		return b.err("list", identity.Digest{}, err)
	}
	names, err := d.Readdirnames(-1)
	d.Close()
	if err != nil {
		return b.err("list", identity.Digest{}, err)
	}
	for _, n := range names {
		if err := fn(path.Join(tmpDir, n)); err != nil {
			return err
		}
	}
	return nil
}
