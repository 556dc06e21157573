package events

import (
	"fmt"
	"time"

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
	if ev.Seq >= canonical.MaxSafeInteger {
		return nil, fmt.Errorf("%w: seq %d is not below 2^53", ErrInvalidEvent, ev.Seq)
	}
	b, err := canonical.Marshal(wire{
		Seq: ev.Seq, Type: ev.Type, Actor: ev.Actor, Time: FormatTime(ev.Time),
		Payload: ev.Payload, PrevHash: ev.PrevHash, Hash: ev.Hash,
	})
	if err != nil {
		return nil, fmt.Errorf("events: encode record: %w", err)
	}
	return b, nil
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
