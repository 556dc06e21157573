package registry

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
	"strings"
	"sync"

	"golang.org/x/sync/errgroup"

	"github.com/artifactstore/artifact-store/pkg/ref"
)

// ErrOutputExists is wrapped by FetchPackage's error when a file it would
// write is already there and Overwrite is off (nothing was written).
var ErrOutputExists = errors.New("registry: output file exists")

// FetchOptions tune FetchPackage.
type FetchOptions struct {
	Overwrite bool // replace existing regular files (never a directory)
	Workers   int  // files written at once (default 4)
	// Progress, if set, is called after each file is published.
	Progress func(f File)
}

// FetchResult reports a fetch.
type FetchResult struct {
	Ref   ref.Ref // the version the reference resolved to
	Files int
	Bytes uint64
}

// FetchPackage writes every file of the package rf names (a version, tag or
// manifest digest) under dir, at its package path, creating dir and the
// directories below it. Each file is verified while it is written (the
// bytes must hash to its address, see OpenObject) into a temporary file
// beside its target and published, mode 0644, only when whole: a failure
// leaves no partial file, only the files already published. Writes go
// through an os.Root at dir, so no path (nor a symbolic link planted in
// dir) can reach outside it. Without Overwrite, a target that exists is
// refused with ErrOutputExists before anything is written, and a target
// that appears meanwhile is never replaced. The manifest records no file
// modes, so none are restored (docs/adr/0013-fetch-package.md).
func (r *Registry) FetchPackage(ctx context.Context, rf ref.Ref, dir string, opts FetchOptions) (FetchResult, error) {
	p, err := r.GetPackage(ctx, rf)
	if err != nil {
		return FetchResult{}, err
	}
	res := FetchResult{Ref: p.Ref}
	files, err := r.packageFiles(ctx, p.Ref)
	if err != nil {
		return res, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return res, fmt.Errorf("registry: fetch into %s: %w", dir, err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return res, fmt.Errorf("registry: fetch into %s: %w", dir, err)
	}
	defer root.Close()
	var exist []string
	for _, f := range files {
		fi, err := root.Lstat(f.Path)
		switch {
		case err == nil && fi.IsDir():
			return res, fmt.Errorf("%w: %s: %s is a directory", ErrOutputExists, dir, f.Path)
		case err == nil && !opts.Overwrite:
			exist = append(exist, f.Path)
		}
	}
	if len(exist) > 0 {
		more := ""
		if len(exist) > maxNearby {
			more, exist = fmt.Sprintf(" and %d more", len(exist)-maxNearby), exist[:maxNearby]
		}
		return res, fmt.Errorf("%w: %s already has %s%s (overwrite to replace)", ErrOutputExists, dir, strings.Join(exist, ", "), more)
	}
	workers := opts.Workers
	if workers == 0 {
		workers = 4
	}
	workers = max(workers, 1)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(workers)
	var mu sync.Mutex
	for _, f := range files {
		if gctx.Err() != nil {
			break
		}
		g.Go(func() error {
			if err := r.fetchFile(gctx, root, f, opts.Overwrite); err != nil {
				return fmt.Errorf("registry: fetch %s of %s into %s: %w", f.Path, p.Ref, dir, err)
			}
			mu.Lock()
			defer mu.Unlock()
			res.Files++
			res.Bytes += f.Size
			if opts.Progress != nil {
				opts.Progress(f)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return res, err
	}
	return res, ctx.Err()
}

// fetchFile writes one file through a temporary beside it and publishes it.
func (r *Registry) fetchFile(ctx context.Context, root *os.Root, f File, overwrite bool) (err error) {
	if d := path.Dir(f.Path); d != "." {
		if err := root.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	var rnd [8]byte
	rand.Read(rnd[:])
	tmp := path.Join(path.Dir(f.Path), ".as-get-"+hex.EncodeToString(rnd[:])+".tmp")
	out, err := root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			out.Close()
			root.Remove(tmp)
		}
	}()
	rc, _, err := r.OpenObject(ctx, f.ContentAddress, 0, -1)
	if err != nil {
		return err
	}
	defer rc.Close()
	if _, err = io.Copy(out, rc); err != nil {
		return err
	}
	if err = out.Chmod(0o644); err != nil { // whatever the umask
		return err
	}
	if err = out.Close(); err != nil {
		return err
	}
	if overwrite {
		return root.Rename(tmp, f.Path)
	}
	// A hard link never replaces what appeared since the check.
	if err = root.Link(tmp, f.Path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			err = fmt.Errorf("%w: %s appeared while fetching", ErrOutputExists, f.Path)
		}
		return err
	}
	return root.Remove(tmp)
}
