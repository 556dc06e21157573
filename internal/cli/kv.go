package cli

import (
	"fmt"
	"strings"
)

// KeyValues is a repeatable KEY=VALUE flag (--label, --fact). A key given
// twice is refused rather than one value silently winning.
type KeyValues map[string]string

// String implements flag.Value.
func (kv KeyValues) String() string { return "" }

// Set implements flag.Value.
func (kv KeyValues) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if !ok || k == "" {
		return fmt.Errorf("want KEY=VALUE, got %q", s)
	}
	if _, dup := kv[k]; dup {
		return fmt.Errorf("%q given twice", k)
	}
	kv[k] = v
	return nil
}

// Map returns kv as a map, nil when empty (manifests encode no empty map).
func (kv KeyValues) Map() map[string]string {
	if len(kv) == 0 {
		return nil
	}
	return kv
}
