package db_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/artifactstore/artifact-store/pkg/db"
	"github.com/artifactstore/artifact-store/pkg/db/dbtest"
)

// silentServer accepts TCP connections and never answers, as a stopped
// PostgreSQL process does (the kernel still completes the handshake).
func silentServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { c.Close() })
		}
	}()
	return ln.Addr().String()
}

// TestConnectTimeout (issue 14 item 11): opening a PostgreSQL URL whose
// server never answers fails with ErrUnavailable within the connect
// timeout instead of hanging.
func TestConnectTimeout(t *testing.T) {
	addr := silentServer(t)
	for _, tc := range []struct {
		query string
		max   time.Duration
	}{
		{"?sslmode=disable&connect_timeout=1", 5 * time.Second},
		{"?sslmode=disable", db.DefaultConnectTimeout + 5*time.Second},
	} {
		start := time.Now()
		d, err := db.Open(context.Background(), "postgres://u@"+addr+"/db"+tc.query)
		took := time.Since(start)
		if err == nil {
			d.Close()
			t.Fatalf("%s: opened a server that never answers", tc.query)
		}
		if !errors.Is(err, db.ErrUnavailable) || took > tc.max {
			t.Errorf("%s: %v after %v; want ErrUnavailable within %v", tc.query, err, took, tc.max)
		}
	}
}

func TestStatementTimeoutParam(t *testing.T) {
	for _, v := range []string{"abc", "5 fortnights", "-1"} {
		_, err := db.Open(context.Background(), "postgres://u@127.0.0.1:1/db?statement_timeout="+url.QueryEscape(v))
		if !errors.Is(err, db.ErrBadURL) {
			t.Errorf("statement_timeout=%q: %v, want ErrBadURL", v, err)
		}
	}
}

// TestResponseTimeout (issue 14 item 11): a server that stops answering
// after the connection is made (a proxy that freezes) fails the next
// statement within statement_timeout plus the grace, not never.
func TestResponseTimeout(t *testing.T) {
	raw := dbtest.URL(t, db.Postgres)
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	var frozen atomic.Bool
	target := u.Host
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			t.Cleanup(func() { c.Close(); s.Close() })
			go io.Copy(s, c)
			go func() {
				buf := make([]byte, 32<<10)
				for {
					n, err := s.Read(buf)
					for frozen.Load() {
						time.Sleep(10 * time.Millisecond)
					}
					if n > 0 {
						c.Write(buf[:n])
					}
					if err != nil {
						return
					}
				}
			}()
		}
	}()
	u.Host = ln.Addr().String()
	q := u.Query()
	q.Set("statement_timeout", "1000")
	u.RawQuery = q.Encode()
	d, err := db.OpenWith(context.Background(), u.String(), db.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	conn, err := d.SQL.Conn(context.Background()) // connected before the freeze
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var one int
	if err := conn.QueryRowContext(context.Background(), "SELECT 1").Scan(&one); err != nil {
		t.Fatal(err)
	}
	frozen.Store(true)
	defer frozen.Store(false)
	start := time.Now()
	err = conn.QueryRowContext(context.Background(), "SELECT 1").Scan(&one)
	if took := time.Since(start); !errors.Is(err, db.ErrUnavailable) || took > 1*time.Second+db.ResponseGrace+3*time.Second {
		t.Errorf("SELECT 1 through a frozen server: %v after %v; want an error within statement_timeout + %v", err, took, db.ResponseGrace)
	} else {
		t.Logf("failed as expected after %v: %v", took, err)
	}
}
