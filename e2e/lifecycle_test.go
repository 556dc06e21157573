package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/artifactstore/artifact-store/pkg/db"
)

// TestLifecycleTools (issue 15): as-tag, as-retain and as-ls in pipelines
// of the built tools, on both databases: tags resolve everywhere and never
// change a manifest, a tag points only at a finalised package, a hold
// blocks deletion and expiry, --dry-run writes nothing, an expired package
// is gone from as-ls and as-get (exit 3, "expired at"), --keep-last
// protects the newest versions, and the log still replays exactly.
func TestLifecycleTools(t *testing.T) {
	for _, d := range []db.Dialect{db.SQLite, db.Postgres} {
		t.Run(string(d), func(t *testing.T) {
			e := newEnv(t, d)
			src := t.TempDir()
			os.MkdirAll(filepath.Join(src, "bin"), 0o755)
			os.WriteFile(filepath.Join(src, "bin", "app"), []byte("app\n"), 0o755)
			os.WriteFile(filepath.Join(src, "README"), []byte("read me\n"), 0o644)
			for _, v := range []string{"1.9.0", "1.10.0", "1.2.0"} {
				e.ok(`as-digest ` + src + ` | as-put --package app@` + v + ` --root ` + src + ` --finalize > /dev/null`)
			}
			e.ok(`as-digest ` + src + ` | as-put --package app@2.0.0-open --root ` + src + ` > /dev/null`)

			before := e.ok(`as-get --manifest app@1.9.0 | as-manifest digest`)
			e.ok(`as-tag app@1.9.0 stable`)
			if got := e.ok(`as-get --manifest app:stable | as-manifest digest`); got != before {
				t.Fatalf("app:stable resolves to %s, app@1.9.0 is %s", got, before)
			}
			e.ok(`as-tag app@1.10.0 stable`) // move it
			if after := e.ok(`as-get --manifest app@1.9.0 | as-manifest digest`); after != before {
				t.Fatalf("moving a tag changed a manifest: %s → %s", before, after)
			}
			if out := e.ok(`as-get --package app:stable README`); out != "read me\n" {
				t.Fatalf("as-get --package app:stable: %q", out)
			}
			if out := e.ok(`as-tag --list app --json`); !strings.Contains(out, `"version":"1.10.0"`) || strings.Count(out, "\n") != 1 {
				t.Fatalf("as-tag --list: %s", out)
			}
			for _, c := range []struct {
				cmd  string
				code int
			}{
				{"as-tag app@2.0.0-open beta", 5},   // not finalised
				{"as-tag app@1.9.0 1.2.0", 5},       // a version's text
				{"as-tag app@1.9.0 'not a tag'", 2}, // grammar
				{"as-tag app@9.9.9 x", 3},           // no such version
				{"as-tag --delete app:nope", 3},     // no such tag
				{"as-retain app@1.9.0 --class nope", 2},
				{"as-retain expire --now yesterday", 2},
			} {
				if out, code := e.sh(c.cmd); code != c.code {
					t.Errorf("%s: exit %d, want %d\n%s", c.cmd, code, c.code, out)
				}
			}

			// as-ls REF lists the files as records that rebuild the manifest's files.
			files := func(jcs string) string {
				var m struct{ Files json.RawMessage }
				if err := json.Unmarshal([]byte(jcs), &m); err != nil {
					t.Fatalf("%v: %s", err, jcs)
				}
				return string(m.Files)
			}
			stored := e.ok(`as-get --manifest app@1.9.0 --json`)
			rebuilt := e.ok(`as-ls app@1.9.0 | as-manifest --package app@1.9.0 | as-manifest jcs`)
			if files(stored) != files(rebuilt) {
				t.Fatalf("as-ls | as-manifest rebuilt other files:\n%s\n%s", files(stored), files(rebuilt))
			}

			// Hold: blocks delete; release; delete.
			e.ok(`as-retain app@1.2.0 --hold "audit"`)
			if out, code := e.sh(`as-retain delete app@1.2.0 --reason mistake`); code != 5 || !strings.Contains(out, "hold") {
				t.Fatalf("delete on hold: exit %d %s", code, out)
			}
			e.ok(`as-retain app@1.2.0 --release-hold`)

			// Expiry far in the future: a dry run writes nothing.
			head := e.ok(`as-events head --json`)
			dry := e.ok(`as-retain expire --now 2099-01-01T00:00:00Z --keep-last 1 --dry-run --json 2>/dev/null`)
			if e.ok(`as-events head --json`) != head {
				t.Fatal("as-retain expire --dry-run appended events")
			}
			real := e.ok(`as-retain expire --now 2099-01-01T00:00:00Z --keep-last 1 --json 2>/dev/null`)
			if strings.ReplaceAll(dry, `"dry_run":true`, `"dry_run":false`) != real {
				t.Fatalf("dry run and real run differ:\n%s\n%s", dry, real)
			}
			// 1.10.0 is the newest (natural order) and tagged; 1.9.0 and 1.2.0
			// expire; the open package is abandoned.
			for _, want := range []string{`"action":"expired","name":"app","version":"1.9.0"`, `"action":"expired","name":"app","version":"1.2.0"`, `"action":"abandoned","name":"app","version":"2.0.0-open"`} {
				if !strings.Contains(real, want) {
					t.Errorf("expire output lacks %s:\n%s", want, real)
				}
			}
			if strings.Contains(real, `"version":"1.10.0"`) {
				t.Errorf("the newest, tagged version expired:\n%s", real)
			}
			if out, code := e.sh(`as-get --package app@1.9.0 README`); code != 3 || !strings.Contains(out, "expired at") {
				t.Fatalf("as-get of an expired package: exit %d %s", code, out)
			}
			if ls := e.ok(`as-ls 'app' --json`); strings.Contains(ls, `"1.9.0"`) || !strings.Contains(ls, `"1.10.0"`) {
				t.Fatalf("as-ls after expiry:\n%s", ls)
			}
			e.ok(`as-events verify && as-replay --check`)
		})
	}
}
