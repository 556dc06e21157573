package registry

// The store as an OCI registry (docs/adr/0012-oci-distribution-api.md):
// blobs linked into repositories, manifests stored byte for byte, movable
// tags, referrers by subject, and upload sessions. Every change is one
// transaction of v1.oci.* events applied by the one view writer
// (views_oci.go), so replay rebuilds these views byte for byte like the
// package views. The HTTP surface is pkg/ociserve; this file knows nothing of
// HTTP.
//
// Digests here are OCI digests (go-digest: "sha256:…", "sha512:…"), the
// names clients use. The bytes behind each are an ordinary store object,
// named by its BLAKE3 content address in storage_locations; both the
// client's digest and the store's two digests are computed in the one pass
// of the data plane ingest.

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"strings"
	"time"

	"github.com/artifactstore/artifact-store/pkg/dataplane"
	"github.com/artifactstore/artifact-store/pkg/events"
	"github.com/artifactstore/artifact-store/pkg/identity"
	"github.com/artifactstore/artifact-store/pkg/ref"
	"github.com/opencontainers/go-digest"

	_ "crypto/sha256" // go-digest's sha256
	_ "crypto/sha512" // go-digest's sha512
)

// OCI event types (docs/events.md lists payloads).
const (
	TypeOCIBlobLinked      = "v1.oci.blob.linked"
	TypeOCIBlobUnlinked    = "v1.oci.blob.unlinked"
	TypeOCIManifestPut     = "v1.oci.manifest.put"
	TypeOCIManifestDeleted = "v1.oci.manifest.deleted"
	TypeOCITagSet          = "v1.oci.tag.set"
	TypeOCITagDeleted      = "v1.oci.tag.deleted"
	TypeOCIUploadStarted   = "v1.oci.upload.started"
	TypeOCIUploadCancelled = "v1.oci.upload.cancelled"
)

// ociEventPrefix is the namespace of the OCI event types.
const ociEventPrefix = "v1.oci."

type ociBlobLinked struct {
	Repository string   `cbor:"repository"`
	Digest     string   `cbor:"digest"`
	Location   location `cbor:"location"`
	Upload     string   `cbor:"upload"`       // the upload session it completes, or ""
	From       string   `cbor:"mounted_from"` // the repository it was mounted from, or ""
}

type ociBlobUnlinked struct {
	Repository string `cbor:"repository"`
	Digest     string `cbor:"digest"`
}

type ociManifestPut struct {
	Repository   string            `cbor:"repository"`
	Digest       string            `cbor:"digest"`
	MediaType    string            `cbor:"media_type"`
	ArtifactType string            `cbor:"artifact_type"`
	Subject      string            `cbor:"subject"` // "" when none
	Annotations  map[string]string `cbor:"annotations"`
	Location     location          `cbor:"location"`
}

type ociManifestDeleted struct {
	Repository string   `cbor:"repository"`
	Digest     string   `cbor:"digest"`
	Tags       []string `cbor:"tags"` // the tags that pointed at it, removed with it
}

type ociTagSet struct {
	Repository string `cbor:"repository"`
	Tag        string `cbor:"tag"`
	Digest     string `cbor:"digest"`
	Previous   string `cbor:"previous"` // "" for a new tag
}

type ociTagDeleted struct {
	Repository string `cbor:"repository"`
	Tag        string `cbor:"tag"`
	Digest     string `cbor:"digest"`
}

type ociUploadStarted struct {
	Repository string `cbor:"repository"`
	ID         string `cbor:"id"`
}

type ociUploadCancelled struct {
	Repository string `cbor:"repository"`
	ID         string `cbor:"id"`
	Reason     string `cbor:"reason"`
}

// OCIReferenceSources is the SQL, for the garbage collector, that lists
// every content address the OCI views keep alive: each blob linked into a
// repository and each stored manifest. Unfinished uploads hold their bytes
// outside the backend (see pkg/ociserve) and reference no object; they are
// found by AbandonedOCIUploads instead. The query takes no arguments and
// returns one text column, content_address.
const OCIReferenceSources = `SELECT content_address FROM oci_blobs UNION SELECT content_address FROM oci_manifests`

// WithActor returns a Registry that records actor as who caused its
// events and shares everything else with r: a server acting for many
// callers makes one per request.
func (r *Registry) WithActor(actor string) *Registry {
	c := *r
	c.opts.Actor = actor
	return &c
}

// OCIBlob is a blob linked into a repository.
type OCIBlob struct {
	Repository     string
	Digest         digest.Digest   // the client's name for it
	ContentAddress identity.Digest // the store's
	Size           int64

	// corrupt is what OCIBlobInfo read of the object's scrub state, so
	// OpenOCIBlob need not read it again: "" unknown, "ok", or the
	// recorded detail of a corruption.
	corrupt string
}

// Sum returns the blob's dual digest when its OCI digest is a SHA-256 one
// (the SHA-256 half is then the client's name), for Input.Stored.
func (b OCIBlob) Sum() (identity.Sum, bool) {
	if b.Digest.Algorithm() != digest.SHA256 {
		return identity.Sum{}, false
	}
	sha, err := identity.Parse(b.Digest.String())
	if err != nil {
		return identity.Sum{}, false
	}
	return identity.Sum{BLAKE3: b.ContentAddress, SHA256: sha, Size: b.Size}, true
}

// CheckRepository reports whether s is a valid OCI repository name that
// is also a package name: pkg/ref's name rule and the distribution spec's
// path grammar [a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(/…)* (so no separator at
// either end of a component, and no "..", "._" or "___").
func CheckRepository(s string) error {
	if err := ref.CheckName(s); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	bad := func(why string) error { return fmt.Errorf("%w: repository name %q: %s", ErrInvalid, s, why) }
	for seg := range strings.SplitSeq(s, "/") {
		last := seg[len(seg)-1]
		if last == '.' || last == '_' || last == '-' {
			return bad("a component must end with a-z or 0-9")
		}
		for i := 0; i < len(seg); {
			if isAlnum(seg[i]) {
				i++
				continue
			}
			j := i
			for j < len(seg) && !isAlnum(seg[j]) {
				j++
			}
			switch sep := seg[i:j]; {
			case sep == "." || sep == "_" || sep == "__":
			case strings.Trim(sep, "-") == "":
			default:
				return bad(fmt.Sprintf("separator %q not allowed (one '.', '_', '__' or a run of '-')", sep))
			}
			i = j
		}
	}
	return nil
}

func isAlnum(c byte) bool { return 'a' <= c && c <= 'z' || '0' <= c && c <= '9' }

// CheckOCIDigest reports whether d is a digest the OCI API accepts: a
// well-formed sha256 or sha512 digest (lowercase hex of the right length).
func CheckOCIDigest(d digest.Digest) error {
	if err := d.Validate(); err != nil {
		return fmt.Errorf("%w: digest %q: %w", ErrInvalid, truncate(string(d)), err)
	}
	switch d.Algorithm() {
	case digest.SHA256, digest.SHA512:
		return nil
	}
	return fmt.Errorf("%w: digest %q: algorithm %s not supported (sha256, sha512)", ErrInvalid, truncate(string(d)), d.Algorithm())
}

func truncate(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}

// digestReader passes a stream through while hashing it with the
// algorithm of want, and at its end returns an error wrapping
// ErrDigestMismatch instead of io.EOF when the bytes do not match: the data
// plane then treats the stream as failed and stores nothing.
type digestReader struct {
	r    io.Reader
	h    hash.Hash
	want digest.Digest
}

func (d *digestReader) Read(p []byte) (int, error) {
	n, err := d.r.Read(p)
	d.h.Write(p[:n])
	if err == io.EOF {
		if got := digest.NewDigest(d.want.Algorithm(), d.h); got != d.want {
			return n, fmt.Errorf("registry: %w: bytes hash to %s, not %s", dataplane.ErrDigestMismatch, got, d.want)
		}
	}
	return n, err
}

// ingestOCI stores src through the data plane, checking it against d (the
// client's digest) and size (-1: unknown) in the same pass as the store's
// own digests. A mismatch stores nothing and wraps ErrDigestMismatch.
func (r *Registry) ingestOCI(ctx context.Context, d digest.Digest, src io.Reader, size int64) (dataplane.IngestResult, error) {
	if err := CheckOCIDigest(d); err != nil {
		return dataplane.IngestResult{}, err
	}
	x := &dataplane.Expected{Size: size, SizeKnown: size >= 0}
	if d.Algorithm() == digest.SHA256 {
		var err error
		if x.SHA256, err = identity.Parse(d.String()); err != nil {
			return dataplane.IngestResult{}, fmt.Errorf("%w: %w", ErrInvalid, err)
		}
	} else {
		src = &digestReader{r: src, h: d.Algorithm().Hash(), want: d}
	}
	res, err := r.dp.IngestStream(ctx, src, dataplane.IngestOptions{Expect: x})
	if err != nil {
		return dataplane.IngestResult{}, fmt.Errorf("registry: store %s: %w", truncate(string(d)), err)
	}
	return res, nil
}

// PutOCIBlob stores src as the blob d of repository repo and links it
// there. size is the declared length (-1 if unknown). upload, if not "",
// is the upload session this completes (it must belong to repo; it is
// closed in the same transaction). Bytes that do not match d or size are
// refused with an error wrapping ErrDigestMismatch and nothing is stored or
// recorded. Putting a blob the repository already has changes nothing.
func (r *Registry) PutOCIBlob(ctx context.Context, repo string, d digest.Digest, src io.Reader, size int64, upload string) (OCIBlob, error) {
	if err := CheckRepository(repo); err != nil {
		return OCIBlob{}, err
	}
	res, err := r.ingestOCI(ctx, d, src, size)
	if err != nil {
		return OCIBlob{}, err
	}
	b := OCIBlob{Repository: repo, Digest: d, ContentAddress: res.Sum.BLAKE3, Size: res.Sum.Size}
	err = r.mutate(ctx, func(tx *sql.Tx, emit func(string, any) (events.Event, error)) error {
		if upload != "" {
			if err := checkUpload(ctx, tx, repo, upload); err != nil {
				return err
			}
		} else if _, err := lookupOCIBlob(ctx, tx, repo, d); err == nil {
			return nil
		} else if !errors.Is(err, ErrNotFound) {
			return err
		}
		if err := r.claimOCI(ctx, tx, emit, res.Sum.BLAKE3); err != nil {
			return err
		}
		_, err := emit(TypeOCIBlobLinked, ociBlobLinked{Repository: repo, Digest: d.String(), Location: locationOf(res), Upload: upload})
		return err
	})
	return b, err
}

// MountOCIBlob links blob d, already in the store, into repo without
// moving bytes: from the repository from, or, with from "", from any
// repository that has it or any stored object with that SHA-256 (a
// package's file). ErrNotFound when there is nothing to mount (the client
// then uploads).
func (r *Registry) MountOCIBlob(ctx context.Context, repo string, d digest.Digest, from string) (OCIBlob, error) {
	if err := CheckRepository(repo); err != nil {
		return OCIBlob{}, err
	}
	if err := CheckOCIDigest(d); err != nil {
		return OCIBlob{}, err
	}
	if from != "" {
		if err := CheckRepository(from); err != nil {
			return OCIBlob{}, err
		}
	}
	var b OCIBlob
	err := r.mutate(ctx, func(tx *sql.Tx, emit func(string, any) (events.Event, error)) error {
		if have, err := lookupOCIBlob(ctx, tx, repo, d); err == nil {
			b = have
			return nil
		} else if !errors.Is(err, ErrNotFound) {
			return err
		}
		var ca string
		var err error
		switch {
		case from != "":
			err = tx.QueryRowContext(ctx, `SELECT content_address FROM oci_blobs WHERE repository = $1 AND digest = $2`, from, d.String()).Scan(&ca)
		default:
			err = tx.QueryRowContext(ctx, `SELECT content_address FROM oci_blobs WHERE digest = $1 ORDER BY created_seq LIMIT 1`, d.String()).Scan(&ca)
			if errors.Is(err, sql.ErrNoRows) && d.Algorithm() == digest.SHA256 {
				err = tx.QueryRowContext(ctx, `SELECT content_address FROM storage_locations WHERE digest_sha256 = $1 ORDER BY created_seq LIMIT 1`, d.Encoded()).Scan(&ca)
			}
		}
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("%w: blob %s to mount into %s", ErrNotFound, d, repo)
		}
		if err != nil {
			return fmt.Errorf("registry: mount %s: %w", d, err)
		}
		loc, err := lookupLocation(ctx, tx, ca, r.dp.BackendID())
		if err != nil {
			return err
		}
		b = OCIBlob{Repository: repo, Digest: d, ContentAddress: loc.ContentAddress, Size: int64(loc.Size)}
		if err := r.claimOCI(ctx, tx, emit, loc.ContentAddress); err != nil {
			return err
		}
		_, err = emit(TypeOCIBlobLinked, ociBlobLinked{Repository: repo, Digest: d.String(), Location: loc, From: from})
		return err
	})
	return b, err
}

// lookupLocation reads the storage_locations row of an object, preferring
// backend.
func lookupLocation(ctx context.Context, q queryRower, ca, backend string) (location, error) {
	var l location
	var addr, s2, key, be string
	var size int64
	err := q.QueryRowContext(ctx, `SELECT content_address, digest_sha256, size, backend_id, key FROM storage_locations
		WHERE content_address = $1 ORDER BY CASE WHEN backend_id = $2 THEN 0 ELSE 1 END LIMIT 1`, ca, backend).
		Scan(&addr, &s2, &size, &be, &key)
	if errors.Is(err, sql.ErrNoRows) {
		return l, fmt.Errorf("%w: object %s has no storage location", ErrNotFound, ca)
	}
	if err != nil {
		return l, fmt.Errorf("registry: location of %s: %w", ca, err)
	}
	if l.ContentAddress, err = identity.Parse(addr); err != nil {
		return l, err
	}
	if l.SHA256, err = identity.Parse("sha256:" + s2); err != nil {
		return l, err
	}
	l.Size, l.BackendID, l.Key = uint64(size), be, key
	return l, nil
}

func lookupOCIBlob(ctx context.Context, q queryRower, repo string, d digest.Digest) (OCIBlob, error) {
	var ca string
	b := OCIBlob{Repository: repo, Digest: d}
	row := q.QueryRowContext(ctx, `SELECT content_address, size FROM oci_blobs WHERE repository = $1 AND digest = $2`, repo, d.String())
	if err := scanOCIBlob(row, &b, &ca); err != nil {
		return OCIBlob{}, err
	}
	return b, nil
}

// scanOCIBlob scans row's content address (into *ca, then parsed) and size
// into b, then anything else into more; no row is ErrNotFound.
func scanOCIBlob(row *sql.Row, b *OCIBlob, ca *string, more ...any) error {
	err := row.Scan(append([]any{ca, &b.Size}, more...)...)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("%w: blob %s in %s", ErrNotFound, truncate(string(b.Digest)), b.Repository)
	}
	if err != nil {
		return fmt.Errorf("registry: blob %s in %s: %w", b.Digest, b.Repository, err)
	}
	b.ContentAddress, err = identity.Parse(*ca)
	return err
}

// blobInfoQuery reads an OCI blob and, in the same statement, whether a
// scrub found its object corrupt on the registry's backend: the one query
// of a blob GET.
const blobInfoQuery = `SELECT b.content_address, b.size, COALESCE(c.detail, '')
FROM oci_blobs b LEFT JOIN object_checks c
  ON c.content_address = b.content_address AND c.backend_id = $3 AND c.state = 'corrupt'
WHERE b.repository = $1 AND b.digest = $2`

// OCIBlobInfo returns blob d of repo, or ErrNotFound. It also reads the
// object's scrub state, which OpenOCIBlob of the returned value uses.
func (r *Registry) OCIBlobInfo(ctx context.Context, repo string, d digest.Digest) (OCIBlob, error) {
	var ca, detail string
	b := OCIBlob{Repository: repo, Digest: d}
	row := r.db.QueryRowPrepared(ctx, blobInfoQuery, repo, d.String(), r.dp.BackendID())
	if err := scanOCIBlob(row, &b, &ca, &detail); err != nil {
		return OCIBlob{}, err
	}
	b.corrupt = "ok"
	if detail != "" {
		b.corrupt = detail
	}
	return b, nil
}

// OpenOCIBlob returns length bytes (-1: to the end) of blob d of repo from
// offset, with the range rules of dataplane.ServeObject. A blob a scrub
// found corrupt is refused with ErrIntegrity (as OCIBlobInfo read it, when
// b came from there).
func (r *Registry) OpenOCIBlob(ctx context.Context, b OCIBlob, offset, length int64) (io.ReadCloser, error) {
	switch b.corrupt {
	case "":
		if err := r.checkNotCorrupt(ctx, b.ContentAddress); err != nil { // scrubrun.go
			return nil, err
		}
	case "ok":
	default:
		return nil, corruptError(b.ContentAddress, b.corrupt)
	}
	rc, err := r.dp.ServeObject(ctx, b.ContentAddress, offset, length)
	if err != nil {
		return nil, fmt.Errorf("registry: blob %s in %s: %w", b.Digest, b.Repository, err)
	}
	return rc, nil
}

// DeleteOCIBlob unlinks blob d from repo (the bytes stay until the
// garbage collector finds nothing references them). ErrNotFound if repo
// does not have it.
func (r *Registry) DeleteOCIBlob(ctx context.Context, repo string, d digest.Digest) error {
	return r.mutate(ctx, func(tx *sql.Tx, emit func(string, any) (events.Event, error)) error {
		if _, err := lookupOCIBlob(ctx, tx, repo, d); err != nil {
			return err
		}
		_, err := emit(TypeOCIBlobUnlinked, ociBlobUnlinked{Repository: repo, Digest: d.String()})
		return err
	})
}

// OCIManifest is a manifest stored in a repository.
type OCIManifest struct {
	Repository     string
	Digest         digest.Digest
	MediaType      string
	ArtifactType   string        // the artifactType field, else an image's config media type, else ""
	Subject        digest.Digest // "" when none
	Annotations    map[string]string
	Size           int64
	ContentAddress identity.Digest
}

// PutOCIManifest stores body, a manifest, in repo under its digest d (the
// caller has computed it with the algorithm it was asked for; a body that
// does not hash to d is refused with ErrDigestMismatch) and points each of
// tags at it. The bytes are stored exactly as given. meta is what
// ParseOCIManifest found in body.
func (r *Registry) PutOCIManifest(ctx context.Context, repo string, tags []string, d digest.Digest, meta OCIManifestMeta, body []byte) (OCIManifest, error) {
	if err := CheckRepository(repo); err != nil {
		return OCIManifest{}, err
	}
	for _, tag := range tags {
		if err := ref.CheckTag(tag); err != nil {
			return OCIManifest{}, fmt.Errorf("%w: %w", ErrInvalid, err)
		}
	}
	res, err := r.ingestOCI(ctx, d, bytes.NewReader(body), int64(len(body)))
	if err != nil {
		return OCIManifest{}, err
	}
	m := OCIManifest{Repository: repo, Digest: d, MediaType: meta.MediaType, ArtifactType: meta.ArtifactType,
		Subject: meta.Subject, Annotations: meta.Annotations, Size: int64(len(body)), ContentAddress: res.Sum.BLAKE3}
	err = r.mutate(ctx, func(tx *sql.Tx, emit func(string, any) (events.Event, error)) error {
		if _, err := lookupOCIManifest(ctx, tx, repo, d); errors.Is(err, ErrNotFound) {
			ann := meta.Annotations
			if ann == nil {
				ann = map[string]string{}
			}
			if err := r.claimOCI(ctx, tx, emit, res.Sum.BLAKE3); err != nil {
				return err
			}
			if _, err := emit(TypeOCIManifestPut, ociManifestPut{Repository: repo, Digest: d.String(), MediaType: meta.MediaType,
				ArtifactType: meta.ArtifactType, Subject: meta.Subject.String(), Annotations: ann, Location: locationOf(res)}); err != nil {
				return err
			}
		} else if err != nil {
			return err
		}
		for _, tag := range tags {
			prev, err := lookupOCITag(ctx, tx, repo, tag)
			if err != nil && !errors.Is(err, ErrNotFound) {
				return err
			}
			if prev == d {
				continue
			}
			if _, err := emit(TypeOCITagSet, ociTagSet{Repository: repo, Tag: tag, Digest: d.String(), Previous: prev.String()}); err != nil {
				return err
			}
		}
		return nil
	})
	return m, err
}

func lookupOCITag(ctx context.Context, q queryRower, repo, tag string) (digest.Digest, error) {
	var d string
	err := q.QueryRowContext(ctx, `SELECT digest FROM oci_tags WHERE repository = $1 AND tag = $2`, repo, tag).Scan(&d)
	if errors.Is(err, sql.ErrNoRows) {
		return "", fmt.Errorf("%w: tag %s in %s", ErrNotFound, tag, repo)
	}
	if err != nil {
		return "", fmt.Errorf("registry: tag %s in %s: %w", tag, repo, err)
	}
	return digest.Digest(d), nil
}

const ociManifestCols = `repository, digest, media_type, artifact_type, subject, annotations, size, content_address`

func scanOCIManifest(row interface{ Scan(dest ...any) error }) (OCIManifest, error) {
	var m OCIManifest
	var d, ca string
	var subject, ann sql.NullString
	if err := row.Scan(&m.Repository, &d, &m.MediaType, &m.ArtifactType, &subject, &ann, &m.Size, &ca); err != nil {
		return OCIManifest{}, err
	}
	m.Digest, m.Subject = digest.Digest(d), digest.Digest(subject.String)
	var err error
	if m.ContentAddress, err = identity.Parse(ca); err != nil {
		return OCIManifest{}, err
	}
	if ann.Valid {
		if m.Annotations, err = decodeAnnotations(ann.String); err != nil {
			return OCIManifest{}, err
		}
	}
	return m, nil
}

func lookupOCIManifest(ctx context.Context, q queryRower, repo string, d digest.Digest) (OCIManifest, error) {
	m, err := scanOCIManifest(q.QueryRowContext(ctx, `SELECT `+ociManifestCols+` FROM oci_manifests WHERE repository = $1 AND digest = $2`, repo, d.String()))
	if errors.Is(err, sql.ErrNoRows) {
		return OCIManifest{}, fmt.Errorf("%w: manifest %s in %s", ErrNotFound, truncate(string(d)), repo)
	}
	if err != nil {
		return OCIManifest{}, fmt.Errorf("registry: manifest %s in %s: %w", d, repo, err)
	}
	return m, nil
}

// OCIManifestInfo returns the manifest that reference (a tag or a digest)
// names in repo, or ErrNotFound.
func (r *Registry) OCIManifestInfo(ctx context.Context, repo, reference string) (OCIManifest, error) {
	d := digest.Digest(reference)
	if !strings.Contains(reference, ":") {
		var err error
		if d, err = lookupOCITag(ctx, r.db.SQL, repo, reference); err != nil {
			return OCIManifest{}, err
		}
	}
	return lookupOCIManifest(ctx, r.db.SQL, repo, d)
}

// OCIManifestBytes returns the stored bytes of m, exactly as pushed.
func (r *Registry) OCIManifestBytes(ctx context.Context, m OCIManifest) ([]byte, error) {
	if err := r.checkNotCorrupt(ctx, m.ContentAddress); err != nil { // scrubrun.go
		return nil, err
	}
	rc, err := r.dp.ServeObject(ctx, m.ContentAddress, 0, -1)
	if err != nil {
		return nil, fmt.Errorf("registry: manifest %s in %s: %w", m.Digest, m.Repository, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, m.Size+1))
	if err != nil {
		return nil, fmt.Errorf("registry: manifest %s in %s: %w", m.Digest, m.Repository, err)
	}
	if int64(len(b)) != m.Size || digest.Digest(m.Digest).Algorithm().FromBytes(b) != m.Digest {
		return nil, fmt.Errorf("%w: manifest %s in %s: stored bytes do not match", ErrIntegrity, m.Digest, m.Repository)
	}
	return b, nil
}

// DeleteOCIManifest deletes manifest d from repo, with every tag that
// points at it. ErrNotFound if repo does not have it.
func (r *Registry) DeleteOCIManifest(ctx context.Context, repo string, d digest.Digest) error {
	return r.mutate(ctx, func(tx *sql.Tx, emit func(string, any) (events.Event, error)) error {
		if _, err := lookupOCIManifest(ctx, tx, repo, d); err != nil {
			return err
		}
		tags, err := queryStrings(ctx, tx, `SELECT tag FROM oci_tags WHERE repository = $1 AND digest = $2 ORDER BY tag`, repo, d.String())
		if err != nil {
			return err
		}
		_, err = emit(TypeOCIManifestDeleted, ociManifestDeleted{Repository: repo, Digest: d.String(), Tags: tags})
		return err
	})
}

// DeleteOCITag deletes tag from repo; the manifest stays. ErrNotFound if
// there is no such tag.
func (r *Registry) DeleteOCITag(ctx context.Context, repo, tag string) error {
	return r.mutate(ctx, func(tx *sql.Tx, emit func(string, any) (events.Event, error)) error {
		d, err := lookupOCITag(ctx, tx, repo, tag)
		if err != nil {
			return err
		}
		_, err = emit(TypeOCITagDeleted, ociTagDeleted{Repository: repo, Tag: tag, Digest: d.String()})
		return err
	})
}

func queryStrings(ctx context.Context, q queryer, query string, args ...any) ([]string, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("registry: %w", err)
	}
	defer rows.Close()
	out := []string{}
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

// OCIRepositoryExists reports whether repo holds anything: a blob, a
// manifest, a tag or an upload.
func (r *Registry) OCIRepositoryExists(ctx context.Context, repo string) (bool, error) {
	var one int
	err := r.db.SQL.QueryRowContext(ctx, `SELECT 1 WHERE EXISTS (SELECT 1 FROM oci_blobs WHERE repository = $1)
		OR EXISTS (SELECT 1 FROM oci_manifests WHERE repository = $1)
		OR EXISTS (SELECT 1 FROM oci_uploads WHERE repository = $1)`, repo).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("registry: repository %s: %w", repo, err)
	}
	return true, nil
}

// OCITags lists repo's tags in bytewise order, at most n of them (n < 0:
// all), starting after last (the distribution spec's pagination).
// ErrNotFound if the repository holds nothing.
func (r *Registry) OCITags(ctx context.Context, repo string, n int, last string) ([]string, error) {
	if ok, err := r.OCIRepositoryExists(ctx, repo); err != nil {
		return nil, err
	} else if !ok {
		return nil, fmt.Errorf("%w: repository %s", ErrNotFound, repo)
	}
	if n == 0 {
		return []string{}, nil
	}
	limit := ""
	if n > 0 {
		limit = fmt.Sprintf(" LIMIT %d", n)
	}
	return queryStrings(ctx, r.db.SQL, `SELECT tag FROM oci_tags WHERE repository = $1 AND tag > $2 ORDER BY `+
		orderBy("tag", r.pg())+limit, repo, last)
}

func (r *Registry) pg() bool { return r.db.Dialect() == "postgres" }

// OCIReferrers lists the manifests of repo whose subject is d, in digest
// order; with artifactType not "", only those of that artifact type.
func (r *Registry) OCIReferrers(ctx context.Context, repo string, d digest.Digest, artifactType string) ([]OCIManifest, error) {
	q := `SELECT ` + ociManifestCols + ` FROM oci_manifests WHERE repository = $1 AND subject = $2`
	args := []any{repo, d.String()}
	if artifactType != "" {
		q += ` AND artifact_type = $3`
		args = append(args, artifactType)
	}
	rows, err := r.db.SQL.QueryContext(ctx, q+` ORDER BY `+orderBy("digest", r.pg()), args...)
	if err != nil {
		return nil, fmt.Errorf("registry: referrers of %s: %w", d, err)
	}
	defer rows.Close()
	out := []OCIManifest{}
	for rows.Next() {
		m, err := scanOCIManifest(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, rows.Err()
}

// StartOCIUpload opens an upload session in repo and returns its id (32
// random hex digits, recorded in the event). The bytes of the upload live
// outside the store until it completes (pkg/ociserve).
func (r *Registry) StartOCIUpload(ctx context.Context, repo string) (string, error) {
	if err := CheckRepository(repo); err != nil {
		return "", err
	}
	var rnd [16]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return "", fmt.Errorf("registry: upload id: %w", err)
	}
	id := hex.EncodeToString(rnd[:])
	err := r.mutate(ctx, func(tx *sql.Tx, emit func(string, any) (events.Event, error)) error {
		_, err := emit(TypeOCIUploadStarted, ociUploadStarted{Repository: repo, ID: id})
		return err
	})
	return id, err
}

// CheckUploadID reports whether id has the form StartOCIUpload gives.
func CheckUploadID(id string) error {
	if len(id) != 32 {
		return fmt.Errorf("%w: upload id %q", ErrInvalid, truncate(id))
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return fmt.Errorf("%w: upload id %q", ErrInvalid, truncate(id))
		}
	}
	return nil
}

func checkUpload(ctx context.Context, q queryRower, repo, id string) error {
	var got string
	err := q.QueryRowContext(ctx, `SELECT repository FROM oci_uploads WHERE id = $1`, id).Scan(&got)
	if errors.Is(err, sql.ErrNoRows) || err == nil && got != repo {
		return fmt.Errorf("%w: upload %s in %s", ErrNotFound, id, repo)
	}
	if err != nil {
		return fmt.Errorf("registry: upload %s: %w", id, err)
	}
	return nil
}

// CheckOCIUpload returns nil if upload id is open in repo, else an error
// wrapping ErrNotFound.
func (r *Registry) CheckOCIUpload(ctx context.Context, repo, id string) error {
	if err := CheckUploadID(id); err != nil {
		return fmt.Errorf("%w: %w", ErrNotFound, err)
	}
	return checkUpload(ctx, r.db.SQL, repo, id)
}

// CancelOCIUpload closes upload id of repo without a blob; reason says why
// (a client's DELETE, the garbage collector's "abandoned").
func (r *Registry) CancelOCIUpload(ctx context.Context, repo, id, reason string) error {
	if !canonicalText(reason) {
		return fmt.Errorf("%w: reason", ErrInvalid)
	}
	return r.mutate(ctx, func(tx *sql.Tx, emit func(string, any) (events.Event, error)) error {
		if err := checkUpload(ctx, tx, repo, id); err != nil {
			return err
		}
		_, err := emit(TypeOCIUploadCancelled, ociUploadCancelled{Repository: repo, ID: id, Reason: reason})
		return err
	})
}

// OCIUpload is an open upload session.
type OCIUpload struct {
	ID         string
	Repository string
	Started    time.Time // the time of its v1.oci.upload.started event
}

// AbandonedOCIUploads lists the upload sessions still open that were
// started before cutoff (by their event's time), oldest first: what the
// garbage collector cancels (CancelOCIUpload with reason "abandoned") and
// whose staged bytes it removes.
func (r *Registry) AbandonedOCIUploads(ctx context.Context, cutoff time.Time) ([]OCIUpload, error) {
	rows, err := r.db.SQL.QueryContext(ctx, `SELECT u.id, u.repository, e.recorded_at FROM oci_uploads u
		JOIN events e ON e.seq = u.created_seq ORDER BY u.created_seq`)
	if err != nil {
		return nil, fmt.Errorf("registry: uploads: %w", err)
	}
	defer rows.Close()
	var out []OCIUpload
	for rows.Next() {
		var u OCIUpload
		var at string
		if err := rows.Scan(&u.ID, &u.Repository, &at); err != nil {
			return nil, err
		}
		if u.Started, err = time.Parse(time.RFC3339Nano, at); err != nil {
			return nil, fmt.Errorf("registry: upload %s: time %q: %w", u.ID, at, err)
		}
		if u.Started.Before(cutoff) {
			out = append(out, u)
		}
	}
	return out, rows.Err()
}
