package records

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/artifactstore/artifact-store/pkg/canonical"
	"github.com/fxamacker/cbor/v2"
)

// Format is the one output choice of every tool: canonical CBOR for pipes,
// or JSON for people and JSON tools. Records are then a CBOR sequence (RFC
// 8742) or JSON lines; a manifest is its canonical bytes or their RFC 8785
// (JCS) projection.
type Format int

const (
	CBOR Format = iota // canonical CBOR (a CBOR sequence of records)
	JSON               // JSON lines of records; JCS for a manifest
)

// Writer writes records in one Format. It buffers; call Flush at the end.
type Writer struct {
	bw     *bufio.Writer
	format Format
}

// NewWriter returns a Writer of format f on w.
func NewWriter(w io.Writer, f Format) *Writer {
	return &Writer{bw: bufio.NewWriterSize(w, 64<<10), format: f}
}

// Write writes v as one record: canonical CBOR, or a JSON line.
func (w *Writer) Write(v any) error {
	if w.format == JSON {
		b, err := json.Marshal(v)
		if err != nil {
			return fmt.Errorf("records: encode JSON: %w", err)
		}
		w.bw.Write(b)
		return w.bw.WriteByte('\n')
	}
	b, err := canonical.Marshal(v)
	if err != nil {
		return err
	}
	return w.WriteRaw(b)
}

// WriteRaw writes an item that is already canonical CBOR. In JSON format
// it is decoded and rendered as JSON.
func (w *Writer) WriteRaw(item []byte) error {
	if w.format == JSON {
		var v any
		if err := canonical.Unmarshal(item, &v); err != nil {
			return err
		}
		return w.Write(v)
	}
	_, err := w.bw.Write(item)
	return err
}

// WriteRawParts is WriteRaw of the concatenation of parts; in CBOR format
// it writes them one after another without joining them (a record of a
// large embedded item needs no copy of it).
func (w *Writer) WriteRawParts(parts ...[]byte) error {
	if w.format == JSON {
		return w.WriteRaw(bytes.Join(parts, nil))
	}
	for _, p := range parts {
		if _, err := w.bw.Write(p); err != nil {
			return err
		}
	}
	return nil
}

// Flush writes any buffered records to the underlying writer.
func (w *Writer) Flush() error { return w.bw.Flush() }

// Limits on one record read from a stream.
const (
	MaxRecordBytes = 16 << 20 // a single record; manifests use their own limit
	maxRecordDepth = 16
)

// Reader reads a CBOR sequence one canonical item at a time.
type Reader struct {
	dec   *cbor.Decoder
	first *firstByte
	n     int   // records read so far
	off   int64 // byte offset of the next record
	start int64 // byte offset of the last record returned
}

// firstByte remembers the first byte of a stream, so that errors can tell
// JSON input (which starts with '{') from damaged CBOR.
type firstByte struct {
	r    io.Reader
	b    byte
	seen bool
}

func (f *firstByte) Read(p []byte) (int, error) {
	n, err := f.r.Read(p)
	if n > 0 && !f.seen {
		f.b, f.seen = p[0], true
	}
	return n, err
}

func (f *firstByte) looksLikeJSON() bool { return f.seen && (f.b == '{' || f.b == '[') }

const jsonHint = " (input looks like JSON; the tools read CBOR sequences, drop --json upstream)"

var streamMode = func() cbor.DecMode {
	m, err := cbor.DecOptions{
		MaxNestedLevels:  maxRecordDepth,
		MaxArrayElements: 1 << 16,
		MaxMapPairs:      1 << 16,
		IndefLength:      cbor.IndefLengthForbidden,
		TagsMd:           cbor.TagsForbidden,
	}.DecMode()
	if err != nil {
		panic(err)
	}
	return m
}()

// NewReader returns a Reader of the CBOR sequence on r.
func NewReader(r io.Reader) *Reader {
	f := &firstByte{r: r}
	return &Reader{dec: streamMode.NewDecoder(bufio.NewReaderSize(f, 64<<10)), first: f}
}

// RecordError locates a bad record in a stream.
type RecordError struct {
	Index  int   // 1-based position of the record in the stream
	Offset int64 // byte offset where the record starts
	Err    error
}

func (e *RecordError) Error() string {
	return fmt.Sprintf("record %d (byte %d): %v", e.Index, e.Offset, e.Err)
}

func (e *RecordError) Unwrap() error { return e.Err }

// Next returns the next item's canonical bytes. At the clean end of the
// stream it returns io.EOF; a stream that ends inside an item, holds a
// malformed or non-canonical item, or starts like JSON gives a *RecordError.
func (r *Reader) Next() ([]byte, error) {
	var raw cbor.RawMessage
	err := r.dec.Decode(&raw)
	idx, start := r.n+1, r.off
	r.off = int64(r.dec.NumBytesRead())
	if err == io.EOF {
		return nil, io.EOF
	}
	if err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			err = errors.New("stream ends inside a record (truncated input)")
		}
		if r.first.looksLikeJSON() {
			err = fmt.Errorf("%w%s", err, jsonHint)
		}
		return nil, &RecordError{Index: idx, Offset: start, Err: err}
	}
	r.n++
	r.start = start
	if len(raw) > MaxRecordBytes {
		return nil, &RecordError{Index: idx, Offset: start, Err: fmt.Errorf("record of %d bytes exceeds the limit of %d", len(raw), MaxRecordBytes)}
	}
	if err := canonical.Check(raw); err != nil {
		if r.first.looksLikeJSON() {
			err = fmt.Errorf("%w%s", err, jsonHint)
		}
		return nil, &RecordError{Index: idx, Offset: start, Err: err}
	}
	return raw, nil
}

// Decode reads the next record into v (a pointer), strictly: unknown fields
// and wrong types are errors. It returns io.EOF at the clean end of the
// stream.
func (r *Reader) Decode(v any) error {
	raw, err := r.Next()
	if err != nil {
		return err
	}
	if err := canonical.Unmarshal(raw, v); err != nil {
		return &RecordError{Index: r.n, Offset: r.start, Err: err}
	}
	return nil
}

// ReadFile reads the next record as a File and validates it.
func (r *Reader) ReadFile() (File, error) {
	var f File
	if err := r.Decode(&f); err != nil {
		return File{}, err
	}
	if err := f.Validate(); err != nil {
		return File{}, &RecordError{Index: r.n, Offset: r.start, Err: err}
	}
	return f, nil
}
