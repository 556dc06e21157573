package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// ServeOptions configure [Serve]. Zero timeouts mean none, except
// Shutdown (default 30 s).
type ServeOptions struct {
	Addr              string // host:port to listen on
	Handler           http.Handler
	Log               *slog.Logger
	Path              string // logged with the URL at start-up ("/v2/", "/health")
	TLSCert, TLSKey   string // both or neither: serve HTTPS
	ReadHeaderTimeout time.Duration
	ReadTimeout       time.Duration
	WriteTimeout      time.Duration
	IdleTimeout       time.Duration
	Shutdown          time.Duration // how long in-flight requests get after ctx ends
	MaxHeaderBytes    int
}

// Serve listens on o.Addr and serves o.Handler until ctx is cancelled
// (SIGINT or SIGTERM in a tool), then shuts down gracefully: it stops
// accepting, lets in-flight requests finish within o.Shutdown and returns
// nil. A listen failure names the address. The server's own error log goes
// to o.Log at warn level.
func Serve(ctx context.Context, o ServeOptions) error {
	if o.Shutdown == 0 {
		o.Shutdown = 30 * time.Second
	}
	srv := &http.Server{
		Handler:           o.Handler,
		ReadHeaderTimeout: o.ReadHeaderTimeout,
		ReadTimeout:       o.ReadTimeout,
		WriteTimeout:      o.WriteTimeout,
		IdleTimeout:       o.IdleTimeout,
		MaxHeaderBytes:    o.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(o.Log.Handler(), slog.LevelWarn),
	}
	ln, err := net.Listen("tcp", o.Addr)
	if err != nil {
		return fmt.Errorf("--addr %s: %w", o.Addr, err)
	}
	scheme := "http"
	if o.TLSCert != "" {
		scheme = "https"
	}
	o.Log.Info("serving", "url", scheme+"://"+ln.Addr().String()+o.Path)
	errc := make(chan error, 1)
	go func() {
		if o.TLSCert != "" {
			errc <- srv.ServeTLS(ln, o.TLSCert, o.TLSKey)
		} else {
			errc <- srv.Serve(ln)
		}
	}()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	o.Log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), o.Shutdown)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	o.Log.Info("stopped")
	return nil
}

// statusWriter records the status code a handler wrote.
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// LogRequests logs each request through log after it is answered: method,
// path (never the query, which may carry credentials), status, duration and
// remote address; info level, warn for a 5xx answer.
func LogRequests(log *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t0 := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r)
		level := slog.LevelInfo
		if sw.code >= 500 {
			level = slog.LevelWarn
		}
		log.Log(r.Context(), level, "request", "method", r.Method, "path", r.URL.Path,
			"status", sw.code, "duration_ms", float64(time.Since(t0).Microseconds())/1000, "remote", r.RemoteAddr)
	})
}
