// Command as-serve serves the store as an OCI distribution registry
// (pkg/ociserve), with /health and /metrics beside it.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/artifactstore/artifact-store/internal/cli"
	"github.com/artifactstore/artifact-store/pkg/health"
	"github.com/artifactstore/artifact-store/pkg/ociserve"
	"github.com/artifactstore/artifact-store/pkg/storage"
	"github.com/artifactstore/artifact-store/pkg/store"
)

const usage = `Usage: as-serve [--addr HOST:PORT] [--access FILE] [--tls-cert FILE --tls-key FILE]
                [--upload-dir DIR] [--max-uploads N] [--db URL] [--storage-root DIR]
       as-serve --new-token NAME --scope read|write --repos PATTERN[,PATTERN…]

Serve the store as an OCI Distribution Specification v1.1 registry under
/v2/ (push, pull, chunked and resumable uploads, mounts, tags, referrers,
deletes), with /health (as as-health) and /metrics (Prometheus). Every push
and delete is an event in the log; manifests are served back byte for byte.
An OCI repository is a package name: every finalised package is pullable
(name:VERSION, name:TAG, name@sha256:…) as the manifest as-oci export
writes, and a push by tag whose every layer is titled with a package path
is also the finalised package name@TAG (an existing version: DENIED).

Access: on a loopback address (the default 127.0.0.1:8000) anyone on the
machine may read and write. On any other address as-serve refuses to start
without --access FILE, whose lines admit tokens by the SHA-256 of their
secret: "NAME read|write sha256:HEX PATTERN[,PATTERN…]" (docs/OPERATOR.md).
Clients present a token as HTTP Basic (user NAME, password the secret) or
as Bearer; the token's name is the actor of the events it causes.
--new-token prints such a line on standard output and the secret, once, on
standard error.

Unfinished uploads are kept in --upload-dir (default: uploads/ beside the
object root); servers sharing a store must share it. SIGINT or SIGTERM
stops the server gracefully.

Exit status: 0 after a clean shutdown, 1 a failure, 2 usage, 6 the store
is unavailable.

Examples:
    as-serve                                        # http://127.0.0.1:8000/v2/
    oras push 127.0.0.1:8000/app:1.0 dist/app.tar --plain-http
    crane pull --insecure 127.0.0.1:8000/app:1.0 app.tar
    as-serve --new-token ci --scope write --repos 'app,tools/**' >>access.txt
    as-serve --addr :8443 --access access.txt --tls-cert cert.pem --tls-key key.pem
`

// Server limits (see docs/OPERATOR.md "as-serve").
const (
	readHeaderTimeout = 10 * time.Second
	idleTimeout       = 120 * time.Second
	shutdownTimeout   = 30 * time.Second
	maxHeaderBytes    = 64 << 10
)

func main() { cli.Main("as-serve", run) }

func run(ctx context.Context, args []string, stdio cli.Stdio) error {
	fs := cli.FlagSet("as-serve", usage, stdio.Out)
	sf := cli.RegisterStoreFlags(fs)
	addr := fs.String("addr", "127.0.0.1:8000", "listen on `HOST:PORT`")
	accessFile := fs.String("access", "", "access configuration `FILE` (required off loopback)")
	tlsCert := fs.String("tls-cert", "", "TLS certificate `FILE` (PEM)")
	tlsKey := fs.String("tls-key", "", "TLS private key `FILE` (PEM)")
	uploadDir := fs.String("upload-dir", "", "`DIR` for unfinished uploads (default uploads/ beside the object root)")
	maxUploads := fs.Int("max-uploads", ociserve.DefaultMaxUploads, "requests streaming blob bytes at once (more get 429)")
	bodyIdle := fs.Duration("body-timeout", ociserve.DefaultBodyIdle, "longest wait for the next byte of a request body or for the client to read")
	newToken := fs.String("new-token", "", "print an access-file line for a new token `NAME` (secret on stderr) and exit")
	scope := fs.String("scope", "read", "with --new-token: read or write")
	repos := fs.String("repos", "", "with --new-token: repository `PATTERNS`, comma-separated")
	version := fs.Bool("version", false, "print the version and exit")
	pos, err := cli.Parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return cli.Usagef("as-serve takes no arguments, got %q", pos[0])
	}
	if *version {
		fmt.Fprintln(stdio.Out, "as-serve", cli.Version())
		return nil
	}
	if *newToken != "" {
		sc := ociserve.ScopeRead
		switch *scope {
		case "read":
		case "write":
			sc = ociserve.ScopeWrite
		default:
			return cli.Usagef("--scope must be read or write, got %q", *scope)
		}
		if *repos == "" {
			return cli.Usagef("--new-token needs --repos")
		}
		secret, line, err := ociserve.NewToken(*newToken, sc, strings.Split(*repos, ","))
		if err != nil {
			return fmt.Errorf("%w: %w", cli.ErrUsage, err)
		}
		fmt.Fprintln(stdio.Out, line)
		fmt.Fprintf(stdio.Err, "as-serve: secret of token %s (shown once): %s\n", *newToken, secret)
		return nil
	}
	if (*tlsCert == "") != (*tlsKey == "") {
		return cli.Usagef("--tls-cert and --tls-key go together")
	}
	if *maxUploads <= 0 || *bodyIdle <= 0 {
		return cli.Usagef("--max-uploads and --body-timeout must be positive")
	}
	access, err := loadAccess(*accessFile, *addr)
	if err != nil {
		return err
	}
	cfg, err := sf.Config()
	if err != nil {
		return err
	}
	log := cli.Logger(stdio.Err, cfg)
	st, err := sf.Open(ctx, "as-serve", store.Write)
	if err != nil {
		return err
	}
	defer st.Close()
	if *uploadDir == "" {
		*uploadDir = filepath.Join(filepath.Dir(cfg.LocalRoot), "uploads")
	}
	backends := map[string]health.BackendProber{}
	if b, ok := st.Registry.DataPlane().(interface{ Backend() storage.Backend }); ok {
		backends[st.Registry.DataPlane().BackendID()] = b.Backend()
	}
	srv, err := ociserve.New(ociserve.Options{
		Registry:   st.Registry,
		UploadDir:  *uploadDir,
		Access:     access,
		Health:     health.New(health.Options{Database: health.FromDB(st.DB), Backends: backends, Version: cli.Version()}),
		Metrics:    ociserve.NewMetrics(),
		MaxUploads: *maxUploads,
		BodyIdle:   *bodyIdle,
		Log:        log,
	})
	if err != nil {
		return err
	}
	return serve(ctx, *addr, *tlsCert, *tlsKey, srv, log)
}

// loadAccess reads the access file, or allows anonymous access when addr
// is a loopback address and no file is given.
func loadAccess(file, addr string) (*ociserve.Access, error) {
	if file == "" {
		if !isLoopback(addr) {
			return nil, cli.Usagef("--addr %s is not a loopback address: give --access FILE (see --help)", addr)
		}
		return &ociserve.Access{Anonymous: true}, nil
	}
	f, err := os.Open(file)
	if err != nil {
		return nil, fmt.Errorf("--access: %w", err)
	}
	defer f.Close()
	a, err := ociserve.ParseAccess(f)
	if err != nil {
		return nil, fmt.Errorf("%w: --access %s: %w", cli.ErrUsage, file, err)
	}
	return a, nil
}

// isLoopback reports whether addr's host is a loopback address (or
// "localhost"); an empty host listens everywhere and is not.
func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func serve(ctx context.Context, addr, cert, key string, h http.Handler, log *slog.Logger) error {
	return cli.Serve(ctx, cli.ServeOptions{
		Addr: addr, Handler: h, Log: log, Path: "/v2/", TLSCert: cert, TLSKey: key,
		ReadHeaderTimeout: readHeaderTimeout,
		IdleTimeout:       idleTimeout,
		Shutdown:          shutdownTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
	})
}
