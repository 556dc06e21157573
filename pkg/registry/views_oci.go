package registry

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/artifactstore/artifact-store/pkg/events"
)

// The OCI views (migrations 00006), written only here, by the one view
// writer, from v1.oci.* events.

// applyOCI updates the OCI views for one v1.oci.* event.
func (w *viewWriter) applyOCI(ctx context.Context, tx *sql.Tx, ev events.Event) error {
	seq := int64(ev.Seq)
	switch ev.Type {
	case TypeOCIBlobLinked:
		var p ociBlobLinked
		if err := decodePayload(ev, &p); err != nil {
			return err
		}
		if err := w.upsertLocation(ctx, tx, p.Location, ev.Seq); err != nil {
			return err
		}
		if p.Upload != "" {
			res, err := w.exec(ctx, tx, `DELETE FROM oci_uploads WHERE id = $1 AND repository = $2`, p.Upload, p.Repository)
			if err := mustAffectOne(res, err, "upload "+p.Upload); err != nil {
				return err
			}
		}
		_, err := w.exec(ctx, tx, `INSERT INTO oci_blobs (repository, digest, content_address, size, created_seq)
			VALUES ($1, $2, $3, $4, $5) ON CONFLICT (repository, digest) DO NOTHING`,
			p.Repository, p.Digest, p.Location.ContentAddress.String(), int64(p.Location.Size), seq)
		return err
	case TypeOCIBlobUnlinked:
		var p ociBlobUnlinked
		if err := decodePayload(ev, &p); err != nil {
			return err
		}
		res, err := w.exec(ctx, tx, `DELETE FROM oci_blobs WHERE repository = $1 AND digest = $2`, p.Repository, p.Digest)
		return mustAffectOne(res, err, "blob "+p.Digest+" in "+p.Repository)
	case TypeOCIManifestPut:
		var p ociManifestPut
		if err := decodePayload(ev, &p); err != nil {
			return err
		}
		if err := w.upsertLocation(ctx, tx, p.Location, ev.Seq); err != nil {
			return err
		}
		ann, err := encodeAnnotations(p.Annotations)
		if err != nil {
			return err
		}
		var subject any
		if p.Subject != "" {
			subject = p.Subject
		}
		_, err = w.exec(ctx, tx, `INSERT INTO oci_manifests
			(repository, digest, media_type, artifact_type, subject, annotations, size, content_address, created_seq)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
			p.Repository, p.Digest, p.MediaType, p.ArtifactType, subject, ann, int64(p.Location.Size),
			p.Location.ContentAddress.String(), seq)
		return err
	case TypeOCIManifestDeleted:
		var p ociManifestDeleted
		if err := decodePayload(ev, &p); err != nil {
			return err
		}
		if _, err := w.exec(ctx, tx, `DELETE FROM oci_tags WHERE repository = $1 AND digest = $2`, p.Repository, p.Digest); err != nil {
			return err
		}
		res, err := w.exec(ctx, tx, `DELETE FROM oci_manifests WHERE repository = $1 AND digest = $2`, p.Repository, p.Digest)
		return mustAffectOne(res, err, "manifest "+p.Digest+" in "+p.Repository)
	case TypeOCITagSet:
		var p ociTagSet
		if err := decodePayload(ev, &p); err != nil {
			return err
		}
		_, err := w.exec(ctx, tx, `INSERT INTO oci_tags (repository, tag, digest, updated_seq) VALUES ($1, $2, $3, $4)
			ON CONFLICT (repository, tag) DO UPDATE SET digest = excluded.digest, updated_seq = excluded.updated_seq`,
			p.Repository, p.Tag, p.Digest, seq)
		return err
	case TypeOCITagDeleted:
		var p ociTagDeleted
		if err := decodePayload(ev, &p); err != nil {
			return err
		}
		res, err := w.exec(ctx, tx, `DELETE FROM oci_tags WHERE repository = $1 AND tag = $2`, p.Repository, p.Tag)
		return mustAffectOne(res, err, "tag "+p.Tag+" in "+p.Repository)
	case TypeOCIUploadStarted:
		var p ociUploadStarted
		if err := decodePayload(ev, &p); err != nil {
			return err
		}
		_, err := w.exec(ctx, tx, `INSERT INTO oci_uploads (id, repository, created_seq) VALUES ($1, $2, $3)`, p.ID, p.Repository, seq)
		return err
	case TypeOCIUploadCancelled:
		var p ociUploadCancelled
		if err := decodePayload(ev, &p); err != nil {
			return err
		}
		res, err := w.exec(ctx, tx, `DELETE FROM oci_uploads WHERE id = $1 AND repository = $2`, p.ID, p.Repository)
		return mustAffectOne(res, err, "upload "+p.ID)
	}
	return fmt.Errorf("unknown OCI event type %q (a newer version wrote this log?)", ev.Type)
}
