// Package s3 is the S3-compatible object storage backend: a
// [storage.Backend] that keeps every object as one S3 object in a bucket,
// under a configurable prefix (DESIGN.md §7, docs/adr/0004, docs/adr/0007).
// It is built on the AWS SDK for Go v2 and works with AWS S3 and with
// self-hosted servers (MinIO, Garage, Ceph RGW, VersityGW, R2) through
// Options.Endpoint and path-style addressing.
//
// Only pkg/dataplane and the tools' wiring import this package; everything
// else reaches bytes through the data plane.
//
// # Key layout
//
// This comment, objectKey and tempKey are the one place where the layout
// of the bucket is defined:
//
//	<prefix>/<algorithm>/<hex[0:2]>/<hex[2:4]>/<hex>   committed objects (storage.Key)
//	<prefix>/tmp/<32 hex>                              multipart uploads and their
//	                                                   completed temporaries, in flight
//
// An empty prefix drops the leading "<prefix>/".
//
// # How a streamed put reaches its final key
//
// The address is known only at Commit, after the bytes are hashed, so a
// Writer cannot know the final key while it streams. It hashes every byte
// (identity.Hasher, both digests) and keeps the current part in a buffer of
// Options.PartSize bytes (default 8 MiB):
//
//   - An object that fits in one part never leaves memory before Commit:
//     Commit verifies the digest, asks HEAD whether the object exists (a
//     second put is then a no-op costing one request), and PUTs it straight
//     to its final key with If-None-Match: * and the whole object's SHA-256
//     as x-amz-checksum-sha256, which the server checks.
//   - A larger object becomes a multipart upload to a temporary key: each
//     full part is uploaded while the next one is filled (at most
//     Options.Concurrency parts in flight), each with its own SHA-256
//     checksum that the server checks. Commit uploads the last part,
//     verifies the digest (a mismatch aborts the upload: nothing is left),
//     asks HEAD whether the object exists (then aborts: a no-op), completes
//     the upload, copies the temporary object to its final key server-side
//     (CopyObject with If-None-Match: *, or UploadPartCopy ranges above
//     5 GiB) and deletes the temporary.
//
// A copy is atomic, so the final key never holds part of an object. Peak
// memory is (Concurrency+1) × PartSize per open Writer (24 MiB with the
// defaults), whatever the object's size.
//
// # Cleanup
//
// Cancel, a failed Commit and a cancelled context abort the multipart
// upload and delete the temporary key (with a fresh, bounded context, so
// that a cancelled caller still cleans up). A process that crashes leaves an
// upload or a temporary object under <prefix>/tmp/; [Backend.CleanStale]
// removes those older than an age (dataplane.OpenS3 runs it with
// DefaultStaleAge on every open) and [Backend.ListIncomplete] lists them. A
// bucket lifecycle rule aborting incomplete multipart uploads after a day
// is a good second line (docs/operator-s3.md); a rule must never expire the
// objects themselves.
package s3

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/artifactstore/artifact-store/pkg/identity"
	"github.com/artifactstore/artifact-store/pkg/storage"
)

// Defaults.
const (
	// DefaultPartSize is the multipart part size and the largest object
	// put in a single request.
	DefaultPartSize = 8 << 20
	// MinPartSize is S3's smallest part (all parts but the last).
	MinPartSize = 5 << 20
	// DefaultConcurrency is how many parts of one Writer are uploaded at
	// once while the next is filled.
	DefaultConcurrency = 2
	// DefaultMaxAttempts bounds the SDK's retries of throttling, 5xx and
	// network errors (attempts, not retries).
	DefaultMaxAttempts = 4
	// DefaultStaleAge is how old an upload or temporary must be before
	// CleanStale removes it: longer than any one put should take.
	DefaultStaleAge = 24 * time.Hour
	// maxCopy is the largest object CopyObject copies in one request;
	// above it Commit copies with UploadPartCopy.
	maxCopy = 5 << 30
	// cleanupTimeout bounds the requests that clean up after a failed or
	// cancelled write (they run on a fresh context).
	cleanupTimeout = 30 * time.Second
)

// Options configure Open. Bucket is required; the zero value of every
// other field is a usable default.
type Options struct {
	// ID names the backend in errors (its backend_id); default "s3".
	ID string
	// Bucket holds the objects. It must exist.
	Bucket string
	// Prefix is prepended to every key (with a "/"); leading and trailing
	// slashes are ignored.
	Prefix string
	// Region; default "us-east-1" (what most self-hosted servers accept).
	Region string
	// Endpoint is the server's base URL (http://127.0.0.1:9000); empty
	// means AWS S3.
	Endpoint string
	// PathStyle addresses the bucket as <endpoint>/<bucket>/<key> instead of
	// <bucket>.<endpoint>/<key>; self-hosted servers usually need it.
	PathStyle bool
	// PartSize is the multipart part size (default DefaultPartSize, at
	// least MinPartSize).
	PartSize int64
	// Concurrency is the number of parts of one Writer in flight
	// (default DefaultConcurrency).
	Concurrency int
	// MaxAttempts bounds the SDK's retries (default DefaultMaxAttempts).
	MaxAttempts int
	// MaxBackoff caps the delay between attempts (default the SDK's, 20 s).
	MaxBackoff time.Duration
	// Credentials, if not nil, replace the standard AWS chain (environment,
	// shared files, web identity, instance roles).
	Credentials aws.CredentialsProvider
	// HTTPClient, if not nil, sends the requests (tests count and corrupt
	// them with it).
	HTTPClient aws.HTTPClient
}

// Backend is the S3 backend. It is safe for concurrent use.
type Backend struct {
	id, bucket, base string // base is "" or "<prefix>/"
	endpoint         string // for Health's Detail
	client           *awss3.Client
	partSize         int64
	concurrency      int
	maxAttempts      int
	copyLimit        int64 // maxCopy; tests lower it
	bufs             sync.Pool

	// active holds this process's multipart uploads in flight (key →
	// upload id), so that ListIncomplete sees them even on a server that
	// does not list uploads.
	mu     sync.Mutex
	active map[string]string
}

var (
	_ storage.Backend          = (*Backend)(nil)
	_ storage.Lister           = (*Backend)(nil)
	_ storage.IncompleteLister = (*Backend)(nil)
	_ storage.Summer           = (*writer)(nil)
)

// Open builds the backend. It loads the AWS configuration (credentials
// from the standard chain unless opts.Credentials is set) but sends no
// request: an unreachable server shows in Health and in the first
// operation.
func Open(ctx context.Context, opts Options) (*Backend, error) {
	if opts.ID == "" {
		opts.ID = "s3"
	}
	if opts.Bucket == "" {
		return nil, fmt.Errorf("storage: %s: open: no bucket given", opts.ID)
	}
	if opts.Region == "" {
		opts.Region = "us-east-1"
	}
	if opts.PartSize == 0 {
		opts.PartSize = DefaultPartSize
	}
	if opts.PartSize < MinPartSize {
		return nil, fmt.Errorf("storage: %s: open: part size %d is below S3's minimum of %d", opts.ID, opts.PartSize, MinPartSize)
	}
	if opts.Concurrency <= 0 {
		opts.Concurrency = DefaultConcurrency
	}
	if opts.MaxAttempts <= 0 {
		opts.MaxAttempts = DefaultMaxAttempts
	}
	if opts.Endpoint != "" {
		u, err := url.Parse(opts.Endpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("storage: %s: open: endpoint must be an http:// or https:// URL with a host", opts.ID)
		}
		if u.User != nil {
			return nil, fmt.Errorf("storage: %s: open: endpoint must not carry credentials (use the AWS credential chain)", opts.ID)
		}
	}
	lo := []func(*awsconfig.LoadOptions) error{
		awsconfig.WithRegion(opts.Region),
		awsconfig.WithRetryer(func() aws.Retryer {
			return retry.NewStandard(func(o *retry.StandardOptions) {
				o.MaxAttempts = opts.MaxAttempts
				if opts.MaxBackoff > 0 {
					o.MaxBackoff = opts.MaxBackoff
				}
				// Bounded by MaxAttempts alone, not by a shared retry quota
				// that a burst of failures would exhaust for everyone.
				o.RateLimiter = ratelimit.None
			})
		}),
		// We send our own SHA-256 checksums; no extra CRC32 trailers.
		awsconfig.WithRequestChecksumCalculation(aws.RequestChecksumCalculationWhenRequired),
		awsconfig.WithResponseChecksumValidation(aws.ResponseChecksumValidationWhenRequired),
	}
	if opts.Credentials != nil {
		lo = append(lo, awsconfig.WithCredentialsProvider(opts.Credentials))
	}
	cfg, err := awsconfig.LoadDefaultConfig(ctx, lo...)
	if err != nil {
		return nil, fmt.Errorf("storage: %s: open: AWS configuration: %w", opts.ID, err)
	}
	client := awss3.NewFromConfig(cfg, func(o *awss3.Options) {
		if opts.Endpoint != "" {
			o.BaseEndpoint = aws.String(opts.Endpoint)
		}
		o.UsePathStyle = opts.PathStyle
		o.DisableLogOutputChecksumValidationSkipped = true
		if opts.HTTPClient != nil {
			o.HTTPClient = opts.HTTPClient
		}
	})
	base := strings.Trim(opts.Prefix, "/")
	if base != "" {
		base += "/"
	}
	b := &Backend{
		id: opts.ID, bucket: opts.Bucket, base: base, endpoint: opts.Endpoint,
		client: client, partSize: opts.PartSize, concurrency: opts.Concurrency,
		maxAttempts: opts.MaxAttempts, copyLimit: maxCopy, active: map[string]string{},
	}
	b.bufs.New = func() any { p := make([]byte, 0, b.partSize); return &p }
	return b, nil
}

// Close releases nothing today; it exists so that wiring can treat every
// backend alike.
func (b *Backend) Close() error { return nil }

func (b *Backend) err(op string, addr identity.Digest, err error) error {
	return &storage.Error{Backend: b.id, Op: op, Address: addr, Err: err}
}

// objectKey maps an address to its key: <prefix>/storage.Key(addr). Only
// blake3 and sha256 addresses are stored (the ones Commit can verify).
func (b *Backend) objectKey(addr identity.Digest) (string, error) {
	switch addr.Algorithm() {
	case identity.BLAKE3, identity.SHA256:
	default:
		if addr.IsZero() {
			return "", fmt.Errorf("%w: zero address", storage.ErrInvalidKey)
		}
		return "", fmt.Errorf("%w: algorithm %q is not stored by this backend", storage.ErrInvalidKey, string(addr.Algorithm()))
	}
	k, err := storage.Key(addr)
	if err != nil {
		return "", err
	}
	return b.base + k, nil
}

const tmpDir = "tmp/"

// tempKey returns a fresh temporary key <prefix>/tmp/<32 hex>.
func (b *Backend) tempKey() string {
	var r [16]byte
	rand.Read(r[:])
	return b.base + tmpDir + hex.EncodeToString(r[:])
}

// cleanupContext is a context for cleaning up after ctx failed or was
// cancelled: not cancelled with it, but bounded.
func cleanupContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
}

// exists reports whether key holds an object (HEAD).
func (b *Backend) exists(ctx context.Context, key string) (bool, int64, error) {
	out, err := b.client.HeadObject(ctx, &awss3.HeadObjectInput{Bucket: &b.bucket, Key: &key})
	if err != nil {
		err = b.mapErr(err)
		if errors.Is(err, storage.ErrNotFound) {
			return false, 0, nil
		}
		return false, 0, err
	}
	return true, aws.ToInt64(out.ContentLength), nil
}

// Create implements storage.Backend. It sends no request: the multipart
// upload starts when the first part is full.
func (b *Backend) Create(ctx context.Context) (storage.Writer, error) {
	if err := ctx.Err(); err != nil {
		return nil, b.err("create", identity.Digest{}, err)
	}
	wctx, cancel := context.WithCancel(ctx)
	w := &writer{b: b, parent: ctx, ctx: wctx, cancel: cancel, h: identity.NewHasher(), sem: make(chan struct{}, b.concurrency)}
	w.buf = b.getBuf()
	return w, nil
}

func (b *Backend) getBuf() *[]byte {
	p := b.bufs.Get().(*[]byte)
	*p = (*p)[:0]
	return p
}

type writer struct {
	b      *Backend
	parent context.Context // the caller's: its cancellation is reported as such
	ctx    context.Context // parent, also cancelled by abort to stop uploads
	cancel context.CancelFunc
	h      *identity.Hasher
	n      int64
	buf    *[]byte // the part being filled

	// The multipart upload, once the first part is full.
	key, uploadID string
	next          int32 // next part number
	sem           chan struct{}
	wg            sync.WaitGroup
	mu            sync.Mutex
	parts         []types.CompletedPart
	upErr         error // first part upload error

	err  error // first error: Commit refuses
	done bool
	// replace: Commit found a damaged object at the final key and overwrites it.
	replace bool
}

func (w *writer) Write(p []byte) (int, error) {
	if w.done {
		return 0, w.b.err("write", identity.Digest{}, storage.ErrWriterClosed)
	}
	if w.err != nil {
		return 0, w.err
	}
	if err := w.parent.Err(); err != nil {
		w.err = w.b.err("write", identity.Digest{}, err)
		return 0, w.err
	}
	if err := w.uploadError(); err != nil {
		w.err = w.b.err("write", identity.Digest{}, err)
		return 0, w.err
	}
	w.h.Write(p)
	n := 0
	for len(p) > 0 {
		buf := *w.buf
		k := min(len(p), cap(buf)-len(buf))
		*w.buf = append(buf, p[:k]...)
		p = p[k:]
		n += k
		w.n += int64(k)
		if int64(len(*w.buf)) == w.b.partSize {
			if err := w.flush(); err != nil {
				w.err = w.b.err("write", identity.Digest{}, err)
				return n, w.err
			}
		}
	}
	return n, nil
}

func (w *writer) uploadError() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.upErr
}

// flush hands the current buffer to an upload goroutine (starting the
// multipart upload first if needed) and takes a fresh one. It blocks while
// Concurrency parts are in flight.
func (w *writer) flush() error {
	if w.uploadID == "" {
		w.key = w.b.tempKey()
		out, err := w.b.client.CreateMultipartUpload(w.ctx, &awss3.CreateMultipartUploadInput{
			Bucket: &w.b.bucket, Key: &w.key, ChecksumAlgorithm: types.ChecksumAlgorithmSha256,
		})
		if err != nil {
			return w.b.mapErr(err)
		}
		w.uploadID = aws.ToString(out.UploadId)
		w.b.track(w.key, w.uploadID, true)
	}
	select {
	case w.sem <- struct{}{}:
	case <-w.ctx.Done():
		return w.ctx.Err()
	}
	w.next++
	num, buf := w.next, w.buf
	w.buf = w.b.getBuf()
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		defer func() { <-w.sem }()
		defer w.b.bufs.Put(buf)
		part := *buf
		sum := sha256.Sum256(part)
		cs := base64.StdEncoding.EncodeToString(sum[:])
		out, err := w.b.client.UploadPart(w.ctx, &awss3.UploadPartInput{
			Bucket: &w.b.bucket, Key: &w.key, UploadId: &w.uploadID, PartNumber: aws.Int32(num),
			Body: bytes.NewReader(part), ContentLength: aws.Int64(int64(len(part))),
			ChecksumAlgorithm: types.ChecksumAlgorithmSha256, ChecksumSHA256: &cs,
		}, unsignedPayload)
		w.mu.Lock()
		defer w.mu.Unlock()
		if err != nil {
			if w.upErr == nil {
				w.upErr = fmt.Errorf("part %d: %w", num, w.b.mapErr(err))
			}
			return
		}
		w.parts = append(w.parts, types.CompletedPart{ETag: out.ETag, PartNumber: aws.Int32(num), ChecksumSHA256: &cs})
	}()
	return nil
}

func (w *writer) Size() int64 { return w.n }

// Sum implements storage.Summer.
func (w *writer) Sum() identity.Sum { return w.h.Sum() }

func (w *writer) Cancel(ctx context.Context) error {
	if w.done {
		return nil
	}
	w.abort(ctx)
	return nil
}

// abort stops the part uploads, aborts the multipart upload and finishes
// the writer. It cleans up on a fresh context: the caller's may be the
// reason for aborting. Cleanup that fails is left to CleanStale.
func (w *writer) abort(ctx context.Context) {
	w.done = true
	w.cancel()
	w.wg.Wait()
	if w.uploadID != "" {
		cctx, cancel := cleanupContext(ctx)
		defer cancel()
		_, err := w.b.client.AbortMultipartUpload(cctx, &awss3.AbortMultipartUploadInput{Bucket: &w.b.bucket, Key: &w.key, UploadId: &w.uploadID})
		if err == nil || errors.Is(w.b.mapErr(err), storage.ErrNotFound) {
			w.b.track(w.key, w.uploadID, false)
		}
		// Otherwise (the server is gone) the upload stays listed by
		// ListIncomplete, and CleanStale removes it once the server is back.
	}
	w.release()
}

func (w *writer) release() {
	if w.buf != nil {
		w.b.bufs.Put(w.buf)
		w.buf = nil
	}
}

func (w *writer) Commit(ctx context.Context, addr identity.Digest) error {
	if w.done {
		return w.b.err("commit", addr, storage.ErrWriterClosed)
	}
	if err := w.commit(ctx, addr); err != nil {
		if !w.done {
			w.abort(ctx)
		}
		return w.b.err("commit", addr, err)
	}
	return nil
}

func (w *writer) commit(ctx context.Context, addr identity.Digest) error {
	if w.err != nil {
		return w.err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := w.parent.Err(); err != nil {
		return err
	}
	key, err := w.b.objectKey(addr)
	if err != nil {
		return err
	}
	sum := w.h.Sum()
	got := sum.BLAKE3
	if addr.Algorithm() == identity.SHA256 {
		got = sum.SHA256
	}
	if got != addr {
		return &storage.MismatchError{Want: addr, Got: got, Size: sum.Size}
	}
	// A part that failed is the error to report (not whatever the next
	// request to the same server says).
	if w.uploadID != "" {
		w.wg.Wait()
		if err := w.uploadError(); err != nil {
			return err
		}
	}
	// Already stored with the right size: a cheap no-op, the existing
	// object is kept. One of another size is damaged (truncated or
	// replaced behind our back): it is overwritten with the verified bytes,
	// without If-None-Match (issue 14 item 3). Only the size is checked:
	// re-reading the object would cost a download, and the bytes the server
	// holds were checked against their SHA-256 when they were written.
	ok, size, err := w.b.exists(ctx, key)
	if err != nil {
		return err
	}
	if ok && size == sum.Size {
		w.abort(ctx)
		return nil
	}
	w.replace = ok
	if w.uploadID == "" {
		return w.putSingle(ctx, key, sum)
	}
	return w.putMultipart(ctx, key)
}

// unsignedPayload leaves the body out of the request signature
// (x-amz-content-sha256: UNSIGNED-PAYLOAD) for the requests that carry
// x-amz-checksum-sha256: the server checks the bytes against that checksum,
// which is itself signed, so a second SHA-256 pass over every byte only to
// sign it would buy nothing.
func unsignedPayload(o *awss3.Options) {
	o.APIOptions = append(o.APIOptions, v4.SwapComputePayloadSHA256ForUnsignedPayloadMiddleware)
}

// putSingle PUTs the one buffered part straight to the final key.
func (w *writer) putSingle(ctx context.Context, key string, sum identity.Sum) error {
	cs := base64.StdEncoding.EncodeToString(sum.SHA256.Bytes())
	part := *w.buf
	_, err := w.b.client.PutObject(ctx, &awss3.PutObjectInput{
		Bucket: &w.b.bucket, Key: &key, Body: bytes.NewReader(part), ContentLength: aws.Int64(int64(len(part))),
		ChecksumAlgorithm: types.ChecksumAlgorithmSha256, ChecksumSHA256: &cs, IfNoneMatch: ifNoneMatch(w.replace),
	}, unsignedPayload)
	if err != nil && !w.b.lostRace(ctx, key, err) {
		return w.b.mapErr(err)
	}
	w.done = true
	w.cancel()
	w.release()
	return nil
}

// lostRace reports whether err is a conditional write refused because a
// concurrent writer stored the object first (412, or 409 from a server
// that saw both at once) and the object is indeed there now.
func (b *Backend) lostRace(ctx context.Context, key string, err error) bool {
	if s := httpStatus(err); s != 412 && s != 409 {
		return false
	}
	ok, _, herr := b.exists(ctx, key)
	return herr == nil && ok
}

// putMultipart uploads the last part, completes the upload at the
// temporary key, copies it to the final key and deletes the temporary.
func (w *writer) putMultipart(ctx context.Context, key string) error {
	if len(*w.buf) > 0 {
		if err := w.flush(); err != nil {
			return err
		}
	}
	w.wg.Wait()
	if err := w.uploadError(); err != nil {
		return err
	}
	sort.Slice(w.parts, func(i, j int) bool { return *w.parts[i].PartNumber < *w.parts[j].PartNumber })
	_, err := w.b.client.CompleteMultipartUpload(ctx, &awss3.CompleteMultipartUploadInput{
		Bucket: &w.b.bucket, Key: &w.key, UploadId: &w.uploadID,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: w.parts},
	})
	if err != nil {
		return w.b.mapErr(err)
	}
	// The upload is complete: from here on the temporary is an object.
	w.b.track(w.key, w.uploadID, false)
	w.uploadID = ""
	w.done = true
	w.cancel()
	w.release()
	err = w.b.copy(ctx, w.key, key, w.n, w.replace)
	cctx, cancel := cleanupContext(ctx)
	defer cancel()
	if _, derr := w.b.client.DeleteObject(cctx, &awss3.DeleteObjectInput{Bucket: &w.b.bucket, Key: &w.key}); derr != nil && err == nil {
		// The object is published; the temporary is left to CleanStale.
		return nil
	}
	return err
}

// ifNoneMatch is the If-None-Match header of a write to a final key: "*"
// (never replace an object) unless replace is set to overwrite a damaged one.
func ifNoneMatch(replace bool) *string {
	if replace {
		return nil
	}
	return aws.String("*")
}

// copy copies src to dst server-side, refusing to replace an existing dst
// unless replace is set (dst is a damaged object being repaired).
func (b *Backend) copy(ctx context.Context, src, dst string, size int64, replace bool) error {
	source := copySource(b.bucket, src)
	if size <= b.copyLimit {
		_, err := b.client.CopyObject(ctx, &awss3.CopyObjectInput{
			Bucket: &b.bucket, Key: &dst, CopySource: &source,
			ChecksumAlgorithm: types.ChecksumAlgorithmSha256, IfNoneMatch: ifNoneMatch(replace),
		})
		if err != nil && !b.lostRace(ctx, dst, err) {
			return b.mapErr(err)
		}
		return nil
	}
	// No checksum algorithm here: the parts are copied server-side, and
	// servers would ask each UploadPartCopy for a checksum of a range we
	// never hashed on its own.
	out, err := b.client.CreateMultipartUpload(ctx, &awss3.CreateMultipartUploadInput{Bucket: &b.bucket, Key: &dst})
	if err != nil {
		return b.mapErr(err)
	}
	id := out.UploadId
	abort := func() {
		cctx, cancel := cleanupContext(ctx)
		defer cancel()
		b.client.AbortMultipartUpload(cctx, &awss3.AbortMultipartUploadInput{Bucket: &b.bucket, Key: &dst, UploadId: id})
	}
	var parts []types.CompletedPart
	chunk := b.copyLimit
	for off, num := int64(0), int32(1); off < size; off, num = off+chunk, num+1 {
		end := min(off+chunk, size) - 1
		pc, err := b.client.UploadPartCopy(ctx, &awss3.UploadPartCopyInput{
			Bucket: &b.bucket, Key: &dst, UploadId: id, PartNumber: aws.Int32(num),
			CopySource: &source, CopySourceRange: aws.String(fmt.Sprintf("bytes=%d-%d", off, end)),
		})
		if err != nil {
			abort()
			return b.mapErr(err)
		}
		cp := types.CompletedPart{PartNumber: aws.Int32(num)}
		if r := pc.CopyPartResult; r != nil {
			cp.ETag, cp.ChecksumSHA256 = r.ETag, r.ChecksumSHA256
		}
		parts = append(parts, cp)
	}
	_, err = b.client.CompleteMultipartUpload(ctx, &awss3.CompleteMultipartUploadInput{
		Bucket: &b.bucket, Key: &dst, UploadId: id, IfNoneMatch: ifNoneMatch(replace),
		MultipartUpload: &types.CompletedMultipartUpload{Parts: parts},
	})
	if err != nil {
		abort()
		if b.lostRace(ctx, dst, err) {
			return nil
		}
		return b.mapErr(err)
	}
	return nil
}

// copySource is the x-amz-copy-source value: bucket/key, URL-encoded.
func copySource(bucket, key string) string {
	segs := strings.Split(key, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return bucket + "/" + strings.Join(segs, "/")
}

// track records (on) or forgets an upload in flight.
func (b *Backend) track(key, id string, on bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if on {
		b.active[key] = id
	} else {
		delete(b.active, key)
	}
}

// Get implements storage.Backend: one ranged GET; only when the server
// refuses the range (offset at or past the end) a HEAD tells "empty read at
// the end" from ErrInvalidRange.
func (b *Backend) Get(ctx context.Context, addr identity.Digest, offset, length int64) (io.ReadCloser, error) {
	if err := storage.CheckRangeArgs(offset, length); err != nil {
		return nil, b.err("get", addr, err)
	}
	key, err := b.objectKey(addr)
	if err != nil {
		return nil, b.err("get", addr, err)
	}
	if err := ctx.Err(); err != nil {
		return nil, b.err("get", addr, err)
	}
	if length == 0 {
		return b.emptyAt(ctx, addr, key, offset)
	}
	in := &awss3.GetObjectInput{Bucket: &b.bucket, Key: &key}
	ranged := offset > 0 || length > 0
	switch {
	case length > 0:
		in.Range = aws.String(fmt.Sprintf("bytes=%d-%d", offset, offset+length-1))
	case offset > 0:
		in.Range = aws.String(fmt.Sprintf("bytes=%d-", offset))
	}
	out, err := b.client.GetObject(ctx, in)
	if err != nil {
		err = b.mapErr(err)
		if errors.Is(err, storage.ErrInvalidRange) {
			return b.emptyAt(ctx, addr, key, offset)
		}
		return nil, b.err("get", addr, err)
	}
	n := aws.ToInt64(out.ContentLength)
	if ranged && out.ContentRange == nil {
		// The server ignored the range and sent the whole object.
		want, err := storage.CheckRange(offset, length, n)
		if err != nil {
			out.Body.Close()
			return nil, b.err("get", addr, err)
		}
		if _, err := io.CopyN(io.Discard, out.Body, offset); err != nil {
			out.Body.Close()
			return nil, b.err("get", addr, fmt.Errorf("skipping to offset %d: %w", offset, err))
		}
		n = want
	}
	return &reader{ctx: ctx, body: out.Body, left: n, addr: addr, b: b}, nil
}

// emptyAt serves a read that yields no bytes: offset == size or length 0
// (an empty reader), offset > size (ErrInvalidRange), or a missing object.
func (b *Backend) emptyAt(ctx context.Context, addr identity.Digest, key string, offset int64) (io.ReadCloser, error) {
	ok, size, err := b.exists(ctx, key)
	if err != nil {
		return nil, b.err("get", addr, err)
	}
	if !ok {
		return nil, b.err("get", addr, storage.ErrNotFound)
	}
	if _, err := storage.CheckRange(offset, 0, size); err != nil {
		return nil, b.err("get", addr, err)
	}
	return io.NopCloser(bytes.NewReader(nil)), nil
}

// reader delivers exactly left bytes or an error: a body that ends early
// is io.ErrUnexpectedEOF, never a silent short read.
type reader struct {
	ctx  context.Context
	body io.ReadCloser
	left int64
	addr identity.Digest
	b    *Backend
}

func (r *reader) Read(p []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	if r.left <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > r.left {
		p = p[:r.left]
	}
	n, err := r.body.Read(p)
	r.left -= int64(n)
	switch {
	case err == io.EOF && r.left > 0:
		return n, r.b.err("get", r.addr, fmt.Errorf("response body ended %d bytes early: %w", r.left, io.ErrUnexpectedEOF))
	case err == io.EOF:
		return n, nil // the next Read reports io.EOF
	case err != nil:
		return n, r.b.err("get", r.addr, err)
	}
	return n, nil
}

func (r *reader) Close() error { return r.body.Close() }

// Head implements storage.Backend.
func (b *Backend) Head(ctx context.Context, addr identity.Digest) (storage.Info, error) {
	key, err := b.objectKey(addr)
	if err != nil {
		return storage.Info{}, b.err("head", addr, err)
	}
	if err := ctx.Err(); err != nil {
		return storage.Info{}, b.err("head", addr, err)
	}
	ok, size, err := b.exists(ctx, key)
	if err != nil {
		return storage.Info{}, b.err("head", addr, err)
	}
	if !ok {
		return storage.Info{}, b.err("head", addr, storage.ErrNotFound)
	}
	return storage.Info{Address: addr, Size: size}, nil
}

// Delete implements storage.Backend. DeleteObject succeeds on a missing key,
// so a HEAD first reports ErrNotFound.
func (b *Backend) Delete(ctx context.Context, addr identity.Digest) error {
	if _, err := b.Head(ctx, addr); err != nil {
		var se *storage.Error
		if errors.As(err, &se) {
			se.Op = "delete"
		}
		return err
	}
	key, _ := b.objectKey(addr)
	if _, err := b.client.DeleteObject(ctx, &awss3.DeleteObjectInput{Bucket: &b.bucket, Key: &key}); err != nil {
		return b.err("delete", addr, b.mapErr(err))
	}
	return nil
}

// Health implements storage.Backend: HeadBucket proves that the bucket is
// reachable and the credentials accepted; Detail says where and how long
// it took. Capacity is unknown (-1).
func (b *Backend) Health(ctx context.Context) (storage.Health, error) {
	if err := ctx.Err(); err != nil {
		return storage.Health{}, err
	}
	h := storage.Health{FreeBytes: -1, TotalBytes: -1}
	where := "s3 bucket " + b.bucket
	if b.base != "" {
		where += " prefix " + strings.TrimSuffix(b.base, "/")
	}
	if b.endpoint != "" {
		where += " at " + b.endpoint
	}
	t0 := time.Now()
	_, err := b.client.HeadBucket(ctx, &awss3.HeadBucketInput{Bucket: &b.bucket})
	lat := time.Since(t0)
	if err != nil {
		if cerr := ctx.Err(); cerr != nil {
			return storage.Health{}, cerr
		}
		if httpStatus(err) == 404 {
			err = fmt.Errorf("%w: bucket does not exist (%v)", storage.ErrUnavailable, err)
		} else {
			err = b.mapErr(err)
		}
		h.Detail = fmt.Sprintf("%s: HeadBucket failed after %s: %v", where, lat.Round(time.Millisecond), err)
		return h, nil
	}
	h.Reachable = true
	h.Detail = fmt.Sprintf("%s: HeadBucket %s", where, lat.Round(time.Millisecond))
	return h, nil
}

// List implements storage.Lister. Keys that are not objects of the layout
// are skipped.
func (b *Backend) List(ctx context.Context, fn func(storage.Info) error) error {
	for _, alg := range []identity.Algorithm{identity.BLAKE3, identity.SHA256} {
		err := b.listObjects(ctx, b.base+string(alg)+"/", func(o types.Object) error {
			key := aws.ToString(o.Key)
			rest := strings.TrimPrefix(key, b.base)
			addr, err := identity.Parse(string(alg) + ":" + rest[strings.LastIndexByte(rest, '/')+1:])
			if err != nil {
				return nil
			}
			if k, _ := b.objectKey(addr); k != key {
				return nil
			}
			return fn(storage.Info{Address: addr, Size: aws.ToInt64(o.Size)})
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// listObjects calls fn for every object under prefix. Errors of fn are
// returned as they are; listing errors are wrapped.
func (b *Backend) listObjects(ctx context.Context, prefix string, fn func(types.Object) error) error {
	p := awss3.NewListObjectsV2Paginator(b.client, &awss3.ListObjectsV2Input{Bucket: &b.bucket, Prefix: &prefix})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return b.err("list", identity.Digest{}, b.mapErr(err))
		}
		for _, o := range page.Contents {
			if err := fn(o); err != nil {
				return err
			}
		}
	}
	return nil
}

// listUploads calls fn for every multipart upload under prefix. It lists
// the whole bucket's uploads and filters them here: MinIO answers a
// ListMultipartUploads with a prefix that is not a whole key with nothing.
func (b *Backend) listUploads(ctx context.Context, prefix string, fn func(types.MultipartUpload) error) error {
	in := &awss3.ListMultipartUploadsInput{Bucket: &b.bucket}
	for {
		page, err := b.client.ListMultipartUploads(ctx, in)
		if err != nil {
			return b.err("list", identity.Digest{}, b.mapErr(err))
		}
		for _, u := range page.Uploads {
			if !strings.HasPrefix(aws.ToString(u.Key), prefix) {
				continue
			}
			if err := fn(u); err != nil {
				return err
			}
		}
		if !aws.ToBool(page.IsTruncated) || (page.NextKeyMarker == nil && page.NextUploadIdMarker == nil) {
			return nil
		}
		in.KeyMarker, in.UploadIdMarker = page.NextKeyMarker, page.NextUploadIdMarker
	}
}

// ListIncomplete implements storage.IncompleteLister: multipart uploads
// ("upload <key> <upload id>") and temporary objects ("object <key>")
// under <prefix>/tmp/. Uploads are those the server lists and, in case a
// server lists none, those this process has in flight.
func (b *Backend) ListIncomplete(ctx context.Context, fn func(name string) error) error {
	seen := map[string]bool{}
	err := b.listUploads(ctx, b.base+tmpDir, func(u types.MultipartUpload) error {
		name := "upload " + aws.ToString(u.Key) + " " + aws.ToString(u.UploadId)
		seen[name] = true
		return fn(name)
	})
	if err != nil {
		return err
	}
	b.mu.Lock()
	var mine []string
	for k, id := range b.active {
		if name := "upload " + k + " " + id; !seen[name] {
			mine = append(mine, name)
		}
	}
	b.mu.Unlock()
	sort.Strings(mine)
	for _, name := range mine {
		if err := fn(name); err != nil {
			return err
		}
	}
	return b.listObjects(ctx, b.base+tmpDir, func(o types.Object) error {
		return fn("object " + aws.ToString(o.Key))
	})
}

// CleanStale aborts multipart uploads and deletes temporary objects under
// <prefix>/tmp/ that are older than age (by the server's clock: an upload's
// initiation, an object's last modification), the remains of writers that
// crashed or lost their connection. age must exceed the longest put, or a
// put in flight loses its upload and fails (it never publishes a partial
// object). It returns how many it removed.
func (b *Backend) CleanStale(ctx context.Context, age time.Duration) (int, error) {
	removed := 0
	cutoff := time.Now().Add(-age)
	var errs []error
	err := b.listUploads(ctx, b.base+tmpDir, func(u types.MultipartUpload) error {
		if u.Initiated != nil && u.Initiated.After(cutoff) {
			return nil
		}
		_, err := b.client.AbortMultipartUpload(ctx, &awss3.AbortMultipartUploadInput{Bucket: &b.bucket, Key: u.Key, UploadId: u.UploadId})
		if err != nil {
			errs = append(errs, b.mapErr(err))
		} else {
			removed++
		}
		return ctx.Err()
	})
	if err != nil {
		return removed, err
	}
	err = b.listObjects(ctx, b.base+tmpDir, func(o types.Object) error {
		if o.LastModified != nil && o.LastModified.After(cutoff) {
			return nil
		}
		_, err := b.client.DeleteObject(ctx, &awss3.DeleteObjectInput{Bucket: &b.bucket, Key: o.Key})
		if err != nil {
			errs = append(errs, b.mapErr(err))
		} else {
			removed++
		}
		return ctx.Err()
	})
	if err == nil && len(errs) > 0 {
		err = b.err("clean", identity.Digest{}, errors.Join(errs...))
	}
	return removed, err
}
