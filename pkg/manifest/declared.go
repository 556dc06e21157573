package manifest

import (
	"fmt"
	"strconv"
	"time"
)

// maxEpoch is 9999-12-31T23:59:59Z, the last second RFC 3339 can spell.
const maxEpoch = 253402300799

// DeclaredTime resolves the creation time a producer declares, the one rule
// every tool and library user shares (docs/manifest.md "created_at"):
// flagValue if it is not empty — an RFC 3339 time, with any UTC offset,
// normalised to UTC in TimeLayout; fractions of a second are refused —
// else $SOURCE_DATE_EPOCH read through getenv — a decimal number of
// seconds since 1970, nothing else (no sign, spaces or suffix) — else ""
// (no time). SOURCE_DATE_EPOCH set but empty is the same as unset. The
// errors wrap ErrInvalid and name the flag or variable.
func DeclaredTime(flagValue string, getenv func(string) string) (string, error) {
	if flagValue != "" {
		t, err := time.Parse(time.RFC3339Nano, flagValue)
		if err != nil {
			return "", fmt.Errorf("%w: --created-at %q is not an RFC 3339 time such as 2026-01-02T15:04:05Z", ErrInvalid, flagValue)
		}
		s, err := FormatTime(t)
		if err != nil {
			return "", fmt.Errorf("%w: --created-at: %v", ErrInvalid, err)
		}
		return s, nil
	}
	env := getenv("SOURCE_DATE_EPOCH")
	if env == "" {
		return "", nil
	}
	secs, err := strconv.ParseUint(env, 10, 64)
	if err != nil || secs > maxEpoch {
		return "", fmt.Errorf("%w: SOURCE_DATE_EPOCH=%q is not a number of seconds since 1970 (0 to %d)", ErrInvalid, env, maxEpoch)
	}
	return FormatTime(time.Unix(int64(secs), 0))
}
