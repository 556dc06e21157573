// Command embed shows artifact-store used as a library: no tool, no server.
// It opens an embedded store in a directory, ingests three files into a
// package, finalises it, reads the manifest and the files back and checks
// their digests, tails the log, and proves a replay rebuilds identical views.
//
//	go run ./examples/embed DIR
package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/artifactstore/artifact-store/pkg/dataplane"
	"github.com/artifactstore/artifact-store/pkg/db"
	"github.com/artifactstore/artifact-store/pkg/identity"
	"github.com/artifactstore/artifact-store/pkg/manifest"
	"github.com/artifactstore/artifact-store/pkg/ref"
	"github.com/artifactstore/artifact-store/pkg/registry"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: embed DIR")
		os.Exit(2)
	}
	if err := run(context.Background(), os.Args[1]); err != nil {
		fmt.Fprintln(os.Stderr, "embed:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, dir string) error {
	d, err := db.Open(ctx, "sqlite:"+filepath.Join(dir, "store.db"))
	if err != nil {
		return err
	}
	defer d.Close()
	dp, closeDP, err := dataplane.OpenLocal("local", filepath.Join(dir, "objects"), false)
	if err != nil {
		return err
	}
	defer closeDP()
	reg := registry.New(d, dp, registry.Options{Actor: "embed-example"})

	ref := ref.Version("embedded", "1.0.0")
	if err := reg.CreatePackage(ctx, ref, registry.CreateOptions{}); err != nil {
		return err
	}
	files := map[string]string{"a.txt": "alpha\n", "dir/b.txt": "bravo\n", "dir/c.bin": "\x00\x01\x02"}
	for path, body := range files {
		if _, err := reg.IngestFile(ctx, ref, path, bytes.NewReader([]byte(body)), registry.IngestOptions{}); err != nil {
			return err
		}
	}
	mb, err := reg.FinalizePackage(ctx, ref, registry.FinalizeOptions{})
	if err != nil {
		return err
	}
	m, err := manifest.Decode(mb)
	if err != nil {
		return err
	}
	fmt.Println("manifest", manifest.DigestOf(mb), "files", len(m.Files))
	for _, f := range m.Files {
		rc, _, err := reg.GetFile(ctx, ref, f.Path, 0, -1)
		if err != nil {
			return err
		}
		sum, err := identity.SumReader(rc)
		rc.Close()
		if err != nil {
			return err
		}
		if sum != f.Sum() {
			return fmt.Errorf("%s: read back %v, manifest says %v", f.Path, sum, f.Sum())
		}
		fmt.Println("verified", f.Path, f.ContentAddress)
	}
	n := 0
	for ev, err := range reg.Log().Scan(ctx, 0) {
		if err != nil {
			return err
		}
		n++
		fmt.Println("event", ev.Seq, ev.Type)
	}
	res, err := reg.Replay(ctx, true)
	if err != nil {
		return err
	}
	if res.Before != res.After {
		return fmt.Errorf("replay differs: %v vs %v", res.Before, res.After)
	}
	fmt.Println("replay identical", res.After, "events", n)
	return nil
}
