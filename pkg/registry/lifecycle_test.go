package registry

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/artifactstore/artifact-store/pkg/db"
	"github.com/artifactstore/artifact-store/pkg/db/dbtest"
	"github.com/artifactstore/artifact-store/pkg/identity"
	"github.com/artifactstore/artifact-store/pkg/records"
	"github.com/artifactstore/artifact-store/pkg/ref"
)

// mkPackage creates name@version with one file holding body, finalised
// unless open.
func mkPackage(t *testing.T, r *Registry, v ref.Ref, body string, open bool, opts CreateOptions) {
	t.Helper()
	ctx := context.Background()
	if err := r.CreatePackage(ctx, v, opts); err != nil {
		t.Fatal(err)
	}
	if _, err := r.IngestFile(ctx, v, "bin/"+v.Name, strings.NewReader(body), IngestOptions{}); err != nil {
		t.Fatal(err)
	}
	if !open {
		if _, err := r.FinalizePackage(ctx, v, FinalizeOptions{}); err != nil {
			t.Fatal(err)
		}
	}
}

func mustParse(t *testing.T, s string) ref.Ref {
	t.Helper()
	rf, err := ref.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return rf
}

// checkReplay: a replay of the log rebuilds exactly the live views.
func checkReplay(t *testing.T, r *Registry) {
	t.Helper()
	ctx := context.Background()
	before, err := r.StateDigest(ctx)
	if err != nil {
		t.Fatal(err)
	}
	res, err := r.Replay(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	after, err := r.StateDigest(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if res.Before != before || res.After != before || after != before {
		t.Fatalf("replay drift: live %s, replay before %s after %s, then %s", before, res.Before, res.After, after)
	}
}

func list(t *testing.T, r *Registry, f Filter) []string {
	t.Helper()
	var out []string
	for l, err := range r.List(context.Background(), f) {
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, l.Name+"@"+l.Version)
	}
	return out
}

// TestTags: a tag resolves in every read, points only at a finalised
// version, shares the version namespace, moves with its previous target
// recorded, and replay rebuilds it.
func TestTags(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		r := newRegistry(t, d)
		v1, v2, open := ref.Version("app", "1.0"), ref.Version("app", "1.1"), ref.Version("app", "2.0")
		mkPackage(t, r, v1, "one", false, CreateOptions{})
		mkPackage(t, r, v2, "two", false, CreateOptions{})
		mkPackage(t, r, open, "open", true, CreateOptions{})

		res, err := r.SetTag(ctx, v1, "stable")
		if err != nil || res.Previous != "" || res.Version != "1.0" || res.Unchanged {
			t.Fatalf("SetTag = %+v, %v", res, err)
		}
		stable := mustParse(t, "app:stable")
		p, err := r.GetPackage(ctx, stable)
		if err != nil || p.Ref != v1 {
			t.Fatalf("GetPackage(app:stable) = %v, %v", p.Ref, err)
		}
		byDigest := ref.Ref{Name: "app", Digest: p.ManifestDigest}
		if got, err := r.ResolveRef(ctx, byDigest); err != nil || got != v1 {
			t.Fatalf("ResolveRef(%s) = %v, %v", byDigest, got, err)
		}
		want, _ := r.GetManifestBytes(ctx, v1, records.CBOR)
		for _, rf := range []ref.Ref{stable, byDigest} {
			if got, err := r.GetManifestBytes(ctx, rf, records.CBOR); err != nil || string(got) != string(want) {
				t.Fatalf("GetManifestBytes(%s): %v", rf, err)
			}
			if fs, err := r.Files(ctx, rf); err != nil || len(fs) != 1 || fs[0].Path != "bin/app" {
				t.Fatalf("Files(%s) = %v, %v", rf, fs, err)
			}
			rc, _, err := r.GetFile(ctx, rf, "bin/app", 0, -1)
			if err != nil {
				t.Fatalf("GetFile(%s): %v", rf, err)
			}
			rc.Close()
		}
		if _, err := r.SetTag(ctx, open, "dev"); !errors.Is(err, ErrNotFinalized) {
			t.Fatalf("tag of an open package: %v", err)
		}
		if _, err := r.SetTag(ctx, v1, "1.1"); !errors.Is(err, ErrConflict) {
			t.Fatalf("tag with a version's text: %v", err)
		}
		if err := r.CreatePackage(ctx, ref.Version("app", "stable"), CreateOptions{}); !errors.Is(err, ErrConflict) {
			t.Fatalf("version with a tag's text: %v", err)
		}
		if _, err := r.SetTag(ctx, v1, "bad tag"); !errors.Is(err, ErrInvalid) {
			t.Fatalf("invalid tag: %v", err)
		}
		if res, err := r.SetTag(ctx, stable, "stable"); err != nil || !res.Unchanged {
			t.Fatalf("re-setting a tag to its target: %+v, %v", res, err)
		}
		if res, err := r.SetTag(ctx, v2, "stable"); err != nil || res.Previous != "1.0" || res.Version != "1.1" {
			t.Fatalf("moving a tag: %+v, %v", res, err)
		}
		if p, err := r.GetPackage(ctx, stable); err != nil || p.Ref != v2 {
			t.Fatalf("moved tag resolves to %v, %v", p.Ref, err)
		}
		if got := list(t, r, Filter{Tag: "stable"}); !slices.Equal(got, []string{"app@1.1"}) {
			t.Fatalf("list --tag stable = %v", got)
		}
		if _, err := r.SetTag(ctx, v1, "old"); err != nil {
			t.Fatal(err)
		}
		tags, err := r.Tags(ctx, "app")
		if err != nil || len(tags) != 2 || tags[0].Tag != "old" || tags[1].Tag != "stable" || tags[1].Version != "1.1" {
			t.Fatalf("Tags = %+v, %v", tags, err)
		}
		checkReplay(t, r)
		if _, err := r.DeleteTag(ctx, "app", "stable"); err != nil {
			t.Fatal(err)
		}
		if _, err := r.GetPackage(ctx, stable); !errors.Is(err, ErrNotFound) {
			t.Fatalf("deleted tag resolves: %v", err)
		}
		if _, err := r.DeleteTag(ctx, "app", "stable"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("deleting a missing tag: %v", err)
		}
		checkReplay(t, r)
	})
}

func listing(t *testing.T, r *Registry, v ref.Ref) Listing {
	t.Helper()
	for l, err := range r.List(context.Background(), Filter{Name: v.Name, IncludeEnded: true}) {
		if err != nil {
			t.Fatal(err)
		}
		if l.Version == v.Version {
			return l
		}
	}
	t.Fatalf("%s not listed", v)
	return Listing{}
}

// TestRetainUntil: finalisation time + the class's days; a class change
// recomputes from the same base; an open package has none.
func TestRetainUntil(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		r := newRegistry(t, d)
		v := ref.Version("app", "1")
		mkPackage(t, r, v, "x", false, CreateOptions{})
		l := listing(t, r, v)
		fin, err := time.Parse(time.RFC3339Nano, l.FinalizedAt)
		if err != nil {
			t.Fatalf("finalized_at %q: %v", l.FinalizedAt, err)
		}
		if l.CreatedAt == "" || l.CreatedAt >= l.FinalizedAt {
			t.Fatalf("created_at %q, finalized_at %q", l.CreatedAt, l.FinalizedAt)
		}
		if want := fin.AddDate(0, 0, 90).Format(time.RFC3339Nano); l.RetainUntil != want {
			t.Fatalf("retain_until = %s, want %s (standard: 90 days)", l.RetainUntil, want)
		}
		if err := r.SetRetentionClass(ctx, v, "ephemeral"); err != nil {
			t.Fatal(err)
		}
		if got, want := listing(t, r, v).RetainUntil, fin.AddDate(0, 0, 7).Format(time.RFC3339Nano); got != want {
			t.Fatalf("after class ephemeral retain_until = %s, want %s", got, want)
		}
		o := ref.Version("app", "2")
		mkPackage(t, r, o, "y", true, CreateOptions{})
		if l := listing(t, r, o); l.RetainUntil != "" || l.FinalizedAt != "" || l.State != "open" {
			t.Fatalf("open package listed as %+v", l)
		}
		checkReplay(t, r)
	})
}

func countFiles(t *testing.T, d *db.DB, v ref.Ref) int {
	t.Helper()
	var n int
	if err := d.SQL.QueryRow(`SELECT count(*) FROM artifact_files WHERE package_name = $1 AND package_version = $2`, v.Name, v.Version).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestExpire follows the policy rule by rule: past retain-until, hold,
// tag, keep-last (natural order), abandonment; dry-run writes nothing;
// expired packages are gone from reads with when and why, their files stop
// referencing objects, their manifests stay in the log, and replay is
// exact.
func TestExpire(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		r := newRegistry(t, d)
		for _, v := range []string{"1.2", "1.3", "1.9", "1.10"} {
			mkPackage(t, r, ref.Version("app", v), "app "+v, false, CreateOptions{})
		}
		mkPackage(t, r, ref.Version("lib", "1"), "lib 1", false, CreateOptions{RetentionClass: "release"})
		mkPackage(t, r, ref.Version("wip", "1"), "wip", true, CreateOptions{})
		if _, err := r.SetTag(ctx, ref.Version("app", "1.2"), "stable"); err != nil {
			t.Fatal(err)
		}
		if err := r.PlaceHold(ctx, ref.Version("app", "1.9"), "legal"); err != nil {
			t.Fatal(err)
		}
		expiredBody := identity.NewHasher()
		expiredBody.Write([]byte("app 1.3"))
		addr := expiredBody.Sum().BLAKE3
		if h, err := r.Holding(ctx, addr); err != nil || len(h) != 1 || h[0].Version != "1.3" {
			t.Fatalf("Holding before expiry = %v, %v", h, err)
		}

		start := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
		now := start.AddDate(0, 0, 91) // past standard's 90 days, not release's 730
		opts := ExpireOptions{Now: now, KeepLast: 1, DryRun: true}
		before, _ := r.StateDigest(ctx)
		dry, err := r.Expire(ctx, opts)
		if err != nil {
			t.Fatal(err)
		}
		if after, _ := r.StateDigest(ctx); after != before {
			t.Fatal("dry run changed the views")
		}
		summary := func(es []Ended) []string {
			var out []string
			for _, e := range es {
				out = append(out, e.Action+" "+e.Name+"@"+e.Version)
			}
			return out
		}
		// 1.10 is the newest (natural order), 1.9 held, 1.2 tagged, lib a release.
		want := []string{"expired app@1.3", "abandoned wip@1"}
		if got := summary(dry); !slices.Equal(got, want) {
			t.Fatalf("dry run = %v, want %v", got, want)
		}
		opts.DryRun = false
		done, err := r.Expire(ctx, opts)
		if err != nil {
			t.Fatal(err)
		}
		if got := summary(done); !slices.Equal(got, want) {
			t.Fatalf("run = %v, want %v", got, want)
		}
		if done[0].At != "2027-02-25T12:00:00Z" || !strings.Contains(done[0].Reason, "retain-until") || done[0].DryRun {
			t.Fatalf("expired record %+v", done[0])
		}
		_, err = r.GetPackage(ctx, ref.Version("app", "1.3"))
		if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "expired at 2027-02-25T12:00:00Z (rule: retain-until") {
			t.Fatalf("GetPackage of an expired package: %v", err)
		}
		if _, _, err := r.GetFile(ctx, ref.Version("wip", "1"), "bin/wip", 0, -1); !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "abandoned at") {
			t.Fatalf("GetFile of an abandoned package: %v", err)
		}
		if _, err := r.IngestFile(ctx, ref.Version("wip", "1"), "more", strings.NewReader("x"), IngestOptions{}); !errors.Is(err, ErrNotFound) {
			t.Fatalf("ingest into an abandoned package: %v", err)
		}
		if n := countFiles(t, d, ref.Version("app", "1.3")); n != 0 {
			t.Fatalf("expired package still has %d artifact_files rows", n)
		}
		if h, err := r.Holding(ctx, addr); err != nil || len(h) != 0 {
			t.Fatalf("Holding after expiry = %v, %v", h, err)
		}
		if err := r.CreatePackage(ctx, ref.Version("app", "1.3"), CreateOptions{}); !errors.Is(err, ErrExists) {
			t.Fatalf("re-creating an expired version: %v", err)
		}
		// The manifest stays in the log.
		found := false
		for ev, err := range r.Log().Scan(ctx, 0) {
			if err != nil {
				t.Fatal(err)
			}
			found = found || ev.Type == TypePackageFinalized && strings.Contains(string(ev.Payload), "1.3")
		}
		if !found {
			t.Fatal("the expired package's manifest left the log")
		}
		if got := list(t, r, Filter{}); !slices.Equal(got, []string{"app@1.2", "app@1.9", "app@1.10", "lib@1"}) {
			t.Fatalf("live list = %v", got)
		}
		if got := list(t, r, Filter{State: Expired}); !slices.Equal(got, []string{"app@1.3"}) {
			t.Fatalf("expired list = %v", got)
		}
		checkReplay(t, r)

		// Again: nothing left to do; with include-tagged the tag goes too.
		if again, err := r.Expire(ctx, opts); err != nil || len(again) != 0 {
			t.Fatalf("second run = %v, %v", summary(again), err)
		}
		opts.IncludeTagged = true
		tagged, err := r.Expire(ctx, opts)
		if err != nil || !slices.Equal(summary(tagged), []string{"expired app@1.2"}) || !slices.Equal(tagged[0].Tags, []string{"stable"}) {
			t.Fatalf("include-tagged run = %+v, %v", tagged, err)
		}
		if _, err := r.GetPackage(ctx, mustParse(t, "app:stable")); !errors.Is(err, ErrNotFound) {
			t.Fatalf("tag of an expired package resolves: %v", err)
		}
		checkReplay(t, r)
		if _, err := r.Expire(ctx, ExpireOptions{KeepLast: -1}); !errors.Is(err, ErrInvalid) {
			t.Fatalf("negative keep-last: %v", err)
		}
	})
}

// TestDelete: refused on hold (a conflict), then a deleted package is gone
// with its reason, and replay is exact.
func TestDelete(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		r := newRegistry(t, d)
		v := ref.Version("app", "1")
		mkPackage(t, r, v, "x", false, CreateOptions{})
		if _, err := r.SetTag(ctx, v, "latest"); err != nil {
			t.Fatal(err)
		}
		if err := r.PlaceHold(ctx, mustParse(t, "app:latest"), "audit"); err != nil {
			t.Fatal(err)
		}
		if _, err := r.DeletePackage(ctx, v, "mistake"); !errors.Is(err, ErrConflict) {
			t.Fatalf("delete on hold: %v", err)
		}
		if _, err := r.DeletePackage(ctx, v, " "); !errors.Is(err, ErrInvalid) {
			t.Fatalf("delete without a reason: %v", err)
		}
		if err := r.ReleaseHold(ctx, mustParse(t, "app:latest")); err != nil {
			t.Fatal(err)
		}
		e, err := r.DeletePackage(ctx, mustParse(t, "app:latest"), "pushed by mistake")
		if err != nil || e.Action != Deleted || !slices.Equal(e.Tags, []string{"latest"}) {
			t.Fatalf("DeletePackage = %+v, %v", e, err)
		}
		if _, err := r.GetManifestBytes(ctx, v, records.CBOR); !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "deleted at") || !strings.Contains(err.Error(), "reason: pushed by mistake") {
			t.Fatalf("manifest of a deleted package: %v", err)
		}
		if _, err := r.DeletePackage(ctx, v, "again"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("deleting twice: %v", err)
		}
		checkReplay(t, r)
	})
}

// TestListFilters: each filter selects what it says; order is by name,
// then natural version order.
func TestListFilters(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		r := newRegistry(t, d)
		mkPackage(t, r, ref.Version("app", "1.10.0"), "a", false, CreateOptions{Labels: map[string]string{"team": "build", "os": "linux"}})
		mkPackage(t, r, ref.Version("app", "1.9.0"), "b", false, CreateOptions{Labels: map[string]string{"team": "build", "os": "darwin"}})
		mkPackage(t, r, ref.Version("tools/lint", "2"), "c", false, CreateOptions{RetentionClass: "release"})
		mkPackage(t, r, ref.Version("tools/fmt", "1"), "d", true, CreateOptions{})
		mkPackage(t, r, ref.Version("zzz", "1"), "e", false, CreateOptions{})
		if _, err := r.SetTag(ctx, ref.Version("app", "1.9.0"), "stable"); err != nil {
			t.Fatal(err)
		}
		fin := func(v ref.Ref) time.Time {
			ft, err := time.Parse(time.RFC3339Nano, listing(t, r, v).FinalizedAt)
			if err != nil {
				t.Fatal(err)
			}
			return ft
		}
		mid := fin(ref.Version("tools/lint", "2"))
		for _, tc := range []struct {
			f    Filter
			want []string
		}{
			{Filter{}, []string{"app@1.9.0", "app@1.10.0", "tools/fmt@1", "tools/lint@2", "zzz@1"}},
			{Filter{Name: "tools/*"}, []string{"tools/fmt@1", "tools/lint@2"}},
			{Filter{Name: "*"}, []string{"app@1.9.0", "app@1.10.0", "zzz@1"}},
			{Filter{Name: "app"}, []string{"app@1.9.0", "app@1.10.0"}},
			{Filter{Name: "a?p"}, []string{"app@1.9.0", "app@1.10.0"}},
			{Filter{Labels: map[string]string{"team": "build", "os": "linux"}}, []string{"app@1.10.0"}},
			{Filter{Labels: map[string]string{"team": "other"}}, nil},
			{Filter{Class: "release"}, []string{"tools/lint@2"}},
			{Filter{State: "open"}, []string{"tools/fmt@1"}},
			{Filter{Tag: "stable"}, []string{"app@1.9.0"}},
			{Filter{FinalizedBefore: mid}, []string{"app@1.9.0", "app@1.10.0"}},
			{Filter{FinalizedAfter: mid}, []string{"zzz@1"}},
		} {
			if got := list(t, r, tc.f); !slices.Equal(got, tc.want) {
				t.Errorf("List(%+v) = %v, want %v", tc.f, got, tc.want)
			}
		}
		l := listing(t, r, ref.Version("app", "1.9.0"))
		if l.FileCount != 1 || l.TotalSize != 1 || !slices.Equal(l.Tags, []string{"stable"}) || l.Labels["os"] != "darwin" || l.ManifestDigest == "" || l.RetentionClass != "standard" {
			t.Fatalf("listing %+v", l)
		}
		for _, f := range []Filter{{Name: "["}, {State: "gone"}} {
			for _, err := range r.List(ctx, f) {
				if !errors.Is(err, ErrInvalid) {
					t.Fatalf("List(%+v): %v", f, err)
				}
			}
		}
		// Holding by sha256 as well as blake3.
		h := identity.NewHasher()
		h.Write([]byte("c"))
		for _, a := range []identity.Digest{h.Sum().BLAKE3, h.Sum().SHA256} {
			got, err := r.Holding(ctx, a)
			if err != nil || len(got) != 1 || got[0] != (Holder{Name: "tools/lint", Version: "2", Path: "bin/tools/lint"}) {
				t.Fatalf("Holding(%s) = %v, %v", a, got, err)
			}
		}
	})
}
