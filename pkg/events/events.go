// Package events is artifact-store's append-only, hash-chained event log:
// the source of truth of which every table is a view (DESIGN.md §6,
// docs/adr/0002-event-log.md).
//
// Contract:
//
//   - [Append] writes one event inside the caller's transaction. Sequence
//     numbers start at 1 and are gapless and commit-ordered on SQLite and
//     PostgreSQL: every appender locks the single-row event_head table, so a
//     rolled-back transaction leaves no gap and a reader that has seen N never
//     later finds an event below N appear.
//   - Each event stores prev_hash (its predecessor's hash; 32 zero bytes for
//     seq 1) and hash = BLAKE3-256(prev_hash ‖ record), where record is the
//     canonical CBOR map {"seq", "time", "type", "actor", "payload"} described
//     in the ADR and built by [Event.Record].
//   - Payloads are canonical CBOR ([canonical.Check]) and are stored and
//     returned as the same bytes, never re-encoded.
//   - [Log.Tail] yields every event after a sequence number, in order, once,
//     then waits for more: LISTEN/NOTIFY on PostgreSQL, polling on SQLite.
//   - [Log.Verify] walks the chain and names the first bad sequence.
//   - [Replay] clears the views and feeds the whole log to a [ViewWriter] in
//     one transaction.
package events

import (
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/artifactstore/artifact-store/internal/cborhead"
	"github.com/artifactstore/artifact-store/pkg/canonical"
	"github.com/artifactstore/artifact-store/pkg/identity"
	"lukechampine.com/blake3"
)

// Sentinel errors; every error this package returns for them wraps one.
var (
	ErrInvalidType    = errors.New("events: invalid event type")
	ErrReservedType   = errors.New("events: event type namespace v1. is reserved for the registry")
	ErrInvalidEvent   = errors.New("events: invalid event")
	ErrChainBroken    = errors.New("events: hash chain broken")
	ErrHashMismatch   = errors.New("stored hash does not match the recomputed hash")
	ErrBrokenLink     = errors.New("prev_hash does not match the previous event's hash")
	ErrGap            = errors.New("sequence gap")
	ErrHeadMismatch   = errors.New("event_head does not match the last event")
	ErrInvalidPayload = errors.New("events: payload is not canonical CBOR")
)

// ReservedNamespace prefixes the registry's own event types.
const ReservedNamespace = "v1."

// Limits on the text fields of an event.
const (
	MaxTypeLen  = 128
	MaxActorLen = 256
)

// Event is one entry of the log. Append fills Seq, PrevHash and Hash; the
// caller gives Type, Actor, Time and Payload.
type Event struct {
	Seq      uint64
	Type     string          // dotted name, e.g. "ci.build-started"; see ValidateType
	Actor    string          // who caused it (free text, may be empty)
	Time     time.Time       // when it happened, as recorded by the caller
	Payload  []byte          // one canonical CBOR data item
	PrevHash identity.Digest // hash of event Seq-1 (GenesisHash for Seq 1)
	Hash     identity.Digest // BLAKE3(PrevHash ‖ Record)
}

// Head is the last event's sequence number and hash (0 and GenesisHash for
// an empty log).
type Head struct {
	Seq  uint64
	Hash identity.Digest
}

// GenesisHash is the prev_hash of the first event: 32 zero bytes.
func GenesisHash() identity.Digest {
	d, err := identity.NewDigest(identity.BLAKE3, make([]byte, 32))
	if err != nil {
		panic(err) // blake3 is always registered with size 32
	}
	return d
}

// ValidateType checks an event type name: 1 to MaxTypeLen bytes, at least
// two dot-separated segments (a namespace and a name), each starting with a
// lowercase letter or digit and made of [a-z0-9_-].
func ValidateType(t string) error {
	if t == "" || len(t) > MaxTypeLen {
		return fmt.Errorf("%w %q: length must be 1 to %d bytes", ErrInvalidType, t, MaxTypeLen)
	}
	segs := strings.Split(t, ".")
	if len(segs) < 2 {
		return fmt.Errorf("%w %q: want namespace.name (at least one dot)", ErrInvalidType, t)
	}
	for _, s := range segs {
		if s == "" {
			return fmt.Errorf("%w %q: empty segment", ErrInvalidType, t)
		}
		for i, c := range []byte(s) {
			ok := c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || i > 0 && (c == '_' || c == '-')
			if !ok {
				return fmt.Errorf("%w %q: segment %q: only a-z, 0-9, '_' and '-' (not first) are allowed", ErrInvalidType, t, s)
			}
		}
	}
	return nil
}

// ValidateProducerType is ValidateType for events from outside the
// registry: the v1. namespace is refused with ErrReservedType.
func ValidateProducerType(t string) error {
	if err := ValidateType(t); err != nil {
		return err
	}
	if strings.HasPrefix(t, ReservedNamespace) {
		return fmt.Errorf("%w: %q (choose your own namespace, e.g. ci.%s)", ErrReservedType, t, strings.TrimPrefix(t, ReservedNamespace))
	}
	return nil
}

// validate checks what the caller supplies to Append.
func (e Event) validate() error {
	if err := ValidateType(e.Type); err != nil {
		return err
	}
	if len(e.Actor) > MaxActorLen || !utf8.ValidString(e.Actor) {
		return fmt.Errorf("%w: actor must be valid UTF-8 of at most %d bytes", ErrInvalidEvent, MaxActorLen)
	}
	if e.Time.IsZero() {
		return fmt.Errorf("%w: time is not set", ErrInvalidEvent)
	}
	if y := e.Time.UTC().Year(); y < 1 || y > 9999 {
		return fmt.Errorf("%w: time %v outside years 0001-9999", ErrInvalidEvent, e.Time)
	}
	if err := canonical.Check(e.Payload); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidPayload, err)
	}
	return nil
}

// FormatTime is the text form of an event time in the record and the
// database: RFC 3339 in UTC with up to nine fractional digits, trailing zeros
// dropped (time.RFC3339Nano).
func FormatTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// Record returns the canonical CBOR record the hash covers: a map of five
// entries in canonical key order —
//
//	"seq": unsigned integer, "time": text (FormatTime), "type": text,
//	"actor": text, "payload": the payload data item itself (not a byte string)
//
// It needs Seq, Time, Type, Actor and Payload; Payload must already be
// canonical.
func (e Event) Record() []byte {
	ts := FormatTime(e.Time)
	b := make([]byte, 0, 48+len(ts)+len(e.Type)+len(e.Actor)+len(e.Payload))
	return appendRecord(b, e.Seq, ts, e.Type, e.Actor, e.Payload)
}

// appendRecord appends the record of Event.Record from its fields, ts
// already in FormatTime's form.
func appendRecord[S ~string | ~[]byte](b []byte, seq uint64, ts, typ, actor S, payload []byte) []byte {
	return append(appendRecordHead(b, seq, ts, typ, actor), payload...)
}

// appendRecordHead appends the record of appendRecord up to its payload.
func appendRecordHead[S ~string | ~[]byte](b []byte, seq uint64, ts, typ, actor S) []byte {
	b = append(b, 0xa5) // map of 5 pairs
	b = cborhead.AppendText(b, "seq")
	b = cborhead.Append(b, 0, seq)
	b = cborhead.AppendText(b, "time")
	b = cborhead.AppendText(b, ts)
	b = cborhead.AppendText(b, "type")
	b = cborhead.AppendText(b, typ)
	b = cborhead.AppendText(b, "actor")
	b = cborhead.AppendText(b, actor)
	return cborhead.AppendText(b, "payload")
}

// chainHash returns ChainHash(e.PrevHash, e.Record()) without building the
// record: its head and the payload go to the hasher one after the other,
// so a large payload (a manifest of 80 MB) is not copied to be hashed.
func (e Event) chainHash() identity.Digest {
	x := newRecordHasher()
	x.rec = appendRecordHead(x.rec, e.Seq, FormatTime(e.Time), e.Type, e.Actor)
	x.hash(e.PrevHash.Bytes(), e.Payload)
	d, err := identity.NewDigest(identity.BLAKE3, x.sum)
	if err != nil {
		panic(err)
	}
	return d
}

// ChainHash returns BLAKE3-256(prev ‖ record).
func ChainHash(prev identity.Digest, record []byte) identity.Digest {
	h := blake3.New(32, nil)
	h.Write(prev.Bytes())
	h.Write(record)
	d, err := identity.NewDigest(identity.BLAKE3, h.Sum(nil))
	if err != nil {
		panic(err)
	}
	return d
}

func digestFrom(b []byte) (identity.Digest, error) {
	d, err := identity.NewDigest(identity.BLAKE3, b)
	if err != nil {
		return identity.Digest{}, fmt.Errorf("events: stored hash: %w", err)
	}
	return d, nil
}
