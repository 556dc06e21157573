package registry

import (
	"context"
	"database/sql"

	"github.com/artifactstore/artifact-store/pkg/events"
	"github.com/artifactstore/artifact-store/pkg/identity"
)

// Event types of scrubbing (docs/adr/0011-garbage-collection.md).
const (
	TypeScrubVerified = "v1.scrub.verified" // payload scrubVerified: stored bytes re-read and both digests matched
	TypeScrubCorrupt  = "v1.scrub.corrupt"  // payload scrubCorrupt: they did not
	TypeScrubRepaired = "v1.scrub.repaired" // payload scrubRepaired: a corrupt object was stored again
)

type scrubObject struct {
	ContentAddress identity.Digest `cbor:"content_address"`
	BackendID      string          `cbor:"backend_id"`
	Size           uint64          `cbor:"size"`
}

type scrubVerified struct {
	Objects []scrubObject `cbor:"objects"`
}

type scrubCorrupt struct {
	ContentAddress identity.Digest `cbor:"content_address"`
	BackendID      string          `cbor:"backend_id"`
	Detail         string          `cbor:"detail"` // what differed
}

type scrubRepaired struct {
	ContentAddress identity.Digest `cbor:"content_address"`
	BackendID      string          `cbor:"backend_id"`
}

func (w *viewWriter) applyScrub(ctx context.Context, tx *sql.Tx, ev events.Event, at string) error {
	const upsert = `INSERT INTO object_checks (content_address, backend_id, state, detail, checked_at, updated_seq)
		VALUES ($1, $2, $3, $4, $5, $6)
		ON CONFLICT (content_address, backend_id) DO UPDATE SET state = excluded.state, detail = excluded.detail,
		checked_at = excluded.checked_at, updated_seq = excluded.updated_seq`
	seq := int64(ev.Seq)
	switch ev.Type {
	case TypeScrubVerified:
		var v scrubVerified
		if err := decodePayload(ev, &v); err != nil {
			return err
		}
		for _, o := range v.Objects {
			if _, err := w.exec(ctx, tx, upsert, o.ContentAddress.String(), o.BackendID, "verified", "", at, seq); err != nil {
				return err
			}
		}
	case TypeScrubCorrupt:
		var c scrubCorrupt
		if err := decodePayload(ev, &c); err != nil {
			return err
		}
		_, err := w.exec(ctx, tx, upsert, c.ContentAddress.String(), c.BackendID, "corrupt", c.Detail, at, seq)
		return err
	case TypeScrubRepaired:
		var c scrubRepaired
		if err := decodePayload(ev, &c); err != nil {
			return err
		}
		_, err := w.exec(ctx, tx, upsert, c.ContentAddress.String(), c.BackendID, "verified", "repaired", at, seq)
		return err
	}
	return nil
}
