package registry

import (
	"encoding/json"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/artifactstore/artifact-store/pkg/db"
)

// sqliteList is the JSON array of ss, the one parameter from which an
// SQLite statement reads a list (json_each(?)); nil is the empty array.
// The statement's text is then the same whatever the list's length:
// parsed in microseconds, where an IN list or VALUES of hundreds of
// parameters took about a millisecond, and SQLite looks every $N up in its
// list of named parameters, when it parses them and again when the driver
// asks each one's name to bind it (ADR 0015). Every string must be valid
// UTF-8 without NUL (paths and digests' text are), so that json_each gives
// back exactly ss. The list must be bound as TEXT (a Go string): SQLite
// reads a BLOB as its binary JSON.
func sqliteList(ss []string) (string, error) {
	if ss == nil {
		ss = []string{} // json.Marshal writes nil as null, which json_each reads as one NULL
	}
	for _, s := range ss {
		if !utf8.ValidString(s) || strings.IndexByte(s, 0) >= 0 {
			return "", fmt.Errorf("registry: %q is not valid UTF-8 without NUL", s)
		}
	}
	b, err := json.Marshal(ss)
	return string(b), err
}

// inList appends ss to args and returns what goes inside the parentheses
// of "x IN (…)" to test x against them, its parameters numbered after the
// arguments args held before: on PostgreSQL one $k per string; on SQLite
// one $k holding them all as a JSON list (sqliteList), read through
// json_each. The fragment may appear twice in one statement.
func inList(dialect db.Dialect, args []any, ss []string) ([]any, string, error) {
	if dialect != db.Postgres {
		list, err := sqliteList(ss)
		if err != nil {
			return nil, "", err
		}
		args = append(args, list)
		return args, fmt.Sprintf("SELECT value FROM json_each($%d)", len(args)), nil
	}
	var in strings.Builder
	for i, s := range ss {
		if i > 0 {
			in.WriteString(", ")
		}
		args = append(args, s)
		fmt.Fprintf(&in, "$%d", len(args))
	}
	return args, in.String(), nil
}
