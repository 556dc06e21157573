package registry

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/artifactstore/artifact-store/pkg/canonical"
	"github.com/artifactstore/artifact-store/pkg/records"
	"github.com/artifactstore/artifact-store/pkg/ref"

	"github.com/artifactstore/artifact-store/pkg/dataplane"
	"github.com/artifactstore/artifact-store/pkg/db"
	"github.com/artifactstore/artifact-store/pkg/db/dbtest"
	"github.com/artifactstore/artifact-store/pkg/identity"
	"github.com/artifactstore/artifact-store/pkg/manifest"
	"pgregory.net/rapid"
)

func newRegistry(t testing.TB, d *db.DB) *Registry {
	t.Helper()
	dp, closeFn, err := dataplane.OpenLocal("local", t.TempDir(), false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeFn() })
	clock := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	return New(d, dp, Options{Actor: "test", Now: func() time.Time { clock = clock.Add(time.Second); return clock }})
}

func sumOf(b []byte) identity.Sum {
	s, _ := identity.SumReader(bytes.NewReader(b))
	return s
}

// TestSeedAcceptance: a 3-file package through create → ingest → finalise →
// read the manifest → verify digests → tail events → replay identical.
func TestSeedAcceptance(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		r := newRegistry(t, d)
		ref := ref.Version("app", "1.2.3")
		if err := r.CreatePackage(ctx, ref, CreateOptions{Labels: map[string]string{"team": "build"}}); err != nil {
			t.Fatal(err)
		}
		files := map[string][]byte{"bin/app": []byte("#!/bin/sh\necho hi\n"), "README": []byte("read me"), "lib/empty": nil}
		for p, b := range files {
			exp := sumOf(b)
			if _, err := r.IngestFile(ctx, ref, p, bytes.NewReader(b), IngestOptions{Expect: &exp}); err != nil {
				t.Fatal(err)
			}
		}
		mb, err := r.FinalizePackage(ctx, ref, FinalizeOptions{})
		if err != nil {
			t.Fatal(err)
		}
		got, err := r.GetManifestBytes(ctx, ref, records.CBOR)
		if err != nil || !bytes.Equal(got, mb) {
			t.Fatalf("GetManifestBytes: %v, equal=%v", err, bytes.Equal(got, mb))
		}
		m, err := manifest.Decode(got)
		if err != nil {
			t.Fatal(err)
		}
		p, _ := r.GetPackage(ctx, ref)
		if !p.Finalized || p.ManifestDigest != manifest.DigestOf(mb) || p.FileCount != 3 {
			t.Fatalf("package view %+v", p)
		}
		if len(m.Files) != 3 || len(m.StorageReceipts) != 3 || m.Package.Labels["team"] != "build" || m.Retention.Class != DefaultRetentionClass {
			t.Fatalf("manifest %+v", m)
		}
		for _, f := range m.Files {
			rc, rec, err := r.GetFile(ctx, ref, f.Path, 0, -1)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(rc)
			rc.Close()
			if !bytes.Equal(b, files[f.Path]) || rec != f || sumOf(b) != f.Sum() {
				t.Fatalf("%s: bytes or record differ", f.Path)
			}
		}
		// Ranges come through.
		rc, _, err := r.GetFile(ctx, ref, "README", 5, 2)
		if err != nil {
			t.Fatal(err)
		}
		if b, _ := io.ReadAll(rc); string(b) != "me" {
			t.Fatalf("range read %q", b)
		}
		rc.Close()
		// The log tells the whole story.
		var types []string
		for ev, err := range r.Log().Scan(ctx, 0) {
			if err != nil {
				t.Fatal(err)
			}
			types = append(types, ev.Type)
		}
		want := []string{TypePackageCreated, TypeFileIngested, TypeFileIngested, TypeFileIngested, TypePackageFinalized}
		if strings.Join(types, ",") != strings.Join(want, ",") {
			t.Fatalf("events %v", types)
		}
		assertReplayIdentical(t, r)
	})
}

// fataler is what assertReplayIdentical needs of *testing.T and *rapid.T.
type fataler interface {
	Helper()
	Fatal(args ...any)
	Fatalf(format string, args ...any)
}

func assertReplayIdentical(t fataler, r *Registry) {
	t.Helper()
	ctx := context.Background()
	before, err := r.StateDigest(ctx)
	if err != nil {
		t.Fatal(err)
	}
	chk, err := r.Replay(ctx, true)
	if err != nil {
		t.Fatal(err)
	}
	if chk.Before != before || chk.After != before {
		t.Fatalf("replay --check: before %v after %v, live %v", chk.Before, chk.After, before)
	}
	res, err := r.Replay(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	after, _ := r.StateDigest(ctx)
	if res.After != before || after != before {
		t.Fatalf("replay changed the state: %v → %v", before, after)
	}
}

func TestStateDigestSeesTampering(t *testing.T) {
	ctx := context.Background()
	d := dbtest.SQLite(t)
	r := newRegistry(t, d)
	ref := ref.Version("app", "1")
	r.CreatePackage(ctx, ref, CreateOptions{})
	r.IngestFile(ctx, ref, "a", strings.NewReader("a"), IngestOptions{})
	before, _ := r.StateDigest(ctx)
	if _, err := d.SQL.Exec(`UPDATE artifact_files SET size = 99`); err != nil {
		t.Fatal(err)
	}
	chk, err := r.Replay(ctx, true)
	if err != nil {
		t.Fatal(err)
	}
	if chk.Before == chk.After || chk.After != before {
		t.Fatalf("check did not see the tampered view: before %v after %v original %v", chk.Before, chk.After, before)
	}
	// A real replay repairs it.
	r.Replay(ctx, false)
	if now, _ := r.StateDigest(ctx); now != before {
		t.Fatal("replay did not restore the views")
	}
}

func TestRefusals(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		r := newRegistry(t, d)
		if err := r.CreatePackage(ctx, ref.Version("Bad Name", "1"), CreateOptions{}); !errors.Is(err, ErrInvalid) {
			t.Fatalf("bad name: %v", err)
		}
		ref := ref.Version("app", "2.0")
		if err := r.CreatePackage(ctx, ref, CreateOptions{RetentionClass: "nope"}); !errors.Is(err, ErrUnknownClass) {
			t.Fatalf("unknown class: %v", err)
		}
		if _, err := r.IngestFile(ctx, ref, "a", strings.NewReader("x"), IngestOptions{}); !errors.Is(err, ErrNotFound) {
			t.Fatalf("ingest into missing package: %v", err)
		}
		if err := r.CreatePackage(ctx, ref, CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		if err := r.CreatePackage(ctx, ref, CreateOptions{}); !errors.Is(err, ErrExists) {
			t.Fatalf("duplicate create: %v", err)
		}
		for _, bad := range []string{"../x", "/abs", "a//b", "a/./b", ""} {
			if _, err := r.IngestFile(ctx, ref, bad, strings.NewReader("x"), IngestOptions{}); !errors.Is(err, ErrInvalid) {
				t.Fatalf("path %q: %v", bad, err)
			}
		}
		x := sumOf([]byte("x"))
		if _, err := r.IngestFile(ctx, ref, "a", strings.NewReader("x"), IngestOptions{Expect: &x}); err != nil {
			t.Fatal(err)
		}
		// Same bytes again: a no-op, no event.
		head, _ := r.Log().Head(ctx)
		if res, err := r.IngestFile(ctx, ref, "a", strings.NewReader("x"), IngestOptions{Expect: &x}); err != nil || !res.Unchanged {
			t.Fatalf("re-ingest: %+v %v", res, err)
		}
		if h2, _ := r.Log().Head(ctx); h2 != head {
			t.Fatal("a no-op ingest appended an event")
		}
		y := sumOf([]byte("y"))
		if _, err := r.IngestFile(ctx, ref, "a", strings.NewReader("y"), IngestOptions{Expect: &y}); !errors.Is(err, ErrPathExists) {
			t.Fatalf("duplicate path: %v", err)
		}
		if _, err := r.IngestFile(ctx, ref, "a", strings.NewReader("y"), IngestOptions{}); !errors.Is(err, ErrPathExists) {
			t.Fatalf("duplicate path without expectation: %v", err)
		}
		// A stream that differs from its declared digest stores nothing.
		if _, err := r.IngestFile(ctx, ref, "b", strings.NewReader("changed"), IngestOptions{Expect: &y}); !errors.Is(err, dataplane.ErrDigestMismatch) {
			t.Fatalf("mismatch: %v", err)
		}
		if _, err := r.DataPlane().StatObject(ctx, sumOf([]byte("changed")).BLAKE3); !errors.Is(err, dataplane.ErrNotFound) {
			t.Fatalf("mismatched bytes were stored: %v", err)
		}
		if res, err := r.IngestFile(ctx, ref, "a", strings.NewReader("y"), IngestOptions{Expect: &y, Replace: true}); err != nil || res.Unchanged {
			t.Fatalf("replace: %+v %v", res, err)
		}
		if p, _ := r.GetPackage(ctx, ref); p.FileCount != 1 || p.TotalSize != 1 {
			t.Fatalf("after replace: %+v", p)
		}
		if _, err := r.GetManifestBytes(ctx, ref, records.CBOR); !errors.Is(err, ErrNotFinalized) {
			t.Fatalf("manifest of open package: %v", err)
		}
		if _, err := r.FinalizePackage(ctx, ref, FinalizeOptions{}); err != nil {
			t.Fatal(err)
		}
		if _, err := r.FinalizePackage(ctx, ref, FinalizeOptions{}); !errors.Is(err, ErrPackageFinalized) {
			t.Fatalf("second finalise: %v", err)
		}
		if _, err := r.IngestFile(ctx, ref, "c", strings.NewReader("z"), IngestOptions{}); !errors.Is(err, ErrPackageFinalized) {
			t.Fatalf("ingest into finalised: %v", err)
		}
		// Retention is policy and may change after finalisation.
		if err := r.SetRetentionClass(ctx, ref, "release"); err != nil {
			t.Fatal(err)
		}
		if err := r.ReleaseHold(ctx, ref); !errors.Is(err, ErrNotFound) {
			t.Fatalf("release without hold: %v", err)
		}
		if err := r.PlaceHold(ctx, ref, "legal"); err != nil {
			t.Fatal(err)
		}
		if p, _ := r.GetPackage(ctx, ref); !p.Hold || p.RetentionClass != "release" {
			t.Fatalf("retention view %+v", p)
		}
		assertReplayIdentical(t, r)
	})
}

// TestPropertyReplay: random sequences of operations, including refused
// ones, then replay gives the same state digest.
func TestPropertyReplay(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		r := newRegistry(t, d)
		ctx := context.Background()
		n := 0
		rapid.Check(t, func(rt *rapid.T) {
			n++
			pkgs := []ref.Ref{ref.Version("p", fmt.Sprint(n, ".1")), ref.Version("p", fmt.Sprint(n, ".2")), ref.Version("q", fmt.Sprint(n))}
			steps := rapid.IntRange(1, 25).Draw(rt, "steps")
			for range steps {
				ref := rapid.SampledFrom(pkgs).Draw(rt, "pkg")
				switch rapid.IntRange(0, 6).Draw(rt, "op") {
				case 0, 1:
					class := rapid.SampledFrom([]string{"", "standard", "release", "bogus"}).Draw(rt, "class")
					r.CreatePackage(ctx, ref, CreateOptions{RetentionClass: class, Labels: map[string]string{"k": rapid.StringMatching(`[a-z]{0,3}`).Draw(rt, "label")}})
				case 2, 3:
					body := []byte(rapid.StringMatching(`[a-c]{0,4}`).Draw(rt, "body"))
					path := rapid.SampledFrom([]string{"a", "b/c", "../bad"}).Draw(rt, "path")
					var exp *identity.Sum
					if rapid.Bool().Draw(rt, "expect") {
						s := sumOf(body)
						exp = &s
					}
					r.IngestFile(ctx, ref, path, bytes.NewReader(body), IngestOptions{Expect: exp, Replace: rapid.Bool().Draw(rt, "replace")})
				case 4:
					r.FinalizePackage(ctx, ref, FinalizeOptions{})
				case 5:
					r.SetRetentionClass(ctx, ref, rapid.SampledFrom([]string{"release", "nope"}).Draw(rt, "class"))
				case 6:
					if rapid.Bool().Draw(rt, "place") {
						r.PlaceHold(ctx, ref, "because")
					} else {
						r.ReleaseHold(ctx, ref)
					}
				}
			}
			assertReplayIdentical(rt, r)
			if err := r.Log().Verify(ctx); err != nil {
				rt.Fatal(err)
			}
		})
	})
}

// TestConcurrentCreateSamePackage: many writers creating one package at once
// get exactly one success and ErrExists for the rest, never a raw
// constraint violation (found on PostgreSQL under READ COMMITTED).
func TestConcurrentCreateSamePackage(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		r := newRegistry(t, d)
		ctx := context.Background()
		errs := make([]error, 8)
		done := make(chan struct{})
		for i := range errs {
			go func() {
				errs[i] = r.CreatePackage(ctx, ref.Version("race", "1"), CreateOptions{})
				done <- struct{}{}
			}()
		}
		for range errs {
			<-done
		}
		ok := 0
		for _, err := range errs {
			switch {
			case err == nil:
				ok++
			case !errors.Is(err, ErrExists):
				t.Fatalf("concurrent create: %v, want ErrExists", err)
			}
		}
		if ok != 1 {
			t.Fatalf("%d creates succeeded, want 1", ok)
		}
	})
}

// TestPutBatchEnd: a batch stops at the file limit, at the byte limit
// (a file larger than the limit still goes, alone), and at the end; and
// the file limit respects the descriptor limit.
func TestPutBatchEnd(t *testing.T) {
	recs := make([]records.File, 10)
	for i := range recs {
		recs[i].Size = 1
	}
	if got := putBatchEnd(recs, 0, 4); got != 4 {
		t.Errorf("file limit 4: end %d", got)
	}
	if got := putBatchEnd(recs, 8, 4); got != 10 {
		t.Errorf("from 8: end %d, want 10", got)
	}
	recs[2].Size = putBatchBytes
	if got := putBatchEnd(recs, 0, 10); got != 2 {
		t.Errorf("byte limit: end %d, want 2 (the big file starts the next batch)", got)
	}
	if got := putBatchEnd(recs, 2, 10); got != 3 {
		t.Errorf("a file of the byte limit goes alone: end %d, want 3", got)
	}
	if n := putBatchMax(); n < 1 || n > putBatchFiles || n > max(1, openFileLimit()/8) {
		t.Errorf("putBatchMax() = %d with a descriptor limit of %d", n, openFileLimit())
	}
}

// writeFiles writes n small files, f000, f001, …, holding "file 0",
// "file 1", …, into dir and returns their records in that order.
func writeFiles(t *testing.T, dir string, n int) []records.File {
	t.Helper()
	var recs []records.File
	for i := range n {
		p := filepath.Join(dir, fmt.Sprintf("f%03d", i))
		body := []byte(fmt.Sprint("file ", i))
		if err := os.WriteFile(p, body, 0o644); err != nil {
			t.Fatal(err)
		}
		recs = append(recs, records.FileOf(p, sumOf(body)))
	}
	return recs
}

// TestPutChecksFilesFirst: the files are checked in parallel, yet Put
// reports the first bad record in record order and touches nothing.
func TestPutChecksFilesFirst(t *testing.T) {
	ctx := t.Context()
	r := newRegistry(t, dbtest.SQLite(t))
	dir := t.TempDir()
	recs := writeFiles(t, dir, 200)
	pkg := ref.Version("checked", "1")
	// Record 151 names a missing file: the only bad one.
	missing := recs[150].Path
	if err := os.Remove(missing); err != nil {
		t.Fatal(err)
	}
	_, err := r.Put(ctx, pkg, recs, PutOptions{Root: dir, Workers: 16})
	if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "record 151:") {
		t.Fatalf("Put with record 151 missing: %v", err)
	}
	// Record 120 becomes a directory: it comes first, whichever is statted first.
	if err := os.Remove(recs[119].Path); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(recs[119].Path, 0o755); err != nil {
		t.Fatal(err)
	}
	for range 20 {
		_, err = r.Put(ctx, pkg, recs, PutOptions{Root: dir, Workers: 16})
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "record 120:") || !strings.Contains(err.Error(), "not a regular file") {
			t.Fatalf("Put with record 120 a directory and 151 missing: %v", err)
		}
	}
	if _, err := r.GetPackage(ctx, pkg); !errors.Is(err, ErrNotFound) {
		t.Fatalf("the refused Puts left the package behind: %v", err)
	}
}

// TestCheckRegularFiles: whatever the number of workers, the error is the
// first bad record's, and a run without bad records passes.
func TestCheckRegularFiles(t *testing.T) {
	dir := t.TempDir()
	var recs []records.File
	for i := range 200 {
		p := filepath.Join(dir, fmt.Sprintf("f%03d", i))
		if i%3 != 2 { // every third file is missing
			if err := os.WriteFile(p, nil, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		recs = append(recs, records.File{Path: p})
	}
	for _, workers := range []int{1, 3, 16, 1000} {
		for _, n := range []int{1, 2, 5, 200} {
			err := checkRegularFiles(recs[:n], workers)
			if n < 3 {
				if err != nil {
					t.Errorf("%d records, %d workers: %v, want nil", n, workers, err)
				}
				continue
			}
			if !errors.Is(err, fs.ErrNotExist) || !strings.HasPrefix(err.Error(), "record 3:") {
				t.Errorf("%d records, %d workers: %v, want record 3's error", n, workers, err)
			}
		}
		if err := checkRegularFiles(recs[3:5], workers); err != nil {
			t.Errorf("records 4 and 5, %d workers: %v", workers, err)
		}
	}
}

// TestPutFreesRecordsBeforeFinalize: once the files are stored, Put no
// longer holds the caller's records, so the collector can free them (some
// 50 MB for 200,000 files) while finalisation builds the manifest.
func TestPutFreesRecordsBeforeFinalize(t *testing.T) {
	ctx := t.Context()
	r := newRegistry(t, dbtest.SQLite(t))
	dir := t.TempDir()
	recs := writeFiles(t, dir, 64)
	var freed atomic.Bool
	runtime.AddCleanup(&recs[0], func(freed *atomic.Bool) { freed.Store(true) }, &freed)
	var freedFirst bool
	opts := PutOptions{Root: dir, Finalize: true, batchFiles: 16, beforeFinalize: func() {
		for i := 0; i < 100 && !freed.Load(); i++ {
			runtime.GC()
			time.Sleep(10 * time.Millisecond)
		}
		freedFirst = freed.Load()
	}}
	res, err := r.Put(ctx, ref.Version("free", "1"), recs, opts)
	if err != nil {
		t.Fatal(err)
	}
	if res.Stored != 64 || len(res.Manifest) == 0 {
		t.Fatalf("stored %d files, manifest of %d bytes", res.Stored, len(res.Manifest))
	}
	if !freedFirst {
		t.Fatal("the records were still reachable when finalisation began")
	}
}

// TestPutPipelined: with batches of three files, two in flight, the
// batches reach OnBatch in record order and commit in it; a file changed
// since it was digested fails its batch, the batch behind it stops, what
// committed stays consistent, and the same Put again completes it.
func TestPutPipelined(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := t.Context()
		r := newRegistry(t, d)
		dir := t.TempDir()
		recs := writeFiles(t, dir, 10)
		pkg := ref.Version("pipe", "1")
		// f04 (in the second batch) changes after it was digested.
		if err := os.WriteFile(recs[4].Path, []byte("changed"), 0o644); err != nil {
			t.Fatal(err)
		}
		var seen []string
		opts := PutOptions{Root: dir, Finalize: true, batchFiles: 3, OnBatch: func(done []Ingested) error {
			for _, d := range done {
				seen = append(seen, d.File.Path)
			}
			return nil
		}}
		if _, err := r.Put(ctx, pkg, recs, opts); !errors.Is(err, dataplane.ErrDigestMismatch) {
			t.Fatalf("Put with a changed file: %v, want a digest mismatch", err)
		}
		if want := []string{"f000", "f001", "f002"}; !slices.Equal(seen, want) {
			t.Fatalf("OnBatch before the failure saw %q, want %q", seen, want)
		}
		if res, err := r.Replay(ctx, true); err != nil || res.Before != res.After {
			t.Fatalf("views after the failure differ from the log: %v %v", res, err)
		}
		if err := os.WriteFile(recs[4].Path, []byte("file 4"), 0o644); err != nil { // as writeFiles wrote it
			t.Fatal(err)
		}
		seen = nil
		res, err := r.Put(ctx, pkg, recs, opts)
		if err != nil {
			t.Fatal(err)
		}
		var want []string
		for _, f := range recs {
			want = append(want, filepath.Base(f.Path))
		}
		if !slices.Equal(seen, want) || res.Stored+res.Unchanged != 10 {
			t.Fatalf("OnBatch saw %q (stored %d, unchanged %d), want %q", seen, res.Stored, res.Unchanged, want)
		}
		m, err := manifest.Decode(res.Manifest)
		if err != nil || len(m.Files) != 10 {
			t.Fatalf("manifest: %d files, %v", len(m.Files), err)
		}
		// The ingest events are in record order: batches committed in turn.
		var order []string
		for ev, err := range r.Log().Scan(ctx, 0) {
			if err != nil {
				t.Fatal(err)
			}
			if ev.Type == TypeFileIngested {
				var p fileIngested
				if err := canonical.Unmarshal(ev.Payload, &p); err != nil {
					t.Fatal(err)
				}
				order = append(order, p.Path)
			}
		}
		if !slices.IsSorted(order) || len(order) != 10 {
			t.Fatalf("ingest events in the order %q, want record order", order)
		}
	})
}
