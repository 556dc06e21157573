package s3_test

import (
	"errors"
	"net/url"
	"testing"
	"time"

	"github.com/artifactstore/artifact-store/internal/netfault"
	"github.com/artifactstore/artifact-store/pkg/storage"
	"github.com/artifactstore/artifact-store/pkg/storage/s3"
	"github.com/artifactstore/artifact-store/pkg/storage/s3/s3test"
)

// TestServerStopsMidUpload: the server goes away in the middle of a
// multipart put. The put fails with a clear error, nothing is published,
// the upload that could not be aborted stays listed, and once the server
// is back CleanStale removes it.
func TestServerStopsMidUpload(t *testing.T) {
	srv := s3test.Start(t)
	loc := srv.NewBucket(t)
	u, _ := url.Parse(srv.Endpoint)
	proxy := netfault.Start(t, u.Host)
	opts := srv.Options(loc)
	opts.Endpoint = "http://" + proxy.Addr()
	opts.PartSize = s3.MinPartSize
	opts.MaxBackoff = time.Millisecond
	rt := &recorder{}
	opts.HTTPClient = newHTTPClient(rt)
	b, err := s3.Open(t.Context(), opts)
	if err != nil {
		t.Fatal(err)
	}
	body := data(20, 16<<20)
	w, err := b.Create(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer w.Cancel(t.Context())
	if _, err := w.Write(body[:6<<20]); err != nil {
		t.Fatal(err)
	}
	proxy.Set(true)
	_, werr := w.Write(body[6<<20:])
	cerr := w.Commit(t.Context(), addrOf(body))
	if cerr == nil {
		t.Fatal("Commit succeeded with the server gone")
	}
	if werr == nil && !errors.Is(cerr, storage.ErrUnavailable) {
		t.Errorf("Commit: %v, want ErrUnavailable", cerr)
	}
	t.Logf("Write: %v\nCommit: %v", werr, cerr)
	proxy.Set(false)
	if _, err := b.Head(t.Context(), addrOf(body)); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Head after the failed put: %v, want ErrNotFound", err)
	}
	var names []string
	b.ListIncomplete(t.Context(), func(n string) error { names = append(names, n); return nil })
	if len(names) == 0 {
		t.Error("the upload that could not be aborted is not listed")
	}
	if _, err := b.CleanStale(t.Context(), 0); err != nil {
		t.Fatal(err)
	}
	if left := incomplete(t, srv, loc, rt); len(left) > 0 {
		t.Errorf("after CleanStale: %q", left)
	}
}
