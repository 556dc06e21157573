package oci

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
)

// LayoutWriter writes an OCI image layout: blobs, then the index.
type LayoutWriter interface {
	// WriteBlob writes desc's blob from r, verified while written (see
	// Verify): bytes that do not match desc are an error wrapping
	// ErrDigestMismatch and leave no blob behind where the writer can
	// undo it. A blob already written is not written again (r is not
	// read). Whether WriteBlob may be called concurrently is the
	// implementation's to say.
	WriteBlob(ctx context.Context, desc v1.Descriptor, r io.Reader) error
	// Commit writes index.json naming the manifests, each with its
	// org.opencontainers.image.ref.name annotation if it has one, and
	// completes the layout.
	Commit(ctx context.Context, manifests []v1.Descriptor) error
}

// DirWriter writes a layout into a directory. Blobs are written to a
// temporary file and renamed into place once verified; index.json too,
// last. Into a directory that already holds a layout it adds: existing
// blobs are kept, and Commit replaces only the index entries whose ref.name
// it writes. WriteBlob may be called concurrently.
type DirWriter struct {
	dir string
	old v1.Index
}

// NewDirWriter prepares dir (created if missing) for a layout. A directory
// that is not empty must already be an OCI image layout.
func NewDirWriter(dir string) (*DirWriter, error) {
	w := &DirWriter{dir: dir, old: v1.Index{Manifests: []v1.Descriptor{}}}
	w.old.SchemaVersion = 2
	w.old.MediaType = v1.MediaTypeImageIndex
	if entries, err := os.ReadDir(dir); err == nil && len(entries) > 0 {
		l, err := OpenLayout(os.DirFS(dir))
		if err != nil {
			return nil, fmt.Errorf("oci: %s is not empty and not a layout to add to: %w", dir, err)
		}
		w.old = l.Index
	} else if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("oci: %w", err)
	}
	for _, d := range []string{dir, filepath.Join(dir, v1.ImageBlobsDir)} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("oci: %w", err)
		}
	}
	if err := writeFileAtomic(filepath.Join(dir, v1.ImageLayoutFile), layoutHeader()); err != nil {
		return nil, err
	}
	return w, nil
}

// WriteBlob implements LayoutWriter. A blob already present with desc's
// size is taken as written (blobs are named by their digest).
func (w *DirWriter) WriteBlob(ctx context.Context, desc v1.Descriptor, r io.Reader) error {
	if err := CheckDigest(desc.Digest); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	dst := filepath.Join(w.dir, filepath.FromSlash(BlobPath(desc.Digest)))
	if fi, err := os.Stat(dst); err == nil && fi.Mode().IsRegular() && fi.Size() == desc.Size {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return fmt.Errorf("oci: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(dst), ".tmp-"+desc.Digest.Encoded()[:12]+"-*")
	if err != nil {
		return fmt.Errorf("oci: %w", err)
	}
	defer os.Remove(tmp.Name()) // no-op once renamed
	_, err = io.Copy(tmp, ctxReader{ctx, Verify(r, desc)})
	if err = errors.Join(err, tmp.Chmod(0o644), tmp.Close()); err != nil {
		return fmt.Errorf("oci: write blob %s: %w", desc.Digest, err)
	}
	if err := os.Rename(tmp.Name(), dst); err != nil {
		return fmt.Errorf("oci: %w", err)
	}
	return nil
}

// Commit implements LayoutWriter: it writes index.json (canonical JSON,
// manifests with the same ref.name as one of the new ones replaced).
func (w *DirWriter) Commit(ctx context.Context, manifests []v1.Descriptor) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	b, err := Canonical(mergeIndex(w.old, manifests))
	if err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(w.dir, v1.ImageIndexFile), b)
}

// mergeIndex returns old with the manifests added: an old entry with the
// ref.name of a new one, or the same digest and no name, is dropped.
func mergeIndex(old v1.Index, manifests []v1.Descriptor) v1.Index {
	drop := map[string]bool{}
	for _, m := range manifests {
		drop[m.Annotations[v1.AnnotationRefName]+"\x00"+m.Digest.String()] = true
		if n := m.Annotations[v1.AnnotationRefName]; n != "" {
			drop[n] = true
		}
	}
	out := old
	out.Manifests = []v1.Descriptor{}
	for _, m := range old.Manifests {
		n := m.Annotations[v1.AnnotationRefName]
		if (n != "" && drop[n]) || drop[n+"\x00"+m.Digest.String()] {
			continue
		}
		out.Manifests = append(out.Manifests, m)
	}
	out.Manifests = append(out.Manifests, manifests...)
	return out
}

func writeFileAtomic(name string, b []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(name), "."+filepath.Base(name)+".tmp-*")
	if err != nil {
		return fmt.Errorf("oci: %w", err)
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.Write(b)
	if err = errors.Join(err, tmp.Chmod(0o644), tmp.Sync(), tmp.Close()); err != nil {
		return fmt.Errorf("oci: write %s: %w", name, err)
	}
	if err := os.Rename(tmp.Name(), name); err != nil {
		return fmt.Errorf("oci: %w", err)
	}
	return nil
}

// ctxReader stops a copy once ctx is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// TarWriter writes a layout as a tar stream: oci-layout, the blobs as they
// come, index.json last. Entries are reproducible: mode 0644 (directories
// 0755), owner 0:0, modification time the Unix epoch. A blob whose bytes
// do not match its descriptor cannot be taken back from a stream: WriteBlob
// fails and the stream must be discarded. WriteBlob must not be called
// concurrently.
type TarWriter struct {
	tw      *tar.Writer
	started bool
	written map[digest.Digest]bool
	dirs    map[string]bool
}

// NewTarWriter returns a TarWriter on w. Commit flushes the tar but does
// not close w.
func NewTarWriter(w io.Writer) *TarWriter {
	return &TarWriter{tw: tar.NewWriter(w), written: map[digest.Digest]bool{}, dirs: map[string]bool{}}
}

var epoch = time.Unix(0, 0).UTC()

func (w *TarWriter) start() error {
	if w.started {
		return nil
	}
	w.started = true
	hdr := layoutHeader()
	if err := w.tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: v1.ImageLayoutFile, Size: int64(len(hdr)), Mode: 0o644, ModTime: epoch}); err != nil {
		return fmt.Errorf("oci: tar: %w", err)
	}
	if _, err := w.tw.Write(hdr); err != nil {
		return fmt.Errorf("oci: tar: %w", err)
	}
	return w.dir(v1.ImageBlobsDir + "/")
}

func (w *TarWriter) dir(name string) error {
	if w.dirs[name] {
		return nil
	}
	w.dirs[name] = true
	if err := w.tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: name, Mode: 0o755, ModTime: epoch}); err != nil {
		return fmt.Errorf("oci: tar: %w", err)
	}
	return nil
}

// WriteBlob implements LayoutWriter.
func (w *TarWriter) WriteBlob(ctx context.Context, desc v1.Descriptor, r io.Reader) error {
	if err := CheckDigest(desc.Digest); err != nil {
		return err
	}
	if w.written[desc.Digest] {
		return nil
	}
	if err := w.start(); err != nil {
		return err
	}
	if err := w.dir(v1.ImageBlobsDir + "/" + desc.Digest.Algorithm().String() + "/"); err != nil {
		return err
	}
	if err := w.tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: BlobPath(desc.Digest), Size: desc.Size, Mode: 0o644, ModTime: epoch}); err != nil {
		return fmt.Errorf("oci: tar: %w", err)
	}
	if _, err := io.Copy(w.tw, ctxReader{ctx, Verify(r, desc)}); err != nil {
		return fmt.Errorf("oci: write blob %s: %w", desc.Digest, err)
	}
	w.written[desc.Digest] = true
	return nil
}

// Commit implements LayoutWriter.
func (w *TarWriter) Commit(ctx context.Context, manifests []v1.Descriptor) error {
	if err := w.start(); err != nil {
		return err
	}
	x := v1.Index{MediaType: v1.MediaTypeImageIndex, Manifests: append([]v1.Descriptor{}, manifests...)}
	x.SchemaVersion = 2
	b, err := Canonical(x)
	if err != nil {
		return err
	}
	if err := w.tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: v1.ImageIndexFile, Size: int64(len(b)), Mode: 0o644, ModTime: epoch}); err != nil {
		return fmt.Errorf("oci: tar: %w", err)
	}
	if _, err := w.tw.Write(b); err != nil {
		return fmt.Errorf("oci: tar: %w", err)
	}
	if err := w.tw.Close(); err != nil {
		return fmt.Errorf("oci: tar: %w", err)
	}
	return nil
}
