package oci

import (
	"archive/tar"
	"io"
	"io/fs"
	"path"
	"time"
)

// TarFS returns a read-only fs.FS over the regular files of the tar archive
// in r (size bytes), such as a layout that TarWriter or `oras` wrote. It
// reads the headers once; file contents are read in place when opened.
// Names are cleaned ("./index.json" is "index.json"); an entry that names a
// path outside the archive, or a file twice, is an error.
func TarFS(r io.ReaderAt, size int64) (fs.FS, error) {
	cr := &countingReader{r: io.NewSectionReader(r, 0, size)}
	tr := tar.NewReader(cr)
	t := tarFS{r: r, files: map[string]tarEntry{}}
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return t, nil
		}
		if err != nil {
			return nil, invalidf("tar: %v", err)
		}
		if hdr.Typeflag != tar.TypeReg {
			continue // directories are implied; links are not followed
		}
		name := path.Clean(hdr.Name)
		if !fs.ValidPath(name) {
			return nil, invalidf("tar: entry %q is not a path inside the archive", hdr.Name)
		}
		if _, dup := t.files[name]; dup {
			return nil, invalidf("tar: %s appears twice", name)
		}
		// tar.Reader has read exactly the header blocks: the data starts here.
		t.files[name] = tarEntry{off: cr.n, size: hdr.Size}
	}
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

type tarEntry struct{ off, size int64 }

type tarFS struct {
	r     io.ReaderAt
	files map[string]tarEntry
}

func (t tarFS) Open(name string) (fs.File, error) {
	e, ok := t.files[name]
	if !ok || !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	return &tarFile{SectionReader: io.NewSectionReader(t.r, e.off, e.size), info: tarInfo{name: path.Base(name), size: e.size}}, nil
}

func (t tarFS) Stat(name string) (fs.FileInfo, error) {
	f, err := t.Open(name)
	if err != nil {
		return nil, err
	}
	return f.Stat()
}

type tarFile struct {
	*io.SectionReader
	info tarInfo
}

func (f *tarFile) Stat() (fs.FileInfo, error) { return f.info, nil }
func (f *tarFile) Close() error               { return nil }

type tarInfo struct {
	name string
	size int64
}

func (i tarInfo) Name() string       { return i.name }
func (i tarInfo) Size() int64        { return i.size }
func (i tarInfo) Mode() fs.FileMode  { return 0o444 }
func (i tarInfo) ModTime() time.Time { return time.Time{} }
func (i tarInfo) IsDir() bool        { return false }
func (i tarInfo) Sys() any           { return nil }

var _ fs.StatFS = tarFS{}
