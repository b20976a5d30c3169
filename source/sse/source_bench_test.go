package sse

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// BenchmarkSourceLoopback measures the source end to end over loopback: an
// httptest server writes 1 KiB events as fast as it can.
func BenchmarkSourceLoopback(b *testing.B) {
	pad := strings.Repeat("x", 1024-70)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		buf := make([]byte, 0, 64<<10)
		for i := 0; ; i++ {
			buf = fmt.Appendf(buf, "id: %d\ndata: {\"type\":\"update\",\"data\":\"%s\",\"event_id\":\"%d\"}\n\n", i, pad, i)
			if len(buf) > 60<<10 {
				if _, err := w.Write(buf); err != nil {
					return
				}
				buf = buf[:0]
			}
		}
	}))
	defer srv.Close()
	s, err := NewSource(Config{URL: srv.URL})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	if _, err := s.Next(ctx); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(1024)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, err := s.Next(ctx); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "frames/s")
}
