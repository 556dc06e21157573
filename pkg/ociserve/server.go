// Package ociserve serves the store as an OCI Distribution Specification
// v1.1 registry (docs/adr/0012-oci-distribution-api.md): pull, push
// (monolithic and chunked, resumable), cross-repository mount, tags,
// referrers and deletes under /v2/, beside /health and /metrics. Storage
// and every change go through pkg/registry, so each push or delete is an
// event and the views replay byte for byte.
//
// Every route is in one table (routes, below); each handler returns an
// error that becomes the spec's JSON error document. A panic in a handler
// is recovered and answered with a 500; it never reaches the client as a
// dropped connection.
package ociserve

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strings"
	"time"

	"github.com/artifactstore/artifact-store/pkg/registry"
)

// Limits and defaults.
const (
	DefaultMaxUploads = 64               // requests streaming blob bytes at once
	DefaultBodyIdle   = 60 * time.Second // longest wait for the next byte of a request body
)

// Options configure a Server.
type Options struct {
	// Registry stores and records everything.
	Registry *registry.Registry
	// UploadDir holds the bytes of unfinished chunked uploads, one file
	// per session named by its id. Servers sharing a store must share it.
	UploadDir string
	// Access decides who may do what. Required.
	Access *Access
	// Health serves /health (pkg/health); nil: no /health route.
	Health http.Handler
	// Metrics records requests; nil: none (and no /metrics route).
	Metrics *Metrics
	// MaxUploads bounds requests streaming blob bytes at once; more are
	// refused with TOOMANYREQUESTS. Zero: DefaultMaxUploads.
	MaxUploads int
	// BodyIdle bounds the wait for each read of a request body. Zero:
	// DefaultBodyIdle.
	BodyIdle time.Duration
	// Log receives one line per request and every recovered panic.
	Log *slog.Logger
}

// Server is the HTTP handler.
type Server struct {
	opts    Options
	uploads *uploads
	slots   chan struct{}
}

// New returns a Server.
func New(opts Options) (*Server, error) {
	if opts.Registry == nil || opts.Access == nil || opts.UploadDir == "" {
		return nil, errors.New("ociserve: Registry, Access and UploadDir are required")
	}
	if opts.MaxUploads <= 0 {
		opts.MaxUploads = DefaultMaxUploads
	}
	if opts.BodyIdle <= 0 {
		opts.BodyIdle = DefaultBodyIdle
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	up, err := newUploads(opts.UploadDir)
	if err != nil {
		return nil, err
	}
	if n, err := up.removeStale(context.Background(), opts.Registry); err != nil {
		return nil, err
	} else if n > 0 {
		opts.Log.Info("removed staged bytes of finished uploads", "files", n)
	}
	return &Server{opts: opts, uploads: up, slots: make(chan struct{}, opts.MaxUploads)}, nil
}

// request is what a handler gets: the parsed path, and the registry acting
// for the caller.
type request struct {
	name string // repository
	arg  string // reference, digest or upload id
	reg  *registry.Registry
}

type handler func(s *Server, w http.ResponseWriter, r *http.Request, q *request) error

// route is one row of the route table.
type route struct {
	kind   kind
	method string
	name   string // the metrics label
	scope  Scope
	upload bool // streams blob bytes: takes an upload slot
	h      handler
}

// routes is every API route, in one place.
var routes = []route{
	{kindBase, "GET", "base", ScopeNone, false, (*Server).base},
	{kindBase, "HEAD", "base", ScopeNone, false, (*Server).base},
	{kindManifest, "GET", "manifest_get", ScopeRead, false, (*Server).getManifest},
	{kindManifest, "HEAD", "manifest_get", ScopeRead, false, (*Server).getManifest},
	{kindManifest, "PUT", "manifest_put", ScopeWrite, false, (*Server).putManifest},
	{kindManifest, "DELETE", "manifest_delete", ScopeWrite, false, (*Server).deleteManifest},
	{kindBlob, "GET", "blob_get", ScopeRead, false, (*Server).getBlob},
	{kindBlob, "HEAD", "blob_get", ScopeRead, false, (*Server).getBlob},
	{kindBlob, "DELETE", "blob_delete", ScopeWrite, false, (*Server).deleteBlob},
	{kindUploads, "POST", "upload_start", ScopeWrite, true, (*Server).startUpload},
	{kindUpload, "GET", "upload_status", ScopeWrite, false, (*Server).uploadStatus},
	{kindUpload, "PATCH", "upload_patch", ScopeWrite, true, (*Server).patchUpload},
	{kindUpload, "PUT", "upload_put", ScopeWrite, true, (*Server).putUpload},
	{kindUpload, "DELETE", "upload_cancel", ScopeWrite, false, (*Server).cancelUpload},
	{kindTags, "GET", "tags_list", ScopeRead, false, (*Server).listTags},
	{kindReferrers, "GET", "referrers", ScopeRead, false, (*Server).referrers},
}

// match finds the route of a request; allowed lists the methods of its
// path when the method has none.
func match(method, path string) (rt *route, name, arg string, allowed []string) {
	k, name, arg := parsePath(path)
	if k == kindNone {
		return nil, "", "", nil
	}
	for i := range routes {
		if routes[i].kind == k {
			if routes[i].method == method {
				return &routes[i], name, arg, nil
			}
			allowed = append(allowed, routes[i].method)
		}
	}
	return nil, name, arg, allowed
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	cw := &countingWriter{ResponseWriter: w}
	label := "other"
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			s.opts.Log.Error("panic serving request", "method", r.Method, "path", r.URL.Path, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
			if !cw.wrote {
				writeError(cw, r, newError(http.StatusInternalServerError, codeUnknown, "internal error"))
			}
		}
		code := cw.code
		if code == 0 {
			code = http.StatusOK
		}
		s.opts.Metrics.observe(label, r.Method, code, time.Since(start), cw.n)
		level := slog.LevelInfo
		if code >= 500 {
			level = slog.LevelWarn
		}
		s.opts.Log.Log(r.Context(), level, "request", "method", r.Method, "path", r.URL.Path, "route", label,
			"status", code, "bytes_out", cw.n, "duration_ms", float64(time.Since(start).Microseconds())/1000)
	}()
	switch {
	case r.URL.Path == "/health" && s.opts.Health != nil:
		label = "health"
		s.opts.Health.ServeHTTP(cw, r)
		return
	case r.URL.Path == "/metrics" && s.opts.Metrics != nil:
		label = "metrics"
		s.opts.Metrics.ServeHTTP(cw, r)
		return
	}
	cw.Header().Set("Docker-Distribution-API-Version", "registry/2.0")
	rt, name, arg, allowed := match(r.Method, r.URL.Path)
	if rt == nil {
		if allowed != nil {
			cw.Header().Set("Allow", strings.Join(allowed, ", "))
			writeError(cw, r, newError(http.StatusMethodNotAllowed, CodeUnsupported, r.Method+" is not supported here"))
			return
		}
		writeError(cw, r, newError(http.StatusNotFound, CodeNameUnknown, "no such route"))
		return
	}
	label = rt.name
	if err := s.serve(cw, r, rt, name, arg); err != nil {
		ae := toAPIError(err, CodeNameUnknown)
		if ae.Status >= 500 {
			s.opts.Log.Warn("request failed", "route", label, "err", err)
		}
		if !cw.wrote {
			writeError(cw, r, ae)
		}
	}
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request, rt *route, name, arg string) error {
	if rt.kind != kindBase {
		if err := registry.CheckRepository(name); err != nil {
			return newError(http.StatusBadRequest, CodeNameInvalid, err.Error())
		}
	}
	actor, err := s.opts.Access.authorize(r, name, rt.scope)
	switch {
	case errors.Is(err, errUnauthenticated):
		e := newError(http.StatusUnauthorized, CodeUnauthorized, "authentication required: a token as HTTP Basic (name, secret) or Bearer")
		e.Header = http.Header{"Www-Authenticate": {`Basic realm="as-serve", charset="UTF-8"`}}
		return e
	case errors.Is(err, errDenied):
		return newError(http.StatusForbidden, CodeDenied, fmt.Sprintf("the token may not %s %s", rt.scope, name))
	case err != nil:
		return err
	}
	if rt.upload {
		select {
		case s.slots <- struct{}{}:
			defer func() { <-s.slots }()
		default:
			e := newError(http.StatusTooManyRequests, CodeTooManyRequests, "too many uploads in progress; retry later")
			e.Header = http.Header{"Retry-After": {"1"}}
			return e
		}
		s.opts.Metrics.uploadStarted()
		defer s.opts.Metrics.uploadEnded()
	}
	if r.Body != nil {
		r.Body = &idleBody{rc: r.Body, ctl: http.NewResponseController(w), idle: s.opts.BodyIdle, m: s.opts.Metrics}
	}
	return rt.h(s, w, r, &request{name: name, arg: arg, reg: s.opts.Registry.WithActor(actor)})
}

func (s *Server) base(w http.ResponseWriter, r *http.Request, _ *request) error {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", "2")
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		w.Write([]byte("{}"))
	}
	return nil
}

// countingWriter records the status and counts the bytes written.
type countingWriter struct {
	http.ResponseWriter
	code  int
	n     int64
	wrote bool
}

func (w *countingWriter) WriteHeader(code int) {
	if !w.wrote {
		w.code, w.wrote = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *countingWriter) Write(b []byte) (int, error) {
	if !w.wrote {
		w.code, w.wrote = http.StatusOK, true
	}
	n, err := w.ResponseWriter.Write(b)
	w.n += int64(n)
	return n, err
}

// ReadFrom keeps the response's own ReaderFrom (sendfile for a file).
func (w *countingWriter) ReadFrom(src io.Reader) (int64, error) {
	if !w.wrote {
		w.code, w.wrote = http.StatusOK, true
	}
	n, err := io.Copy(w.ResponseWriter, src)
	w.n += n
	return n, err
}

// Unwrap lets http.ResponseController reach the connection's deadlines.
func (w *countingWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// idleBody bounds each read of a request body by a deadline, so a client
// that stops sending frees its slot, and counts the bytes in.
type idleBody struct {
	rc interface {
		Read([]byte) (int, error)
		Close() error
	}
	ctl  *http.ResponseController
	idle time.Duration
	m    *Metrics
}

func (b *idleBody) Read(p []byte) (int, error) {
	b.ctl.SetReadDeadline(time.Now().Add(b.idle))
	n, err := b.rc.Read(p)
	b.m.bytesIn(n)
	return n, err
}

func (b *idleBody) Close() error { return b.rc.Close() }
