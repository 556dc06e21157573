package registry

import (
	"encoding/json"
	"fmt"
	"strings"
	"unicode/utf8"
)

// sqliteList is the JSON array of ss, the one parameter from which an
// SQLite statement reads a list (json_each(?)). The statement's text is
// then the same whatever the list's length: parsed in microseconds, where
// an IN list or VALUES of hundreds of parameters took a millisecond to
// parse and bound each parameter through the driver's look-up of named
// ones (ADR 0015). Every string must be valid UTF-8 without NUL (paths
// and digests' text are), so that json_each gives back exactly ss.
func sqliteList(ss []string) (string, error) {
	for _, s := range ss {
		if !utf8.ValidString(s) || strings.IndexByte(s, 0) >= 0 {
			return "", fmt.Errorf("registry: %q is not valid UTF-8 without NUL", s)
		}
	}
	b, err := json.Marshal(ss)
	return string(b), err
}
