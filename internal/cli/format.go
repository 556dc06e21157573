package cli

import (
	"fmt"
	"io"
	"time"

	"github.com/artifactstore/artifact-store/pkg/manifest"
	"github.com/artifactstore/artifact-store/pkg/records"
)

// OutputFormat is the one output choice of every tool: JSON when asked
// (--json) or when w is a terminal (never binary to a terminal), else
// canonical CBOR.
func OutputFormat(w io.Writer, asJSON bool) records.Format {
	if asJSON || IsTerminal(w) {
		return records.JSON
	}
	return records.CBOR
}

// WriteRecords writes recs to w in OutputFormat(w, asJSON), each a record
// (a CBOR item, or a JSON line), and flushes.
func WriteRecords[T any](w io.Writer, asJSON bool, recs ...T) error {
	rw := records.NewWriter(w, OutputFormat(w, asJSON))
	for _, r := range recs {
		if err := rw.Write(r); err != nil {
			return err
		}
	}
	return rw.Flush()
}

// WriteManifest writes canonical manifest bytes in format f: as they are,
// or as their JCS projection followed by a newline.
func WriteManifest(w io.Writer, mb []byte, f records.Format) error {
	if f == records.JSON {
		m, err := manifest.Decode(mb)
		if err != nil {
			return err
		}
		if mb, err = manifest.JCS(m); err != nil {
			return err
		}
		mb = append(mb, '\n')
	}
	_, err := w.Write(mb)
	return err
}

// Progress reports files, bytes and rate on w when it is a terminal, at
// most five times a second; elsewhere it is silent.
type Progress struct {
	w           io.Writer
	tool        string
	on          bool
	total, n    int
	bytes       int64
	start, last time.Time
}

// NewProgress returns a Progress for total files.
func NewProgress(w io.Writer, tool string, total int) *Progress {
	return &Progress{w: w, tool: tool, on: IsTerminal(w), total: total, start: time.Now()}
}

// Add counts one file of b bytes.
func (p *Progress) Add(b int64) {
	p.n++
	p.bytes += b
	if !p.on || time.Since(p.last) < 200*time.Millisecond && p.n < p.total {
		return
	}
	p.last = time.Now()
	secs := max(time.Since(p.start).Seconds(), 1e-3)
	fmt.Fprintf(p.w, "\r%s: %d/%d files, %.1f MB, %.1f MB/s ", p.tool, p.n, p.total, float64(p.bytes)/1e6, float64(p.bytes)/1e6/secs)
}

// Done ends the progress line.
func (p *Progress) Done() {
	if p.on && p.n > 0 {
		fmt.Fprintln(p.w)
		p.n = 0
	}
}
