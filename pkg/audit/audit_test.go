package audit_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/artifactstore/artifact-store/pkg/audit"
	"github.com/artifactstore/artifact-store/pkg/dataplane"
	"github.com/artifactstore/artifact-store/pkg/db/dbtest"
	"github.com/artifactstore/artifact-store/pkg/ref"
	"github.com/artifactstore/artifact-store/pkg/registry"
)

func TestFor(t *testing.T) {
	ctx := context.Background()
	d := dbtest.SQLite(t)
	dp, closeDP, err := dataplane.OpenLocal("local", t.TempDir(), false)
	if err != nil {
		t.Fatal(err)
	}
	defer closeDP()
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	reg := registry.New(d, dp, registry.Options{Actor: "alice", Now: func() time.Time { return at }})
	a, b := ref.Version("a", "1"), ref.Version("b", "1")
	for _, r := range []ref.Ref{a, b} {
		if err := reg.CreatePackage(ctx, r, registry.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		if _, err := reg.IngestFile(ctx, r, "f", strings.NewReader(r.Name), registry.IngestOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := reg.FinalizePackage(ctx, a, registry.FinalizeOptions{}); err != nil {
		t.Fatal(err)
	}
	reg.PlaceHold(ctx, a, "audit")
	got, err := audit.For(ctx, reg.Log(), "a", "1")
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, e := range got {
		if e.Actor != "alice" || !e.Time.Equal(at) {
			t.Fatalf("entry %+v", e)
		}
		actions = append(actions, e.Action+":"+e.Path)
	}
	if want := "package.created:,file.ingested:f,package.finalized:,retention.hold_placed:"; strings.Join(actions, ",") != want {
		t.Fatalf("audit of a@1 = %v, want %s", actions, want)
	}
}
