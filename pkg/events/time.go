package events

import (
	"fmt"
	"time"
)

// maxFraction is how many fraction-of-a-second digits a time may carry: an
// event's time is kept to the nanosecond (FormatTime).
const maxFraction = 9

// ParseTime parses a producer-supplied event time: RFC 3339 with at most
// nine fraction digits. Go's time.Parse accepts more and silently drops
// them; a tenth digit is refused here instead, so that the time recorded is
// exactly the time given, never a truncated one.
func ParseTime(s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("events: time %q is not RFC 3339", s)
	}
	// The fraction, if any, follows the seconds at byte 19
	// ("2006-01-02T15:04:05"); time.Parse accepted the prefix.
	if len(s) > 19 && (s[19] == '.' || s[19] == ',') {
		n := 0
		for i := 20; i < len(s) && '0' <= s[i] && s[i] <= '9'; i++ {
			n++
		}
		if n > maxFraction {
			return time.Time{}, fmt.Errorf("events: time %q has %d fraction digits; at most %d (nanoseconds) are kept", s, n, maxFraction)
		}
	}
	return t, nil
}
