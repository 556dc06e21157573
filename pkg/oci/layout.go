package oci

import (
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"path"
	"sort"

	"github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
)

// An OCI image layout (image-spec v1.1 image-layout.md) is a tree:
//
//	oci-layout                  {"imageLayoutVersion":"1.0.0"}
//	index.json                  an image index; each manifest descriptor may
//	                            carry org.opencontainers.image.ref.name
//	blobs/<alg>/<encoded>       every blob, named by its digest
//
// BlobPath is the one function that maps a digest to its place.

// BlobPath returns the slash-separated path of d's blob in a layout. d must
// have passed CheckDigest (its encoded part is then lowercase hex).
func BlobPath(d digest.Digest) string {
	return path.Join(v1.ImageBlobsDir, d.Algorithm().String(), d.Encoded())
}

// Layout is an OCI image layout opened for reading from any fs.FS (a
// directory with os.DirFS, a tar file with TarFS).
type Layout struct {
	fsys  fs.FS
	Index v1.Index // index.json, parsed by ParseIndex
}

// OpenLayout checks the layout's oci-layout file (imageLayoutVersion
// 1.0.0) and reads its index.json.
func OpenLayout(fsys fs.FS) (*Layout, error) {
	b, err := readSmall(fsys, v1.ImageLayoutFile, MaxManifestBytes)
	if err != nil {
		return nil, fmt.Errorf("oci: not an OCI image layout: %w", err)
	}
	var hdr v1.ImageLayout
	if err := strictUnmarshal(b, v1.ImageLayoutFile, &hdr); err != nil {
		return nil, err
	}
	if hdr.Version != v1.ImageLayoutVersion {
		return nil, invalidf("%s: imageLayoutVersion %q, want %q", v1.ImageLayoutFile, hdr.Version, v1.ImageLayoutVersion)
	}
	b, err = readSmall(fsys, v1.ImageIndexFile, MaxManifestBytes)
	if err != nil {
		return nil, fmt.Errorf("oci: layout: %w", err)
	}
	x, err := ParseIndex(b)
	if err != nil {
		return nil, err
	}
	return &Layout{fsys: fsys, Index: x}, nil
}

// readSmall reads a whole file of at most max bytes; a longer one is
// ErrInvalid, a missing one ErrNotFound.
func readSmall(fsys fs.FS, name string, max int64) ([]byte, error) {
	f, err := fsys.Open(name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s is missing", ErrNotFound, name)
	}
	if err != nil {
		return nil, fmt.Errorf("oci: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, fmt.Errorf("oci: read %s: %w", name, err)
	}
	if int64(len(b)) > max {
		return nil, invalidf("%s is larger than %d bytes", name, max)
	}
	return b, nil
}

// RefNames returns the org.opencontainers.image.ref.name values of the
// index's manifests, sorted.
func (l *Layout) RefNames() []string {
	var out []string
	for _, d := range l.Index.Manifests {
		if n, ok := d.Annotations[v1.AnnotationRefName]; ok {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out
}

// Find returns the index entry whose ref.name is name; with name "" the
// index must hold exactly one entry, which is returned.
func (l *Layout) Find(name string) (v1.Descriptor, error) {
	if name == "" {
		if len(l.Index.Manifests) != 1 {
			return v1.Descriptor{}, fmt.Errorf("%w: the layout's index holds %d manifests; name one (DIR:REF; refs: %q)", ErrInvalid, len(l.Index.Manifests), l.RefNames())
		}
		return l.Index.Manifests[0], nil
	}
	var found []v1.Descriptor
	for _, d := range l.Index.Manifests {
		if d.Annotations[v1.AnnotationRefName] == name {
			found = append(found, d)
		}
	}
	switch len(found) {
	case 0:
		return v1.Descriptor{}, fmt.Errorf("%w: no manifest named %q in the layout (refs: %q)", ErrNotFound, name, l.RefNames())
	case 1:
		return found[0], nil
	}
	return v1.Descriptor{}, invalidf("index.json: %d manifests are named %q", len(found), name)
}

// Stat checks that desc's blob is present and of desc's size, without
// reading it.
func (l *Layout) Stat(desc v1.Descriptor) error {
	if err := CheckDigest(desc.Digest); err != nil {
		return err
	}
	fi, err := fs.Stat(l.fsys, BlobPath(desc.Digest))
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%w: blob %s is missing from the layout", ErrNotFound, desc.Digest)
	}
	if err != nil {
		return fmt.Errorf("oci: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return invalidf("blob %s is not a regular file", desc.Digest)
	}
	if fi.Size() != desc.Size {
		return fmt.Errorf("%w: blob %s holds %d bytes, its descriptor says %d", ErrDigestMismatch, desc.Digest, fi.Size(), desc.Size)
	}
	return nil
}

// OpenRaw opens desc's blob without verifying it (for a consumer that
// verifies the digest itself, such as the data plane's Expect).
func (l *Layout) OpenRaw(desc v1.Descriptor) (io.ReadCloser, error) {
	if err := CheckDigest(desc.Digest); err != nil {
		return nil, err
	}
	f, err := l.fsys.Open(BlobPath(desc.Digest))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: blob %s is missing from the layout", ErrNotFound, desc.Digest)
	}
	if err != nil {
		return nil, fmt.Errorf("oci: %w", err)
	}
	return f, nil
}

// Open opens desc's blob for reading, verified while read: a Read returns
// an error wrapping ErrDigestMismatch instead of io.EOF if the bytes do not
// match desc's size and digest (or as soon as there are too many).
func (l *Layout) Open(desc v1.Descriptor) (io.ReadCloser, error) {
	f, err := l.OpenRaw(desc)
	if err != nil {
		return nil, err
	}
	return struct {
		io.Reader
		io.Closer
	}{Verify(f, desc), f}, nil
}

// ReadBlob reads desc's whole blob, verified, refusing one larger than max.
func (l *Layout) ReadBlob(desc v1.Descriptor, max int64) ([]byte, error) {
	if desc.Size > max {
		return nil, invalidf("blob %s: %d bytes, more than the %d allowed", desc.Digest, desc.Size, max)
	}
	rc, err := l.Open(desc)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	b := make([]byte, 0, desc.Size)
	w := &sliceWriter{b: b}
	if _, err := io.Copy(w, rc); err != nil {
		return nil, err
	}
	return w.b, nil
}

type sliceWriter struct{ b []byte }

func (w *sliceWriter) Write(p []byte) (int, error) { w.b = append(w.b, p...); return len(p), nil }

// Verify returns a reader of r that checks desc while read: more bytes
// than desc.Size, or at EOF a size or digest that differs from desc's, is
// an error wrapping ErrDigestMismatch. desc's digest must have passed
// CheckDigest.
func Verify(r io.Reader, desc v1.Descriptor) io.Reader {
	return &verifier{r: r, h: desc.Digest.Algorithm().Hash(), desc: desc}
}

type verifier struct {
	r    io.Reader
	h    hash.Hash
	desc v1.Descriptor
	n    int64
	err  error
}

func (v *verifier) Read(p []byte) (int, error) {
	if v.err != nil {
		return 0, v.err
	}
	n, err := v.r.Read(p)
	v.h.Write(p[:n])
	v.n += int64(n)
	if v.n > v.desc.Size {
		v.err = fmt.Errorf("%w: %s has more than its %d bytes", ErrDigestMismatch, v.desc.Digest, v.desc.Size)
		return n, v.err
	}
	if err == io.EOF {
		switch got := digest.NewDigest(v.desc.Digest.Algorithm(), v.h); {
		case v.n != v.desc.Size:
			v.err = fmt.Errorf("%w: %s has %d bytes, its descriptor says %d", ErrDigestMismatch, v.desc.Digest, v.n, v.desc.Size)
		case got != v.desc.Digest:
			v.err = fmt.Errorf("%w: bytes named %s hash to %s", ErrDigestMismatch, v.desc.Digest, got)
		default:
			v.err = io.EOF
		}
		return n, v.err
	}
	return n, err
}

// layoutHeader is the oci-layout file's content.
func layoutHeader() []byte {
	b, _ := json.Marshal(v1.ImageLayout{Version: v1.ImageLayoutVersion})
	return b
}
