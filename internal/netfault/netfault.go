// Package netfault is a loopback TCP proxy for fault tests: it forwards
// connections to a server until it is switched off, and then cuts every
// open connection and refuses new ones, as a server that stopped (or a
// network that failed) would.
package netfault

import (
	"io"
	"net"
	"sync"
	"testing"
)

// Proxy forwards TCP connections from Addr to its target while it is up.
type Proxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	down   bool
	conns  []net.Conn
}

// Start listens on a free loopback port and forwards to target
// (host:port) until the test ends.
func Start(t testing.TB, target string) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{ln: ln, target: target}
	t.Cleanup(func() { ln.Close(); p.Set(true) })
	go p.serve()
	return p
}

// Addr is the host:port clients connect to instead of the target's.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Set switches the proxy off (down: every open connection is closed and new
// ones are closed at once) or on again.
func (p *Proxy) Set(down bool) {
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

func (p *Proxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		if p.down {
			p.mu.Unlock()
			c.Close()
			continue
		}
		s, err := net.Dial("tcp", p.target)
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
}
