package db

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// PostgreSQL time limits (issue 14 item 11), set by URL parameters:
//
//   - connect_timeout (seconds, as libpq reads it): how long connecting,
//     TLS and the start-up handshake may take. Default
//     [DefaultConnectTimeout]. A server that accepts the TCP connection but
//     never answers (a stopped process) fails here.
//   - statement_timeout (milliseconds, or with a unit: 500ms, 30s, 5min,
//     as PostgreSQL reads it): sent to the server, which cancels a statement
//     that runs longer; the client also gives up on a connection that has
//     sent a request and heard nothing for that long plus
//     [ResponseGrace], so a server that hangs after connecting cannot hang
//     a tool. Without the parameter nothing is sent to the server and the
//     client waits at most [DefaultResponseTimeout]. 0 turns both off.
//
// Either failure is ErrUnavailable (exit 6) naming the cause.
const (
	DefaultConnectTimeout  = 10 * time.Second
	DefaultResponseTimeout = 5 * time.Minute
	ResponseGrace          = 5 * time.Second
)

// applyTimeouts sets conf's connect timeout and response deadline from the
// URL's parameters and the defaults above.
func applyTimeouts(conf *pgx.ConnConfig, hasConnectTimeout bool) error {
	if !hasConnectTimeout {
		conf.ConnectTimeout = DefaultConnectTimeout
	}
	wait := DefaultResponseTimeout
	if v, ok := conf.RuntimeParams["statement_timeout"]; ok {
		d, err := parsePGDuration(v)
		if err != nil {
			return fmt.Errorf("statement_timeout=%q: %w", v, err)
		}
		wait = 0
		if d > 0 {
			wait = d + ResponseGrace
		}
	}
	if wait <= 0 {
		return nil
	}
	dial := conf.DialFunc
	if dial == nil {
		d := &net.Dialer{KeepAlive: 5 * time.Minute}
		dial = d.DialContext
	}
	conf.DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return &deadlineConn{Conn: c, wait: wait}, nil
	}
	return nil
}

// deadlineConn gives every response a deadline: once a write (a request)
// succeeds, reads must make progress within wait. pgx's own deadlines (for
// a cancelled context) are set through the same methods and still apply.
type deadlineConn struct {
	net.Conn
	wait time.Duration
}

func (c *deadlineConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	if err == nil {
		c.Conn.SetReadDeadline(time.Now().Add(c.wait))
	}
	return n, err
}

func (c *deadlineConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 && err == nil {
		c.Conn.SetReadDeadline(time.Now().Add(c.wait))
	}
	if err != nil && errors.Is(err, os.ErrDeadlineExceeded) {
		err = &noResponse{err: err, wait: c.wait}
	}
	return n, err
}

// noResponse is a read that timed out: ErrUnavailable (exit 6), and still
// a timeout to pgx.
type noResponse struct {
	err  error
	wait time.Duration
}

func (e *noResponse) Error() string {
	return fmt.Sprintf("the server sent nothing for %v (statement_timeout + %v): %v", e.wait, ResponseGrace, e.err)
}
func (e *noResponse) Unwrap() []error { return []error{ErrUnavailable, e.err} }
func (e *noResponse) Timeout() bool   { return true }
func (e *noResponse) Temporary() bool { return true }

// parsePGDuration reads a PostgreSQL time setting: an integer of
// milliseconds, or an integer with a unit us, ms, s, min, h or d.
func parsePGDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	n, err := strconv.ParseInt(s[:i], 10, 64)
	if err != nil || n > 1<<31 {
		return 0, fmt.Errorf("want a whole number of milliseconds or a number with a unit (ms, s, min, h, d)")
	}
	unit := map[string]time.Duration{"": time.Millisecond, "us": time.Microsecond, "ms": time.Millisecond, "s": time.Second, "min": time.Minute, "h": time.Hour, "d": 24 * time.Hour}
	u, ok := unit[strings.TrimSpace(s[i:])]
	if !ok {
		return 0, fmt.Errorf("unknown unit %q (ms, s, min, h, d)", s[i:])
	}
	return time.Duration(n) * u, nil
}

// hasParam reports whether the connection string names the parameter key,
// as a URL query parameter or a keyword=value pair.
func hasParam(raw, key string) bool {
	if u, err := url.Parse(raw); err == nil && u.Scheme != "" {
		return u.Query().Has(key)
	}
	for _, f := range strings.Fields(raw) {
		if strings.HasPrefix(f, key+"=") {
			return true
		}
	}
	return false
}
