package ociserve

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/artifactstore/artifact-store/pkg/registry"
)

// uploads keeps the bytes of unfinished chunked uploads: one file per
// session, <dir>/<id>, appended to by each PATCH and fsynced before the
// answer, so an upload survives a restart of the server (its session is
// in the log; its offset is the file's size). Completing the upload
// streams the file once through the data plane, which hashes and stores
// it, then removes the file (docs/adr/0012). Requests on one session are
// serialised by a mutex in this process and by flock across processes on
// the host.
type uploads struct {
	dir   string
	mu    sync.Mutex
	locks map[string]*sync.Mutex
}

func newUploads(dir string) (*uploads, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("ociserve: upload directory: %w", err)
	}
	return &uploads{dir: dir, locks: map[string]*sync.Mutex{}}, nil
}

// path is the staging file of an upload; id is checked by the caller
// (registry.CheckUploadID: 32 hex digits), so it cannot leave dir.
func (u *uploads) path(id string) string { return filepath.Join(u.dir, id) }

// open opens (creating) the staging file of id, locked for this request.
func (u *uploads) open(id string) (*os.File, func(), error) {
	if err := registry.CheckUploadID(id); err != nil {
		return nil, nil, err
	}
	u.mu.Lock()
	m, ok := u.locks[id]
	if !ok {
		m = &sync.Mutex{}
		u.locks[id] = m
	}
	u.mu.Unlock()
	m.Lock()
	f, err := os.OpenFile(u.path(id), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		m.Unlock()
		return nil, nil, fmt.Errorf("ociserve: upload %s: %w", id, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		m.Unlock()
		return nil, nil, fmt.Errorf("ociserve: upload %s: lock: %w", id, err)
	}
	return f, func() { f.Close(); m.Unlock() }, nil
}

// removeStale deletes the staging files of sessions that are no longer
// open: a server killed between committing an upload's last PUT (or a
// cancel) and removing its file left it behind, and nothing else ever
// would (the collector cancels only open sessions). A file that appeared
// after the open sessions were listed (or within a second before: file
// times come from a coarser clock) is kept: its session may have started
// since. Files of open sessions are kept, so that their uploads
// resume.
func (u *uploads) removeStale(ctx context.Context, reg *registry.Registry) (int, error) {
	listed := time.Now().Add(-time.Second)
	open, err := reg.AbandonedOCIUploads(ctx, time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC))
	if err != nil {
		return 0, fmt.Errorf("ociserve: open uploads: %w", err)
	}
	keep := make(map[string]bool, len(open))
	for _, o := range open {
		keep[o.ID] = true
	}
	entries, err := os.ReadDir(u.dir)
	if err != nil {
		return 0, fmt.Errorf("ociserve: upload directory: %w", err)
	}
	n := 0
	for _, e := range entries {
		name := e.Name()
		if keep[name] || registry.CheckUploadID(name) != nil || !e.Type().IsRegular() {
			continue
		}
		if fi, err := e.Info(); err != nil || !fi.ModTime().Before(listed) {
			continue
		}
		if err := os.Remove(u.path(name)); err == nil {
			n++
		} else if !errors.Is(err, os.ErrNotExist) {
			return n, fmt.Errorf("ociserve: upload %s: %w", name, err)
		}
	}
	return n, nil
}

// remove deletes the staging file of a finished or cancelled upload.
func (u *uploads) remove(id string) error {
	u.mu.Lock()
	delete(u.locks, id)
	u.mu.Unlock()
	if err := os.Remove(u.path(id)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("ociserve: upload %s: %w", id, err)
	}
	return nil
}

// RemoveStaged deletes the staged bytes of upload id in dir: for the
// garbage collector, after it cancels an abandoned upload
// (registry.AbandonedOCIUploads).
func RemoveStaged(dir, id string) error {
	if err := registry.CheckUploadID(id); err != nil {
		return err
	}
	if err := os.Remove(filepath.Join(dir, id)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("ociserve: upload %s: %w", id, err)
	}
	return nil
}

func (s *Server) uploadLocation(w http.ResponseWriter, name, id string, size int64) {
	h := w.Header()
	h.Set("Location", "/v2/"+name+"/blobs/uploads/"+id)
	h.Set("Docker-Upload-UUID", id)
	h.Set("Range", rangeHeader(size))
}

// rangeHeader is the Range an upload session reports: the bytes received,
// inclusive ("0-0" when there are none, as other registries say).
func rangeHeader(size int64) string {
	return "0-" + itoa(max(size-1, 0))
}

// chunk returns the bytes of a PATCH or PUT body that extend an upload of
// size bytes. With a Content-Range, the chunk must start where the upload
// ends (else 416, with the session's Location and Range so the client can
// resume) and the reader yields exactly the bytes it announces (fewer is
// SIZE_INVALID when the body ends); want is their number, or -1 when the
// request does not say.
func chunk(r *http.Request, name, id string, size int64) (body io.Reader, want int64, err error) {
	cr := r.Header.Get("Content-Range")
	if cr == "" {
		return r.Body, r.ContentLength, nil
	}
	start, end, err := parseContentRange(cr)
	if err != nil {
		return nil, 0, newError(http.StatusBadRequest, CodeBlobUploadInvalid, err.Error())
	}
	if start != size {
		e := newError(http.StatusRequestedRangeNotSatisfiable, CodeBlobUploadInvalid,
			fmt.Sprintf("chunk starts at %d; the upload has %d bytes (chunks must arrive in order)", start, size))
		e.Header = http.Header{"Location": {"/v2/" + name + "/blobs/uploads/" + id}, "Range": {rangeHeader(size)}, "Docker-Upload-Uuid": {id}}
		return nil, 0, e
	}
	want = end - start + 1
	if r.ContentLength >= 0 && r.ContentLength != want {
		return nil, 0, newError(http.StatusBadRequest, CodeSizeInvalid,
			fmt.Sprintf("Content-Range announces %d bytes, Content-Length %d", want, r.ContentLength))
	}
	return &exactReader{r: io.LimitReader(r.Body, want), left: want}, want, nil
}

// exactReader reads a chunk whose length Content-Range announced; ending
// early is SIZE_INVALID.
type exactReader struct {
	r    io.Reader
	left int64
}

func (e *exactReader) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	e.left -= int64(n)
	if err == io.EOF && e.left > 0 {
		err = newError(http.StatusBadRequest, CodeSizeInvalid, fmt.Sprintf("chunk ended %d bytes short of its Content-Range", e.left))
	}
	return n, err
}

// appendChunk appends a request body (see chunk) to the staging file f
// and syncs it. A failed append leaves the file as it was.
func (s *Server) appendChunk(r *http.Request, name, id string, f *os.File) (int64, error) {
	fi, err := f.Stat()
	if err != nil {
		return 0, err
	}
	size := fi.Size()
	src, _, err := chunk(r, name, id, size)
	if err != nil {
		return size, err
	}
	if _, err := f.Seek(size, io.SeekStart); err != nil {
		return size, err
	}
	n, err := io.Copy(f, src)
	if err == nil {
		err = f.Sync()
	}
	if err != nil {
		f.Truncate(size)
		return size, err
	}
	return size + n, nil
}

func (s *Server) checkUpload(r *http.Request, q *request) error {
	if err := q.reg.CheckOCIUpload(r.Context(), q.name, q.arg); err != nil {
		if errors.Is(err, registry.ErrNotFound) {
			return newError(http.StatusNotFound, CodeBlobUploadUnknown, "no such upload in "+q.name)
		}
		return err
	}
	return nil
}

func (s *Server) startUpload(w http.ResponseWriter, r *http.Request, q *request) error {
	ctx := r.Context()
	v := r.URL.Query()
	if mount := v.Get("mount"); mount != "" {
		d, err := parseDigest(mount)
		if err != nil {
			return newError(http.StatusBadRequest, CodeDigestInvalid, err.Error())
		}
		from := v.Get("from")
		allowed := true
		if from != "" {
			if registry.CheckRepository(from) != nil {
				allowed = false
			} else if _, err := s.opts.Access.authorize(r, from, ScopeRead); err != nil {
				allowed = false // no read on the source: upload instead
			}
		}
		if allowed {
			b, err := q.reg.MountOCIBlob(ctx, q.name, d, from)
			if err == nil {
				return blobCreated(w, q.name, b.Digest)
			}
			// Nothing to mount, or its bytes are being collected: the
			// client uploads them instead (a session below).
			if !errors.Is(err, registry.ErrNotFound) && !errors.Is(err, registry.ErrCollecting) {
				return err
			}
		}
	} else if dg := v.Get("digest"); dg != "" {
		d, err := parseDigest(dg)
		if err != nil {
			return newError(http.StatusBadRequest, CodeDigestInvalid, err.Error())
		}
		b, err := q.reg.PutOCIBlob(ctx, q.name, d, r.Body, r.ContentLength, "")
		if err != nil {
			return toAPIError(err, CodeBlobUploadInvalid)
		}
		return blobCreated(w, q.name, b.Digest)
	}
	id, err := q.reg.StartOCIUpload(ctx, q.name)
	if err != nil {
		return err
	}
	_, unlock, err := s.uploads.open(id) // the empty staging file
	if err != nil {
		return err
	}
	unlock()
	s.uploadLocation(w, q.name, id, 0)
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusAccepted)
	return nil
}

func blobCreated(w http.ResponseWriter, name string, d fmt.Stringer) error {
	h := w.Header()
	h.Set("Location", "/v2/"+name+"/blobs/"+d.String())
	h.Set("Docker-Content-Digest", d.String())
	h.Set("Content-Length", "0")
	w.WriteHeader(http.StatusCreated)
	return nil
}

func (s *Server) uploadStatus(w http.ResponseWriter, r *http.Request, q *request) error {
	if err := s.checkUpload(r, q); err != nil {
		return err
	}
	f, unlock, err := s.uploads.open(q.arg)
	if err != nil {
		return err
	}
	defer unlock()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	s.uploadLocation(w, q.name, q.arg, fi.Size())
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) patchUpload(w http.ResponseWriter, r *http.Request, q *request) error {
	if err := s.checkUpload(r, q); err != nil {
		return err
	}
	f, unlock, err := s.uploads.open(q.arg)
	if err != nil {
		return err
	}
	defer unlock()
	size, err := s.appendChunk(r, q.name, q.arg, f)
	if err != nil {
		return err
	}
	s.uploadLocation(w, q.name, q.arg, size)
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusAccepted)
	return nil
}

func (s *Server) putUpload(w http.ResponseWriter, r *http.Request, q *request) error {
	if err := s.checkUpload(r, q); err != nil {
		return err
	}
	dg := r.URL.Query().Get("digest")
	d, err := parseDigest(dg)
	if err != nil {
		return newError(http.StatusBadRequest, CodeDigestInvalid, "PUT needs ?digest=: "+err.Error())
	}
	f, unlock, err := s.uploads.open(q.arg)
	if err != nil {
		return err
	}
	defer unlock()
	// The last chunk streams straight into the store behind the staged
	// bytes: it is never staged, so a monolithic PUT writes the blob once.
	// A failed PUT leaves the staged upload as it was.
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	staged := fi.Size()
	body, want, err := chunk(r, q.name, q.arg, staged)
	if err != nil {
		return err
	}
	size := int64(-1)
	if want >= 0 {
		size = staged + want
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	b, err := q.reg.PutOCIBlob(r.Context(), q.name, d, io.MultiReader(io.LimitReader(f, staged), body), size, q.arg)
	if err != nil {
		if errors.Is(err, registry.ErrNotFound) {
			return newError(http.StatusNotFound, CodeBlobUploadUnknown, err.Error())
		}
		return toAPIError(err, CodeBlobUploadInvalid)
	}
	if err := s.uploads.remove(q.arg); err != nil {
		s.opts.Log.Warn("staged upload not removed", "upload", q.arg, "err", err)
	}
	return blobCreated(w, q.name, b.Digest)
}

func (s *Server) cancelUpload(w http.ResponseWriter, r *http.Request, q *request) error {
	if err := s.checkUpload(r, q); err != nil {
		return err
	}
	if err := q.reg.CancelOCIUpload(r.Context(), q.name, q.arg, "cancelled by the client"); err != nil {
		return err
	}
	if err := s.uploads.remove(q.arg); err != nil {
		s.opts.Log.Warn("staged upload not removed", "upload", q.arg, "err", err)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
