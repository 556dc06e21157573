package db_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/artifactstore/artifact-store/pkg/db"
)

// TestSQLitePathHost (issue 14 item 10): the URL form takes an empty host
// only; a host part is refused rather than read as a relative directory.
func TestSQLitePathHost(t *testing.T) {
	good := map[string]string{
		"sqlite:x.db":           "x.db",
		"sqlite:/abs/x.db":      "/abs/x.db",
		"sqlite:///abs/x.db":    "/abs/x.db",
		"sqlite:rel/dir/x.db":   "rel/dir/x.db",
		"sqlite:localhost/x.db": "localhost/x.db", // the opaque form: a relative path, as written
	}
	for u, want := range good {
		if got, err := db.SQLitePath(u); err != nil || got != want {
			t.Errorf("SQLitePath(%q) = %q, %v; want %q", u, got, err, want)
		}
	}
	for _, u := range []string{"sqlite://localhost/tmp/x.db", "sqlite://x.db", "sqlite://host", "sqlite://", "sqlite:", "sqlite:///x?mode=ro"} {
		if got, err := db.SQLitePath(u); !errors.Is(err, db.ErrBadURL) {
			t.Errorf("SQLitePath(%q) = %q, %v; want ErrBadURL", u, got, err)
		} else if strings.Contains(u, "host/") && !strings.Contains(err.Error(), "no host") {
			t.Errorf("SQLitePath(%q): %v does not say why", u, err)
		}
	}
}

func FuzzSQLitePath(f *testing.F) {
	for _, s := range []string{"sqlite:x.db", "sqlite:///a", "sqlite://h/a", "sqlite://", "sqlite:a?b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, u string) {
		p, err := db.SQLitePath(u)
		if err != nil {
			if !errors.Is(err, db.ErrBadURL) {
				t.Fatalf("SQLitePath(%q): %v does not wrap ErrBadURL", u, err)
			}
			return
		}
		if p == "" || strings.Contains(p, "?") {
			t.Fatalf("SQLitePath(%q) = %q", u, p)
		}
		if strings.HasPrefix(u, "sqlite://") && !strings.HasPrefix(p, "/") {
			t.Fatalf("SQLitePath(%q) = %q: the URL form gave a relative path", u, p)
		}
	})
}
