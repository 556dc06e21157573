package events

import (
	"encoding/hex"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/artifactstore/artifact-store/internal/cborhead"
	"github.com/artifactstore/artifact-store/pkg/canonical"
	"github.com/artifactstore/artifact-store/pkg/identity"
)

// wire is an event as as-events tail writes it: one canonical CBOR map per
// event in a CBOR sequence (RFC 8742). The payload is embedded as the data
// item itself, byte for byte as appended.
type wire struct {
	Seq      uint64               `cbor:"seq" json:"seq"`
	Type     string               `cbor:"type" json:"type"`
	Actor    string               `cbor:"actor" json:"actor"`
	Time     string               `cbor:"time" json:"time"`
	Payload  canonical.RawMessage `cbor:"payload" json:"-"`
	PrevHash identity.Digest      `cbor:"prev_hash" json:"prev_hash"`
	Hash     identity.Digest      `cbor:"hash" json:"hash"`
}

// MarshalRecord encodes ev as its wire record: the canonical CBOR map
// {"seq", "type", "actor", "time", "payload", "prev_hash", "hash"} with
// hashes in text form ("blake3:<hex>") and the payload item embedded as is.
func MarshalRecord(ev Event) ([]byte, error) {
	return AppendRecord(nil, ev)
}

// AppendRecord appends MarshalRecord's encoding of ev to b (a tail writes
// thousands of records through one buffer).
func AppendRecord(b []byte, ev Event) ([]byte, error) {
	if ev.Seq >= canonical.MaxSafeInteger {
		return nil, fmt.Errorf("%w: seq %d is not below 2^53", ErrInvalidEvent, ev.Seq)
	}
	start := len(b)
	if !ev.PrevHash.IsZero() && !ev.Hash.IsZero() {
		// The map in canonical order (keys by length, then bytewise),
		// written directly; canonical.Check then refuses what the
		// encoder would (text that is not UTF-8, a payload that is not
		// canonical), and the encoder says why.
		ts := FormatTime(ev.Time)
		b = append(b, 0xa7)
		b = cborhead.AppendText(b, "seq")
		b = cborhead.Append(b, 0, ev.Seq)
		b = cborhead.AppendText(b, "hash")
		b = appendDigest(b, ev.Hash)
		b = cborhead.AppendText(b, "time")
		b = cborhead.AppendText(b, ts)
		b = cborhead.AppendText(b, "type")
		b = cborhead.AppendText(b, ev.Type)
		b = cborhead.AppendText(b, "actor")
		b = cborhead.AppendText(b, ev.Actor)
		b = cborhead.AppendText(b, "payload")
		b = append(b, ev.Payload...)
		b = cborhead.AppendText(b, "prev_hash")
		b = appendDigest(b, ev.PrevHash)
		if canonical.Check(b[start:]) == nil {
			return b, nil
		}
		b = b[:start]
	}
	enc, err := canonical.Marshal(wire{
		Seq: ev.Seq, Type: ev.Type, Actor: ev.Actor, Time: FormatTime(ev.Time),
		Payload: ev.Payload, PrevHash: ev.PrevHash, Hash: ev.Hash,
	})
	if err != nil {
		return nil, fmt.Errorf("events: encode record: %w", err)
	}
	return append(b, enc...), nil
}

// appendDigest appends d's text form ("blake3:<hex>") as a CBOR text
// string.
func appendDigest(b []byte, d identity.Digest) []byte {
	alg, sum := string(d.Algorithm()), d.Bytes()
	b = cborhead.Append(b, 3, uint64(len(alg)+1+hex.EncodedLen(len(sum))))
	b = append(append(b, alg...), ':')
	return hex.AppendEncode(b, sum)
}

// UnmarshalRecord decodes one wire record written by MarshalRecord. It
// checks the shape (canonical, no unknown or missing fields, valid type,
// time and hashes) but not the hash chain; recompute with Event.Record and
// ChainHash to check an event's own hash.
func UnmarshalRecord(b []byte) (Event, error) {
	var w struct {
		Seq      *uint64              `cbor:"seq"`
		Type     *string              `cbor:"type"`
		Actor    *string              `cbor:"actor"`
		Time     *string              `cbor:"time"`
		Payload  canonical.RawMessage `cbor:"payload"`
		PrevHash *string              `cbor:"prev_hash"`
		Hash     *string              `cbor:"hash"`
	}
	if err := canonical.Unmarshal(b, &w); err != nil {
		return Event{}, fmt.Errorf("events: decode record: %w", err)
	}
	if w.Seq == nil || w.Type == nil || w.Actor == nil || w.Time == nil || w.Payload == nil || w.PrevHash == nil || w.Hash == nil {
		return Event{}, fmt.Errorf("%w: record lacks a field", ErrInvalidEvent)
	}
	if *w.Seq == 0 {
		return Event{}, fmt.Errorf("%w: seq 0", ErrInvalidEvent)
	}
	ev := Event{Seq: *w.Seq, Type: *w.Type, Actor: *w.Actor, Payload: []byte(w.Payload)}
	t, err := time.Parse(time.RFC3339Nano, *w.Time)
	if err != nil || FormatTime(t) != *w.Time {
		return Event{}, fmt.Errorf("%w: time %q is not RFC 3339 UTC in its shortest form", ErrInvalidEvent, *w.Time)
	}
	ev.Time = t
	for _, h := range []struct {
		s   string
		dst *identity.Digest
	}{{*w.PrevHash, &ev.PrevHash}, {*w.Hash, &ev.Hash}} {
		d, err := identity.Parse(h.s)
		if err != nil || d.Algorithm() != identity.BLAKE3 {
			return Event{}, fmt.Errorf("%w: hash %q is not a blake3 digest", ErrInvalidEvent, h.s)
		}
		*h.dst = d
	}
	if err := ev.validate(); err != nil {
		return Event{}, err
	}
	return ev, nil
}

// appendStoredRecord appends AppendRecord's encoding of the stored event r
// straight from its fields, whose time and hash lengths have been checked
// (rowReader.time and checkHashes), leaving out the payload: what comes
// before it, then the storedRecordTail bytes that follow it. It reports
// whether it could: it appends nothing and returns false where AppendRecord
// would take its slow path (a payload or text that the record's canonical
// check would refuse, or the record over canonical.DefaultLimits), for
// which the caller falls back to AppendRecord.
func appendStoredRecord(b []byte, r *rowReader) ([]byte, bool) {
	seq := uint64(r.seq)
	if seq >= canonical.MaxSafeInteger || !utf8.Valid(r.typ) || !utf8.Valid(r.actor) {
		return b, false
	}
	// The payload sits one level down in the record, and the whole record
	// must be within the limits: then the record is canonical exactly when
	// the payload is (every other field is ours, in canonical order).
	lim := canonical.DefaultLimits
	lim.MaxDepth--
	if canonical.CheckLimits(r.payload, lim) != nil {
		return b, false
	}
	start := len(b)
	b = append(b, 0xa7)
	b = cborhead.AppendText(b, "seq")
	b = cborhead.Append(b, 0, seq)
	b = cborhead.AppendText(b, "hash")
	b = appendHexDigest(b, r.hash)
	b = cborhead.AppendText(b, "time")
	b = cborhead.AppendText(b, r.ts)
	b = cborhead.AppendText(b, "type")
	b = cborhead.AppendText(b, r.typ)
	b = cborhead.AppendText(b, "actor")
	b = cborhead.AppendText(b, r.actor)
	b = cborhead.AppendText(b, "payload")
	// The payload goes here.
	b = cborhead.AppendText(b, "prev_hash")
	b = appendHexDigest(b, r.prev)
	if len(b)-start+len(r.payload) > canonical.DefaultLimits.MaxBytes {
		return b[:start], false
	}
	return b, true
}

// storedRecordTail is the length of what follows the payload in a wire
// record: the key "prev_hash" and a BLAKE3 digest in text form.
const storedRecordTail = 1 + len("prev_hash") + 2 + len(identity.BLAKE3) + 1 + 2*hashSize

// appendHexDigest is appendDigest for a stored BLAKE3 hash.
func appendHexDigest(b, sum []byte) []byte {
	const alg = string(identity.BLAKE3)
	b = cborhead.Append(b, 3, uint64(len(alg)+1+hex.EncodedLen(len(sum))))
	b = append(append(b, alg...), ':')
	return hex.AppendEncode(b, sum)
}
