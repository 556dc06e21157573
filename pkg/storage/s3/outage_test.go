package s3_test

import (
	"errors"
	"io"
	"net"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/artifactstore/artifact-store/pkg/storage"
	"github.com/artifactstore/artifact-store/pkg/storage/s3"
	"github.com/artifactstore/artifact-store/pkg/storage/s3/s3test"
)

// switchProxy forwards TCP connections to a server until it is switched
// off: then it cuts every open connection and refuses new ones, as a
// server that stopped would.
type switchProxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	down   bool
	conns  []net.Conn
}

func newSwitchProxy(t *testing.T, target string) *switchProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &switchProxy{ln: ln, target: target}
	t.Cleanup(func() { ln.Close(); p.set(true) })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.mu.Lock()
			if p.down {
				p.mu.Unlock()
				c.Close()
				continue
			}
			s, err := net.Dial("tcp", target)
			if err != nil {
				p.mu.Unlock()
				c.Close()
				continue
			}
			p.conns = append(p.conns, c, s)
			p.mu.Unlock()
			go func() { io.Copy(s, c); s.Close() }()
			go func() { io.Copy(c, s); c.Close() }()
		}
	}()
	return p
}

func (p *switchProxy) set(down bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = down
	if down {
		for _, c := range p.conns {
			c.Close()
		}
		p.conns = nil
	}
}

// TestServerStopsMidUpload: the server goes away in the middle of a
// multipart put. The put fails with a clear error, nothing is published,
// the upload that could not be aborted stays listed, and once the server
// is back CleanStale removes it.
func TestServerStopsMidUpload(t *testing.T) {
	srv := s3test.Start(t)
	loc := srv.NewBucket(t)
	u, _ := url.Parse(srv.Endpoint)
	proxy := newSwitchProxy(t, u.Host)
	opts := srv.Options(loc)
	opts.Endpoint = "http://" + proxy.ln.Addr().String()
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
	proxy.set(true)
	_, werr := w.Write(body[6<<20:])
	cerr := w.Commit(t.Context(), addrOf(body))
	if cerr == nil {
		t.Fatal("Commit succeeded with the server gone")
	}
	if werr == nil && !errors.Is(cerr, storage.ErrUnavailable) {
		t.Errorf("Commit: %v, want ErrUnavailable", cerr)
	}
	t.Logf("Write: %v\nCommit: %v", werr, cerr)
	proxy.set(false)
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
