package main_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/artifactstore/artifact-store/internal/tooltest"
	"github.com/artifactstore/artifact-store/pkg/canonical"
	"github.com/artifactstore/artifact-store/pkg/health"
	"github.com/artifactstore/artifact-store/pkg/identity"
	"github.com/artifactstore/artifact-store/pkg/records"
	"github.com/artifactstore/artifact-store/pkg/registry"
	"github.com/artifactstore/artifact-store/pkg/storage"
)

// env configures nothing but a private embedded store.
func env(t *testing.T) (data string, env []string) {
	data = t.TempDir()
	return data, []string{
		"XDG_DATA_HOME=" + data,
		"ARTIFACTSTORE_DATABASE_URL=", "ARTIFACTSTORE_STORAGE_LOCAL_ROOT=",
		"ARTIFACTSTORE_STORAGE_BACKEND=", "ARTIFACTSTORE_LOG_LEVEL=", "ARTIFACTSTORE_SCRUB_MAX_AGE=",
		"AWS_CONFIG_FILE=" + os.DevNull, "AWS_SHARED_CREDENTIALS_FILE=" + os.DevNull,
	}
}

// lines decodes JSON lines.
func lines(t *testing.T, out []byte) []map[string]any {
	t.Helper()
	var recs []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("%q: %v", l, err)
		}
		recs = append(recs, m)
	}
	return recs
}

// TestScrubTool: a clean store scrubs with exit 0; after a byte of a stored
// object is flipped, as-scrub reports it and exits 4, as-get refuses it
// with 4 and as-health is degraded (exit 1, "integrity" failing); as-put of
// the same bytes repairs it, and the next scrub is clean again. Usage
// errors exit 2.
func TestScrubTool(t *testing.T) {
	data, env := env(t)
	body := []byte("bytes for the scrub tool test, which will rot\n")
	sum, err := identity.SumReader(bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(src, body, 0o644); err != nil {
		t.Fatal(err)
	}
	digest := func() []byte {
		r := tooltest.Run(t, "", nil, env, "as-digest", src)
		if r.Code != 0 {
			t.Fatalf("as-digest: %d %s", r.Code, r.Stderr)
		}
		return r.Stdout
	}
	if r := tooltest.Run(t, "", digest(), env, "as-put", "--package", "app@1", "--finalize"); r.Code != 0 {
		t.Fatalf("as-put: %d %s", r.Code, r.Stderr)
	}

	r := tooltest.Run(t, "", nil, env, "as-scrub", "--json")
	if r.Code != 0 {
		t.Fatalf("clean scrub: exit %d %s", r.Code, r.Stderr)
	}
	recs := lines(t, r.Stdout)
	if len(recs) != 1 || recs[0]["summary"] != true || recs[0]["verified"] != float64(1) || recs[0]["bytes"] != float64(len(body)) {
		t.Fatalf("clean scrub: %v", recs)
	}

	// Flip a byte of the stored object.
	key, _ := storage.Key(sum.BLAKE3)
	obj := filepath.Join(data, "artifact-store", "objects", filepath.FromSlash(key))
	rotten := bytes.Clone(body)
	rotten[3] ^= 0x20
	if err := os.Chmod(obj, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(obj, rotten, 0o644); err != nil {
		t.Fatal(err)
	}
	r = tooltest.Run(t, "", nil, env, "as-scrub", "--json")
	if r.Code != 4 {
		t.Fatalf("scrub of a flipped byte: exit %d, want 4\n%s", r.Code, r.Stderr)
	}
	recs = lines(t, r.Stdout)
	if len(recs) != 2 || recs[0]["content_address"] != sum.BLAKE3.String() || !strings.Contains(recs[0]["detail"].(string), "blake3") || recs[1]["corrupt"] != float64(1) {
		t.Fatalf("scrub of a flipped byte: %v", recs)
	}
	if r := tooltest.Run(t, "", nil, env, "as-get", sum.BLAKE3.String()); r.Code != 4 || len(r.Stdout) != 0 || !strings.Contains(string(r.Stderr), "corrupt") {
		t.Fatalf("as-get of a corrupt object: exit %d, %d bytes out, %s", r.Code, len(r.Stdout), r.Stderr)
	}
	if r := tooltest.Run(t, "", nil, env, "as-get", "--package", "app@1", "f"); r.Code != 4 {
		t.Fatalf("as-get --package of a corrupt file: exit %d %s", r.Code, r.Stderr)
	}
	r = tooltest.Run(t, "", nil, env, "as-health", "--check")
	var rep health.Report
	if err := json.Unmarshal(r.Stdout, &rep); err != nil {
		t.Fatalf("as-health: %v\n%s", err, r.Stdout)
	}
	if r.Code != 1 || rep.Status != health.StatusDegraded || rep.Checks.Integrity == nil || rep.Checks.Integrity.CorruptObjects != 1 {
		t.Fatalf("as-health with a corrupt object: exit %d %s", r.Code, r.Stdout)
	}

	// Storing the same bytes again repairs it.
	if r := tooltest.Run(t, "", digest(), env, "as-put", "--package", "app@2", "--finalize"); r.Code != 0 {
		t.Fatalf("as-put (repair): %d %s", r.Code, r.Stderr)
	}
	if r := tooltest.Run(t, "", nil, env, "as-get", sum.BLAKE3.String()); r.Code != 0 || !bytes.Equal(r.Stdout, body) {
		t.Fatalf("as-get after repair: exit %d %q %s", r.Code, r.Stdout, r.Stderr)
	}
	if r := tooltest.Run(t, "", nil, env, "as-scrub", "--json"); r.Code != 0 {
		t.Fatalf("scrub after repair: exit %d %s %s", r.Code, r.Stdout, r.Stderr)
	}
	if r := tooltest.Run(t, "", nil, env, "as-health", "--check"); r.Code != 0 {
		t.Fatalf("as-health after repair: exit %d %s", r.Code, r.Stdout)
	}
	// An age limit the last verification exceeds: degraded.
	if r := tooltest.Run(t, "", nil, env, "as-health", "--check", "--scrub-max-age", "1ns"); r.Code != 1 || !strings.Contains(string(r.Stdout), "oldest verification") {
		t.Fatalf("as-health --scrub-max-age 1ns: exit %d %s", r.Code, r.Stdout)
	}
	if r := tooltest.Run(t, "", nil, append(env, "ARTIFACTSTORE_SCRUB_MAX_AGE=1ns"), "as-health", "--check"); r.Code != 1 {
		t.Fatalf("ARTIFACTSTORE_SCRUB_MAX_AGE=1ns: exit %d %s", r.Code, r.Stdout)
	}
	if r := tooltest.Run(t, "", nil, env, "as-health", "--check", "--scrub-max-age", "8760h"); r.Code != 0 {
		t.Fatalf("as-health --scrub-max-age 8760h: exit %d %s", r.Code, r.Stdout)
	}

	for _, args := range [][]string{{"--sample", "0"}, {"--sample", "150"}, {"--sample", "x"}, {"--older-than", "-1h"}, {"extra"}, {"--nope"}} {
		if r := tooltest.Run(t, "", nil, env, "as-scrub", args...); r.Code != 2 {
			t.Errorf("as-scrub %v: exit %d, want 2 (%s)", args, r.Code, r.Stderr)
		}
	}
	if r := tooltest.Run(t, "", nil, env, "as-scrub", "--help"); r.Code != 0 || !strings.Contains(string(r.Stdout), "Examples:") {
		t.Errorf("--help: exit %d %s", r.Code, r.Stdout)
	}
	if r := tooltest.Run(t, "", nil, env, "as-scrub", "--sample", "50", "--limit", "1", "--json"); r.Code != 0 {
		t.Errorf("--sample 50 --limit 1: exit %d %s", r.Code, r.Stderr)
	}
}

// TestScrubSummaryCBOR: written to a pipe, as-scrub's records are canonical
// CBOR that the next tool can read, and the summary says how long the scrub
// took in whole milliseconds. The summary carried a float of seconds, which
// is outside the canonical data model: as-scrub | anything failed with
// "value outside the data model" after scrubbing everything.
func TestScrubSummaryCBOR(t *testing.T) {
	_, env := env(t)
	src := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(src, []byte("summary record\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	d := tooltest.Run(t, "", nil, env, "as-digest", src)
	if r := tooltest.Run(t, "", d.Stdout, env, "as-put", "--package", "app@1", "--finalize"); r.Code != 0 {
		t.Fatalf("as-put: %d %s", r.Code, r.Stderr)
	}
	r := tooltest.Run(t, "", nil, env, "as-scrub")
	if r.Code != 0 {
		t.Fatalf("as-scrub (CBOR): exit %d %s", r.Code, r.Stderr)
	}
	rd := records.NewReader(bytes.NewReader(r.Stdout))
	var s registry.ScrubSummary
	if err := rd.Decode(&s); err != nil {
		t.Fatalf("summary record: %v (%x)", err, r.Stdout)
	}
	if !s.Summary || s.Objects != 1 || s.Verified != 1 {
		t.Fatalf("summary: %+v", s)
	}
	var m map[string]any
	if err := canonical.Unmarshal(r.Stdout, &m); err != nil {
		t.Fatal(err)
	}
	if _, ok := m["milliseconds"].(uint64); !ok {
		t.Fatalf("milliseconds is %T (%v), want an unsigned integer: %v", m["milliseconds"], m["milliseconds"], m)
	}
}
