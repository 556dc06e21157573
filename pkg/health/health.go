// Package health answers "is this artifact-store usable right now?" for
// operators, load balancers and container health checks (DESIGN.md §5,
// issue 8). A [Checker] runs its probes concurrently, each under its own
// deadline, and [Checker.ServeHTTP] serves the result as GET /health:
//
//	{
//	  "status": "ok" | "degraded" | "fail",
//	  "checks": {
//	    "registry":  {"ok": true, "version": "…", "uptime_s": 12},
//	    "database":  {"ok": true, "dialect": "sqlite", "rtt_ms": 0.1,
//	                  "schema_version": 3, "latest_version": 3,
//	                  "migrations_pending": false},
//	    "event_log": {"ok": true, "head_seq": 42, "head_hash": "blake3:…"},
//	    "backends":  {"local": {"ok": true, "reachable": true,
//	                  "free_bytes": 1, "total_bytes": 2, "detail": "…"}}
//	  },
//	  "time": "2026-11-27T00:00:00Z"
//	}
//
// HTTP 200 when the status is "ok", 503 otherwise. Every check that is not
// ok carries an "error" field saying why, so the failing part is named.
//
// With [Options.Integrity] set, an "integrity" check reports what scrubbing
// (as-scrub) has recorded: stored objects, known-corrupt ones, never-scrubbed
// ones and the oldest verification (for an object never scrubbed, the time
// it was stored, when it was digested).
//
// Status:
//   - "fail": the store cannot do its job: the registry is not live, the
//     database does not answer, the event log cannot be read, or no storage
//     backend is usable.
//   - "degraded": it answers but something needs an operator: the database
//     schema is behind (migrations_pending) or ahead of this program, or
//     some but not all backends are unusable, a stored object is known
//     corrupt, or the oldest verification is older than
//     [Options.MaxVerifyAge].
//   - "ok": every check passed.
//
// Registry liveness means: this process is serving (it is answering the
// request), the dependencies the registry is built from (a database and at
// least one storage backend) were constructed, and, when one is given,
// [Options.Live] returns nil. It does not touch the database or the
// backends; their own checks do.
//
// Each probe runs under [Options.Timeout] (default [DefaultTimeout]). A probe
// that does not return by then is reported as timed out, even if it ignores
// its context, so a hung database or filesystem cannot hang the endpoint.
// At most one run of each probe is in flight: requests that arrive while it
// runs share its result, so a probe that hangs costs one goroutine, not one
// per request.
package health

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/artifactstore/artifact-store/pkg/db"
	"github.com/artifactstore/artifact-store/pkg/events"
	"github.com/artifactstore/artifact-store/pkg/storage"
)

// DefaultTimeout bounds each probe when Options.Timeout is zero.
const DefaultTimeout = 2 * time.Second

// Status values.
const (
	StatusOK       = "ok"
	StatusDegraded = "degraded"
	StatusFail     = "fail"
)

// Database is what the database and event-log probes need. [FromDB] and
// [Lazy] provide it over pkg/db.
type Database interface {
	// Ping does one round trip to the database.
	Ping(ctx context.Context) error
	// SchemaStatus reports the applied and latest schema versions.
	SchemaStatus(ctx context.Context) (db.SchemaStatus, error)
	// Head returns the event log's last sequence and hash.
	Head(ctx context.Context) (events.Head, error)
	// Dialect names the database's dialect, "" if not yet known.
	Dialect() string
}

// BackendProber is what the backend probes need of a storage backend;
// every storage.Backend satisfies it.
type BackendProber interface {
	Health(ctx context.Context) (storage.Health, error)
}

// Options configure a Checker.
type Options struct {
	// Database is probed for connectivity, schema and the event-log head.
	// nil: both checks fail with "no database configured".
	Database Database
	// Backends maps backend ids to their probes. Empty: the backends
	// check fails.
	Backends map[string]BackendProber
	// Live, if not nil, is the registry's own liveness test (see the
	// package comment); it runs under the probe timeout like the others.
	Live func(ctx context.Context) error
	// Timeout bounds each probe; zero means DefaultTimeout.
	Timeout time.Duration
	// Version is reported in the registry check.
	Version string
	// Now gives the time; nil means time.Now.
	Now func() time.Time
	// Integrity, if not nil, reads what scrubbing has recorded; the report
	// then has an "integrity" check.
	Integrity func(ctx context.Context) (Integrity, error)
	// MaxVerifyAge, if positive, makes the integrity check fail (status
	// degraded) when the oldest verification is older than this.
	MaxVerifyAge time.Duration
}

// Integrity is what scrubbing has recorded about the stored objects.
type Integrity struct {
	Objects    int64 // stored objects
	Corrupt    int64 // known corrupt and not repaired
	Unverified int64 // never scrubbed
	// Oldest is the oldest last verification among the objects (for one
	// never scrubbed, the time it was stored); zero with no objects.
	Oldest time.Time
}

// Report is the /health document.
type Report struct {
	Status string    `json:"status"`
	Checks Checks    `json:"checks"`
	Time   time.Time `json:"time"`
}

// OK reports whether every check passed.
func (r Report) OK() bool { return r.Status == StatusOK }

// Checks holds one result per part of the store.
type Checks struct {
	Registry RegistryCheck           `json:"registry"`
	Database DatabaseCheck           `json:"database"`
	EventLog EventLogCheck           `json:"event_log"`
	Backends map[string]BackendCheck `json:"backends"`
	// Integrity is present when Options.Integrity is set.
	Integrity *IntegrityCheck `json:"integrity,omitempty"`
}

// IntegrityCheck is what scrubbing knows: not ok when an object is known
// corrupt or the oldest verification is older than the configured age.
type IntegrityCheck struct {
	OK                 bool       `json:"ok"`
	Objects            int64      `json:"objects"`
	CorruptObjects     int64      `json:"corrupt_objects"`
	UnverifiedObjects  int64      `json:"unverified_objects"`
	OldestVerification *time.Time `json:"oldest_verification,omitempty"`
	MaxAgeS            int64      `json:"max_age_s,omitempty"`
	Error              string     `json:"error,omitempty"`
}

// RegistryCheck is the registry's liveness.
type RegistryCheck struct {
	OK       bool   `json:"ok"`
	Version  string `json:"version,omitempty"`
	UptimeS  int64  `json:"uptime_s"`
	Backends int    `json:"backends_configured"`
	Error    string `json:"error,omitempty"`
}

// DatabaseCheck is the database's connectivity and schema.
type DatabaseCheck struct {
	OK                bool     `json:"ok"`
	Dialect           string   `json:"dialect,omitempty"`
	RTTMillis         *float64 `json:"rtt_ms,omitempty"`
	SchemaVersion     int64    `json:"schema_version"`
	LatestVersion     int64    `json:"latest_version"`
	MigrationsPending bool     `json:"migrations_pending"`
	Error             string   `json:"error,omitempty"`

	reachable bool
}

// EventLogCheck is the event log's head.
type EventLogCheck struct {
	OK       bool   `json:"ok"`
	HeadSeq  uint64 `json:"head_seq"`
	HeadHash string `json:"head_hash,omitempty"`
	Error    string `json:"error,omitempty"`
}

// BackendCheck is one storage backend's health.
type BackendCheck struct {
	OK         bool   `json:"ok"`
	Reachable  bool   `json:"reachable"`
	FreeBytes  int64  `json:"free_bytes"`
	TotalBytes int64  `json:"total_bytes"`
	Detail     string `json:"detail,omitempty"`
	Error      string `json:"error,omitempty"`
}

// Checker runs the probes. It is safe for concurrent use.
type Checker struct {
	opts    Options
	started time.Time

	mu    sync.Mutex
	calls map[string]*call // probes in flight, by name
}

// call is one run of a probe, shared by every request that arrives while
// it is in flight.
type call struct {
	started time.Time
	done    chan struct{} // closed when the probe returns
	v       any
	err     error
}

// New returns a Checker over opts.
func New(opts Options) *Checker {
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Checker{opts: opts, started: opts.Now(), calls: map[string]*call{}}
}

// ErrTimeout is wrapped by the error of a probe that missed its deadline.
var ErrTimeout = errors.New("health: probe timed out")

// probe runs f, named name, under the probe deadline and returns its
// result, or gives up at the deadline even if f ignores its context.
//
// At most one run of each named probe is in flight: a request that finds
// one running waits for that run instead of starting another. So a probe
// that hangs (ignoring its context) costs one goroutine, not one per
// request, and requests keep timing out promptly until it returns. The
// run's context is detached from the request's (others may be waiting on
// it) and bounded by the probe timeout.
func probe[T any](ctx context.Context, c *Checker, name string, f func(ctx context.Context) (T, error)) (T, error) {
	var zero T
	d := c.opts.Timeout
	c.mu.Lock()
	cl, running := c.calls[name]
	if !running {
		cl = &call{started: time.Now(), done: make(chan struct{})}
		c.calls[name] = cl
		pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), d)
		go func() {
			defer func() {
				if p := recover(); p != nil {
					cl.err = fmt.Errorf("health: %s probe panicked: %v", name, p)
				}
				cancel()
				c.mu.Lock()
				delete(c.calls, name)
				c.mu.Unlock()
				close(cl.done)
			}()
			v, err := f(pctx)
			if err != nil && errors.Is(err, context.DeadlineExceeded) && pctx.Err() != nil {
				err = fmt.Errorf("%w after %s: %v", ErrTimeout, d, err)
			}
			cl.v, cl.err = v, err
		}()
	}
	c.mu.Unlock()
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-cl.done:
		v, _ := cl.v.(T)
		return v, cl.err
	case <-timer.C:
		if running {
			return zero, fmt.Errorf("%w after %s (a %s probe started %s ago has not returned)", ErrTimeout, d, name, time.Since(cl.started).Round(time.Millisecond))
		}
		return zero, fmt.Errorf("%w after %s", ErrTimeout, d)
	case <-ctx.Done():
		return zero, ctx.Err()
	}
}

// Check runs every probe concurrently and returns the report.
func (c *Checker) Check(ctx context.Context) Report {
	var (
		wg  sync.WaitGroup
		mu  sync.Mutex
		rep = Report{Checks: Checks{Backends: map[string]BackendCheck{}}}
	)
	wg.Go(func() { r := c.registry(ctx); mu.Lock(); rep.Checks.Registry = r; mu.Unlock() })
	wg.Go(func() { r := c.database(ctx); mu.Lock(); rep.Checks.Database = r; mu.Unlock() })
	wg.Go(func() { r := c.eventLog(ctx); mu.Lock(); rep.Checks.EventLog = r; mu.Unlock() })
	for id, b := range c.opts.Backends {
		wg.Go(func() { r := c.backend(ctx, id, b); mu.Lock(); rep.Checks.Backends[id] = r; mu.Unlock() })
	}
	if c.opts.Integrity != nil {
		wg.Go(func() { r := c.integrity(ctx); mu.Lock(); rep.Checks.Integrity = &r; mu.Unlock() })
	}
	wg.Wait()
	rep.Time = c.opts.Now().UTC().Truncate(time.Millisecond)
	rep.Status = status(rep.Checks)
	return rep
}

func status(ch Checks) string {
	var bOK, bBad int
	for _, b := range ch.Backends {
		if b.OK {
			bOK++
		} else {
			bBad++
		}
	}
	switch {
	case !ch.Registry.OK, !ch.Database.reachable, !ch.EventLog.OK, bOK == 0:
		return StatusFail
	case !ch.Database.OK, bBad > 0, ch.Integrity != nil && !ch.Integrity.OK:
		return StatusDegraded
	}
	return StatusOK
}

func (c *Checker) registry(ctx context.Context) RegistryCheck {
	r := RegistryCheck{
		Version:  c.opts.Version,
		UptimeS:  int64(c.opts.Now().Sub(c.started) / time.Second),
		Backends: len(c.opts.Backends),
	}
	switch {
	case c.opts.Database == nil:
		r.Error = "no database configured"
	case len(c.opts.Backends) == 0:
		r.Error = "no storage backend configured"
	case c.opts.Live != nil:
		if _, err := probe(ctx, c, "registry", func(ctx context.Context) (struct{}, error) {
			return struct{}{}, c.opts.Live(ctx)
		}); err != nil {
			r.Error = err.Error()
		}
	}
	r.OK = r.Error == ""
	return r
}

func (c *Checker) database(ctx context.Context) DatabaseCheck {
	var r DatabaseCheck
	if c.opts.Database == nil {
		r.Error = "no database configured"
		return r
	}
	r.Dialect = c.opts.Database.Dialect()
	rtt, err := probe(ctx, c, "database.ping", func(ctx context.Context) (time.Duration, error) {
		t0 := time.Now()
		err := c.opts.Database.Ping(ctx)
		return time.Since(t0), err
	})
	if err != nil {
		r.Error = err.Error()
		return r
	}
	r.reachable = true
	ms := float64(rtt.Microseconds()) / 1000
	r.RTTMillis = &ms
	st, err := probe(ctx, c, "database.schema", c.opts.Database.SchemaStatus)
	if err != nil {
		r.Error = "schema status: " + err.Error()
		return r
	}
	r.SchemaVersion, r.LatestVersion, r.MigrationsPending = st.Current, st.Latest, st.Pending
	switch {
	case st.Pending:
		r.Error = fmt.Sprintf("schema at version %d, latest is %d: migrations pending (run `as-events migrate` or `make migrate`)", st.Current, st.Latest)
	case st.Current > st.Latest:
		r.Error = fmt.Sprintf("schema at version %d is newer than this program (%d): upgrade artifact-store", st.Current, st.Latest)
	}
	r.OK = r.Error == ""
	return r
}

func (c *Checker) eventLog(ctx context.Context) EventLogCheck {
	var r EventLogCheck
	if c.opts.Database == nil {
		r.Error = "no database configured"
		return r
	}
	h, err := probe(ctx, c, "event_log", c.opts.Database.Head)
	if err != nil {
		r.Error = err.Error()
		return r
	}
	r.OK, r.HeadSeq = true, h.Seq
	if !h.Hash.IsZero() {
		r.HeadHash = h.Hash.String()
	}
	return r
}

func (c *Checker) integrity(ctx context.Context) IntegrityCheck {
	r := IntegrityCheck{MaxAgeS: int64(c.opts.MaxVerifyAge / time.Second)}
	in, err := probe(ctx, c, "integrity", c.opts.Integrity)
	if err != nil {
		r.Error = err.Error()
		return r
	}
	r.Objects, r.CorruptObjects, r.UnverifiedObjects = in.Objects, in.Corrupt, in.Unverified
	if !in.Oldest.IsZero() {
		t := in.Oldest.UTC()
		r.OldestVerification = &t
	}
	switch {
	case in.Corrupt > 0:
		r.Error = fmt.Sprintf("%d stored object(s) known corrupt (as-scrub found them; store the same bytes again to repair)", in.Corrupt)
	case c.opts.MaxVerifyAge > 0 && !in.Oldest.IsZero() && c.opts.Now().Sub(in.Oldest) > c.opts.MaxVerifyAge:
		r.Error = fmt.Sprintf("oldest verification %s is older than %s: run as-scrub --older-than %s",
			in.Oldest.UTC().Format(time.RFC3339), c.opts.MaxVerifyAge, c.opts.MaxVerifyAge)
	}
	r.OK = r.Error == ""
	return r
}

func (c *Checker) backend(ctx context.Context, id string, b BackendProber) BackendCheck {
	r := BackendCheck{FreeBytes: -1, TotalBytes: -1}
	h, err := probe(ctx, c, "backends."+id, b.Health)
	if err != nil {
		r.Error = err.Error()
		r.Detail = h.Detail
		return r
	}
	r.Reachable, r.FreeBytes, r.TotalBytes, r.Detail = h.Reachable, h.FreeBytes, h.TotalBytes, h.Detail
	if !h.Reachable {
		r.Error = "unreachable"
		if h.Detail != "" {
			r.Error = "unreachable: " + h.Detail
		}
	}
	r.OK = r.Error == ""
	return r
}

// ServeHTTP serves the report: GET gives the JSON document, HEAD only the
// status code and headers; other methods get 405. The status is 200 when
// the report is "ok", else 503.
func (c *Checker) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed: use GET or HEAD", http.StatusMethodNotAllowed)
		return
	}
	rep := c.Check(r.Context())
	body, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		http.Error(w, "health: encoding the report: "+err.Error(), http.StatusInternalServerError)
		return
	}
	body = append(body, '\n')
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Length", fmt.Sprint(len(body)))
	code := http.StatusOK
	if !rep.OK() {
		code = http.StatusServiceUnavailable
	}
	w.WriteHeader(code)
	if r.Method == http.MethodHead {
		return
	}
	w.Write(body)
}

// Failing names the checks that are not ok ("database", "backends.local"),
// sorted, for logs and messages.
func (r Report) Failing() []string {
	var out []string
	if !r.Checks.Registry.OK {
		out = append(out, "registry")
	}
	if !r.Checks.Database.OK {
		out = append(out, "database")
	}
	if !r.Checks.EventLog.OK {
		out = append(out, "event_log")
	}
	for id, b := range r.Checks.Backends {
		if !b.OK {
			out = append(out, "backends."+id)
		}
	}
	if len(r.Checks.Backends) == 0 {
		out = append(out, "backends")
	}
	if r.Checks.Integrity != nil && !r.Checks.Integrity.OK {
		out = append(out, "integrity")
	}
	sort.Strings(out)
	return out
}
