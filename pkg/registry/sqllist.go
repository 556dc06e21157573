package registry

import (
	"encoding/json"
	"fmt"
	"strings"
	"unicode/utf8"
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

// postgresList appends ss to args and returns their parameter markers for
// an IN list on PostgreSQL: "$k, $k+1, …", numbered after the arguments
// args held before.
func postgresList(args []any, ss []string) ([]any, string) {
	var in strings.Builder
	for i, s := range ss {
		if i > 0 {
			in.WriteString(", ")
		}
		args = append(args, s)
		fmt.Fprintf(&in, "$%d", len(args))
	}
	return args, in.String()
}
