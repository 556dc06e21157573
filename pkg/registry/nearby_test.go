package registry

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/artifactstore/artifact-store/pkg/db"
	"github.com/artifactstore/artifact-store/pkg/db/dbtest"
	"github.com/artifactstore/artifact-store/pkg/ref"
)

// TestNotFoundNamesNearby (issue 21): a missing version names the live
// versions of its name in natural order, a missing name says so, and a
// missing path names the files of its directory.
func TestNotFoundNamesNearby(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		r := newRegistry(t, d)
		for _, v := range []string{"1.10.0", "1.2.3", "1.9.0"} {
			p := ref.Version("app", v)
			if err := r.CreatePackage(ctx, p, CreateOptions{}); err != nil {
				t.Fatal(err)
			}
			for _, f := range []string{"bin/app", "bin/tool", "README"} {
				if _, err := r.IngestFile(ctx, p, f, bytes.NewReader([]byte(f)), IngestOptions{}); err != nil {
					t.Fatal(err)
				}
			}
		}
		for _, c := range []struct {
			err  error
			want string
		}{
			{get(r, ref.Version("app", "1.2.4")), "no package app@1.2.4; app has 1.2.3, 1.9.0, 1.10.0"},
			{get(r, ref.Version("ap", "1.2.3")), "no package ap@1.2.3; no package is named ap"},
			{getFile(r, ref.Version("app", "1.2.3"), "bin/ap"), "no file bin/ap in app@1.2.3; it has 3 files: bin/app, bin/tool"},
			{getFile(r, ref.Version("app", "1.2.3"), "doc/x"), "it has 3 files: README, bin/app, bin/tool"},
		} {
			if !errors.Is(c.err, ErrNotFound) || !strings.Contains(c.err.Error(), c.want) {
				t.Errorf("error %v; want ErrNotFound saying %q", c.err, c.want)
			}
		}
	})
}

func get(r *Registry, p ref.Ref) error {
	_, err := r.GetPackage(context.Background(), p)
	return err
}

func getFile(r *Registry, p ref.Ref, path string) error {
	rc, _, err := r.GetFile(context.Background(), p, path, 0, -1)
	if err == nil {
		rc.Close()
	}
	return err
}
