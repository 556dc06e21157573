package events_test

import (
	"testing"
	"time"

	"github.com/artifactstore/artifact-store/pkg/events"
)

// TestParseTime (issue 14 item 12): a tenth fraction digit is refused, not
// truncated.
func TestParseTime(t *testing.T) {
	good := map[string]time.Time{
		"2026-01-02T03:04:05Z":           time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		"2026-01-02T03:04:05.123456789Z": time.Date(2026, 1, 2, 3, 4, 5, 123456789, time.UTC),
		"2026-01-02T03:04:05.5+01:00":    time.Date(2026, 1, 2, 2, 4, 5, 500000000, time.UTC),
	}
	for s, want := range good {
		if got, err := events.ParseTime(s); err != nil || !got.Equal(want) {
			t.Errorf("ParseTime(%q) = %v, %v; want %v", s, got, err, want)
		}
	}
	for _, s := range []string{"2026-01-02T03:04:05.1234567891Z", "2026-01-02T03:04:05.0000000000+01:00", "2026-01-02", "now", ""} {
		if got, err := events.ParseTime(s); err == nil {
			t.Errorf("ParseTime(%q) = %v, want an error", s, got)
		}
	}
}

func FuzzParseTime(f *testing.F) {
	for _, s := range []string{"2026-01-02T03:04:05Z", "2026-01-02T03:04:05.123456789Z", "2026-01-02T03:04:05.1234567891Z", "2026-01-02T03:04:05,5Z"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := events.ParseTime(s)
		if err != nil {
			return
		}
		// What is accepted is kept exactly: the nanosecond form parses
		// back to the same instant.
		back, err := events.ParseTime(got.Format(time.RFC3339Nano))
		if err != nil || !back.Equal(got) {
			t.Fatalf("ParseTime(%q) = %v, whose RFC 3339 form gives %v, %v", s, got, back, err)
		}
	})
}
