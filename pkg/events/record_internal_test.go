package events

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/artifactstore/artifact-store/pkg/canonical"
	"github.com/artifactstore/artifact-store/pkg/identity"
	"pgregory.net/rapid"
)

// TestAppendRecordEqualsMarshal: the hand-written record encoder writes
// what canonical.Marshal writes for the wire struct, byte for byte, and
// refuses what it refuses.
func TestAppendRecordEqualsMarshal(t *testing.T) {
	payloads := [][]byte{{0xa0}, {0x80}, {0x01}, {0x61, 'x'}, {0xa1, 0x61, 'k', 0x61, 'v'},
		{0x18, 0x01} /* not shortest */, {0x62, 0xff, 0xfe} /* not UTF-8 */, {}}
	rapid.Check(t, func(rt *rapid.T) {
		ev := Event{
			Seq:     rapid.OneOf(rapid.Uint64Range(0, 1<<20), rapid.Uint64()).Draw(rt, "seq"),
			Type:    rapid.OneOf(rapid.StringMatching(`[a-z]{1,5}\.[a-z]{1,5}`), rapid.String(), rapid.Custom(func(t *rapid.T) string { return string(rapid.SliceOf(rapid.Byte()).Draw(t, "b")) })).Draw(rt, "type"),
			Actor:   rapid.String().Draw(rt, "actor"),
			Time:    time.Unix(rapid.Int64Range(-1e10, 1e11).Draw(rt, "sec"), rapid.Int64Range(0, 999999999).Draw(rt, "nsec")),
			Payload: rapid.SampledFrom(payloads).Draw(rt, "payload"),
		}
		for _, h := range []*identity.Digest{&ev.PrevHash, &ev.Hash} {
			if rapid.IntRange(0, 9).Draw(rt, "zero") > 0 {
				d, err := identity.NewDigest(identity.BLAKE3, bytes.Repeat([]byte{rapid.Byte().Draw(rt, "h")}, 32))
				if err != nil {
					rt.Fatal(err)
				}
				*h = d
			}
		}
		got, gerr := AppendRecord([]byte{0xff}, ev)
		var want []byte
		var werr error
		if ev.Seq >= canonical.MaxSafeInteger {
			werr = fmt.Errorf("seq too big")
		} else {
			want, werr = canonical.Marshal(wire{Seq: ev.Seq, Type: ev.Type, Actor: ev.Actor, Time: FormatTime(ev.Time),
				Payload: ev.Payload, PrevHash: ev.PrevHash, Hash: ev.Hash})
		}
		if (gerr == nil) != (werr == nil) {
			rt.Fatalf("AppendRecord error %v, Marshal error %v", gerr, werr)
		}
		if gerr == nil && !bytes.Equal(got, append([]byte{0xff}, want...)) {
			rt.Fatalf("AppendRecord %x\nMarshal      %x", got, want)
		}
	})
}

// TestChainHashStreamed: the hash Append chains, computed without building
// the record, is ChainHash of the record, for short and long fields.
func TestChainHashStreamed(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		ev := Event{
			Seq:     rapid.Uint64Range(0, 1<<40).Draw(t, "seq"),
			Type:    rapid.StringMatching(`[a-z][a-z0-9._]{0,200}`).Draw(t, "type"),
			Actor:   rapid.StringMatching(`[a-z@.]{0,300}`).Draw(t, "actor"),
			Time:    time.Unix(rapid.Int64Range(0, 1<<34).Draw(t, "sec"), rapid.Int64Range(0, 999999999).Draw(t, "nsec")),
			Payload: rapid.SliceOfN(rapid.Byte(), 0, 4096).Draw(t, "payload"),
		}
		ev.PrevHash = ChainHash(identity.Digest{}, []byte("prev"))
		if got, want := ev.chainHash(), ChainHash(ev.PrevHash, ev.Record()); got != want {
			t.Fatalf("chainHash = %v, ChainHash(prev, Record()) = %v", got, want)
		}
	})
}
