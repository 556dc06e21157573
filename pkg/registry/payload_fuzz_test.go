package registry

import (
	"context"
	"testing"

	"github.com/artifactstore/artifact-store/pkg/canonical"
	"github.com/artifactstore/artifact-store/pkg/db/dbtest"
	"github.com/artifactstore/artifact-store/pkg/events"
)

// FuzzApply feeds arbitrary payloads under every registry event type to the
// view writer (the decoder replay uses) inside a rolled-back transaction:
// it may refuse them, never panic; a payload it accepts is canonical CBOR.
func FuzzApply(f *testing.F) {
	types := []string{TypePackageCreated, TypeFileIngested, TypeObjectStored, TypePackageFinalized,
		TypeRetentionChanged, TypeHoldPlaced, TypeHoldReleased, "v1.unknown", "producer.event"}
	seed, _ := canonical.Marshal(packageCreated{Name: "a", Version: "1", Retention: "standard", Labels: map[string]string{}})
	for i := range types {
		f.Add(uint8(i), seed)
	}
	f.Add(uint8(1), []byte{0xa0})
	f.Add(uint8(3), []byte{0x81, 0x81, 0x80})
	d := dbtest.SQLite(f)
	f.Fuzz(func(t *testing.T, typ uint8, payload []byte) {
		ctx := context.Background()
		tx, err := d.SQL.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback()
		ev := events.Event{Seq: 1, Type: types[int(typ)%len(types)], Actor: "fuzz", Payload: payload}
		if err := newViewWriter().Apply(ctx, tx, ev); err == nil && ev.Type[:3] == "v1." {
			if canonical.Check(payload) != nil {
				t.Fatalf("%s: accepted a non-canonical payload %x", ev.Type, payload)
			}
		}
	})
}
