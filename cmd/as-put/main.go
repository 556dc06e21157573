// Command as-put stores files into a package: it reads file records (from
// as-digest) and the files they name, verifies each against its record while
// storing it, and with --finalize writes the package's canonical manifest.
package main

import (
	"context"
	"errors"
	"fmt"
	"github.com/artifactstore/artifact-store/pkg/ref"
	"io"
	"os"
	"strings"
	"time"

	"github.com/artifactstore/artifact-store/internal/cli"
	"github.com/artifactstore/artifact-store/internal/store"
	"github.com/artifactstore/artifact-store/pkg/dataplane"
	"github.com/artifactstore/artifact-store/pkg/manifest"
	"github.com/artifactstore/artifact-store/pkg/records"
	"github.com/artifactstore/artifact-store/pkg/registry"
)

const usage = `Usage: as-put --package NAME@VERSION [flags] < records
       as-put -                      (store standard input as a bare object)

Reads file records (as as-digest writes them) from standard input, stores each
named file into the package, verifying its bytes against the record while
storing them (a file changed since it was digested is an error), and writes
one storage receipt per file:

    {"path": "bin/app", "content_address": "blake3:…", "backend_id": "local", "key": "…", "stored": true}

With --finalize it seals the package and writes its canonical CBOR manifest
instead (JCS JSON on a terminal or with --json). The package is created if it
does not exist. Record paths are made relative to --root (default: the deepest
directory containing every file). A failure leaves the package open and
consistent; running the same command again completes it without storing
anything twice. Progress goes to standard error when it is a terminal.

Examples:
    find dist -type f | as-digest | as-put --package app@1.2.3 --finalize > app.manifest
    find dist -type f | as-digest | as-put --package app@1.2.3 --retention release --label team=ci
    as-put - < build.log
`

func main() { cli.Main("as-put", run) }

type labelFlag map[string]string

func (l labelFlag) String() string { return "" }
func (l labelFlag) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if !ok || k == "" {
		return fmt.Errorf("want KEY=VALUE, got %q", s)
	}
	if _, dup := l[k]; dup {
		return fmt.Errorf("%q given twice", k)
	}
	l[k] = v
	return nil
}

func run(ctx context.Context, args []string, stdio cli.Stdio) error {
	fs := cli.FlagSet("as-put", usage, stdio.Out)
	flags := store.RegisterFlags(fs)
	pkgRef := fs.String("package", "", "the package, NAME@VERSION")
	retention := fs.String("retention", "", "retention class of a new package (default standard)")
	labels := labelFlag{}
	fs.Var(labels, "label", "KEY=VALUE label of a new package (repeatable)")
	facts := labelFlag{}
	fs.Var(facts, "fact", "KEY=VALUE provenance fact recorded by --finalize (repeatable)")
	jobs := fs.Int("jobs", 16, "files stored at once (their fsyncs overlap)")
	replace := fs.Bool("replace", false, "let a path already in the open package get new bytes")
	finalize := fs.Bool("finalize", false, "seal the package and write its manifest")
	root := fs.String("root", "", "directory the record paths are relative to")
	createdAt := fs.String("created-at", "", "creation time for the manifest, RFC 3339 UTC (default $SOURCE_DATE_EPOCH; none if unset)")
	asJSON := fs.Bool("json", false, "write JSON (receipts as JSON lines, the manifest as JCS)")
	version := fs.Bool("version", false, "print the version and exit")
	pos, err := cli.Parse(fs, args)
	if err != nil {
		return err
	}
	if *version {
		fmt.Fprintln(stdio.Out, "as-put", cli.Version())
		return nil
	}
	bare := len(pos) == 1 && pos[0] == "-"
	switch {
	case len(pos) > 0 && !bare:
		return cli.Usagef("unexpected arguments %q (records come on standard input; '-' stores standard input as a bare object)", pos)
	case bare && (*pkgRef != "" || *finalize):
		return cli.Usagef("'-' stores a bare object; it takes no --package or --finalize")
	case !bare && *pkgRef == "":
		return cli.Usagef("--package NAME@VERSION is required")
	}
	if *jobs < 1 {
		return cli.Usagef("--jobs must be at least 1, got %d", *jobs)
	}
	created, err := createdAtValue(*createdAt)
	if err != nil {
		return cli.Usagef("%v", err)
	}
	jsonOut := *asJSON || cli.IsTerminal(stdio.Out)
	opts, err := flags.Options("as-put")
	if err != nil {
		return err
	}

	if bare {
		st, err := store.Open(ctx, opts)
		if err != nil {
			return err
		}
		defer st.Close()
		res, err := st.Registry.StoreObject(ctx, stdio.In, nil)
		if err != nil {
			return err
		}
		format := records.CBOR
		if jsonOut {
			format = records.JSONLines
		}
		w := records.NewWriter(stdio.Out, format)
		w.Write(objectReceipt{ContentAddress: res.Sum.BLAKE3.String(), SHA256: res.Sum.SHA256.String(), Size: uint64(res.Sum.Size), BackendID: res.Receipt.BackendID, Key: res.Receipt.Key})
		return w.Flush()
	}

	ref, err := ref.ParseVersion(*pkgRef)
	if err != nil {
		return cli.Usagef("--package: %v", err)
	}
	// Read and check every record before touching the store: bad input
	// changes nothing.
	recs, err := readRecords(stdio.In)
	if err != nil {
		return err
	}
	if len(recs) == 0 {
		return errors.New("no file records on standard input; nothing stored (try: find DIR -type f | as-digest | as-put --package NAME@VERSION)")
	}
	paths := make([]string, len(recs))
	for i, r := range recs {
		paths[i] = r.Path
	}
	rel, _, err := manifest.Relativize(*root, paths)
	if err != nil {
		return err
	}
	seen := make(map[string]int, len(rel))
	for i, p := range rel {
		if j, dup := seen[p]; dup {
			return fmt.Errorf("records %d and %d both name %q in the package", j+1, i+1, p)
		}
		seen[p] = i
	}

	// Every named file must be there before the package is touched: a
	// missing file is bad input and must not leave a new, empty package.
	for i, r := range recs {
		if fi, err := os.Stat(r.Path); err != nil {
			return fmt.Errorf("record %d: %w; nothing stored", i+1, err)
		} else if !fi.Mode().IsRegular() {
			return fmt.Errorf("record %d: %s is not a regular file; nothing stored", i+1, r.Path)
		}
	}
	st, err := store.Open(ctx, opts)
	if err != nil {
		return err
	}
	defer st.Close()
	reg := st.Registry
	if err := reg.CreatePackage(ctx, ref, registry.CreateOptions{RetentionClass: *retention, Labels: labels}); err != nil && !errors.Is(err, registry.ErrExists) {
		return err
	}

	format := records.CBOR
	if jsonOut {
		format = records.JSONLines
	}
	w := records.NewWriter(stdio.Out, format)
	prog := newProgress(stdio.Err, len(recs))
	allUnchanged := true
	for start := 0; start < len(recs); {
		end := batchEnd(recs, start)
		batch := make([]registry.Input, 0, end-start)
		for i := start; i < end; i++ {
			batch = append(batch, input(rel[i], recs[i]))
		}
		res, err := reg.IngestFiles(ctx, ref, batch, registry.BatchOptions{Replace: *replace, Workers: *jobs})
		if err != nil {
			prog.done()
			return explain(err)
		}
		for k, r := range res {
			allUnchanged = allUnchanged && r.Unchanged
			prog.add(int64(recs[start+k].Size))
			if !*finalize {
				if err := w.Write(fileReceipt{Path: r.File.Path, ContentAddress: r.File.ContentAddress.String(), BackendID: r.Receipt.BackendID, Key: r.Receipt.Key, Stored: !r.Unchanged}); err != nil {
					return err
				}
			}
		}
		start = end
	}
	prog.done()
	if !*finalize {
		return w.Flush()
	}
	mb, err := reg.FinalizePackage(ctx, ref, registry.FinalizeOptions{CreatedAt: created, Facts: facts})
	if errors.Is(err, registry.ErrPackageFinalized) && allUnchanged {
		// Re-running a command that already finished: same package, same
		// files. Print the manifest it made.
		mb, err = reg.GetManifestBytes(ctx, ref, registry.CBOR)
	}
	if err != nil {
		return err
	}
	if jsonOut {
		m, err := manifest.Decode(mb)
		if err != nil {
			return err
		}
		if mb, err = manifest.JCS(m); err != nil {
			return err
		}
		mb = append(mb, '\n')
	}
	_, err = stdio.Out.Write(mb)
	return err
}

type fileReceipt struct {
	Path           string `cbor:"path" json:"path"`
	ContentAddress string `cbor:"content_address" json:"content_address"`
	BackendID      string `cbor:"backend_id" json:"backend_id"`
	Key            string `cbor:"key" json:"key"`
	Stored         bool   `cbor:"stored" json:"stored"` // false: already there, nothing stored
}

type objectReceipt struct {
	ContentAddress string `cbor:"content_address" json:"content_address"`
	SHA256         string `cbor:"sha256" json:"sha256"`
	Size           uint64 `cbor:"size" json:"size"`
	BackendID      string `cbor:"backend_id" json:"backend_id"`
	Key            string `cbor:"key" json:"key"`
}

func readRecords(in io.Reader) ([]records.File, error) {
	r := records.NewReader(in)
	var out []records.File
	for {
		f, err := r.ReadFile()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("reading file records: %w", err)
		}
		out = append(out, f)
	}
}

// Batches: one transaction per batch (one fsync of the database) while the
// files' bytes are stored in parallel. A batch ends at batchFiles files or
// batchBytes declared bytes, whichever comes first.
const (
	batchFiles = 1024
	batchBytes = 256 << 20
)

func batchEnd(recs []records.File, start int) int {
	var bytes uint64
	end := start
	for end < len(recs) && end-start < batchFiles && (end == start || bytes+recs[end].Size <= batchBytes) {
		bytes += recs[end].Size
		end++
	}
	return end
}

// input is the registry input for a record: the file it names, verified
// against the digests it declares.
func input(path string, r records.File) registry.Input {
	want := r.Sum()
	return registry.Input{
		Path:   path,
		Expect: &want,
		Open:   func() (io.ReadCloser, error) { return os.Open(r.Path) },
		Reopen: true, // a file can be read again if GC deleted its object meanwhile
	}
}

// explain turns a digest mismatch into the message a user needs.
func explain(err error) error {
	var ee *dataplane.ExpectError
	if errors.As(err, &ee) {
		return fmt.Errorf("%w\n(a file changed since it was digested: its %s was %s in the record and is %s now; nothing was stored for it)", err, ee.What, ee.Want, ee.Got)
	}
	return err
}

func createdAtValue(flagValue string) (string, error) {
	if flagValue != "" {
		if err := manifest.CheckCreatedAt(flagValue); err != nil {
			return "", fmt.Errorf("--created-at: %w", err)
		}
		return flagValue, nil
	}
	if s := os.Getenv("SOURCE_DATE_EPOCH"); s != "" {
		var sec int64
		if _, err := fmt.Sscan(s, &sec); err != nil || sec < 0 {
			return "", fmt.Errorf("SOURCE_DATE_EPOCH=%q is not a non-negative number of seconds", s)
		}
		return manifest.FormatTime(time.Unix(sec, 0))
	}
	return "", nil
}

// progress reports files, bytes and rate on a terminal.
type progress struct {
	w           io.Writer
	on          bool
	total, n    int
	bytes       int64
	start, last time.Time
}

func newProgress(w io.Writer, total int) *progress {
	return &progress{w: w, on: cli.IsTerminal(w), total: total, start: time.Now()}
}

func (p *progress) add(b int64) {
	p.n++
	p.bytes += b
	if !p.on || time.Since(p.last) < 200*time.Millisecond && p.n < p.total {
		return
	}
	p.last = time.Now()
	secs := max(time.Since(p.start).Seconds(), 1e-3)
	fmt.Fprintf(p.w, "\ras-put: %d/%d files, %.1f MB, %.1f MB/s ", p.n, p.total, float64(p.bytes)/1e6, float64(p.bytes)/1e6/secs)
}

func (p *progress) done() {
	if p.on && p.n > 0 {
		fmt.Fprintln(p.w)
	}
}
