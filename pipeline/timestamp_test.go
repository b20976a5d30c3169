package pipeline

import (
	"testing"
	"time"
)

func TestParseTimestamp(t *testing.T) {
	for _, s := range []string{
		"2026-06-07T00:49:36.562+00:00", "2026-06-07T00:49:36Z", "2026-06-07t00:49:36z",
		"2026-06-07T00:49:36.123456789Z", "2026-06-07T00:49:36.1234567891Z", "2026-06-07T00:49:36,5Z",
		"2026-06-07T23:59:59-07:30", "2024-02-29T12:00:00Z", "2026-02-29T12:00:00Z", "2026-04-31T00:00:00Z",
		"2026-06-07T24:00:00Z", "2026-06-07T00:60:00Z", "2026-06-07T00:00:60Z", "2026-06-07T00:00:00+24:00",
		"2026-06-07T00:00:00", "2026-06-07 00:00:00Z", "2026-6-07T00:00:00Z", "2026-06-07T00:00:00.Z",
		"2026-06-07T00:00:00+0000", "2026-06-07T00:00:00Zjunk", "", "x", "0000-01-01T00:00:00Z",
	} {
		got, ok := parseTimestamp(s)
		want, err := time.Parse(time.RFC3339, s)
		if ok != (err == nil) || ok && !got.Equal(want) {
			t.Errorf("parseTimestamp(%q) = %v, %v; time.Parse = %v, %v", s, got, ok, want, err)
		}
	}
}

func FuzzParseTimestamp(f *testing.F) {
	f.Add("2026-06-07T00:49:36.562+00:00")
	f.Add("2026-06-07T00:49:36Z")
	f.Add("2024-02-29T23:59:59.999999999-12:59")
	f.Fuzz(func(t *testing.T, s string) {
		got, ok := parseTimestamp(s)
		want, err := time.Parse(time.RFC3339, s)
		if ok != (err == nil) || ok && !got.Equal(want) {
			t.Fatalf("parseTimestamp(%q) = %v, %v; time.Parse = %v, %v", s, got, ok, want, err)
		}
	})
}

func BenchmarkParseTimestamp(b *testing.B) {
	for _, s := range []string{"2026-06-07T00:49:36.562+00:00", "2026-06-07T00:49:36.562Z"} {
		b.Run(s, func(b *testing.B) {
			for b.Loop() {
				if _, ok := parseTimestamp(s); !ok {
					b.Fatal("not parsed")
				}
			}
		})
	}
}
