package ws

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/coder/websocket"
)

// BenchmarkSourceLoopback measures the source end to end over loopback: an
// httptest server writes 1 KiB messages as fast as it can.
func BenchmarkSourceLoopback(b *testing.B) {
	pad := strings.Repeat("x", 1024-70)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		ctx := r.Context()
		var buf []byte
		for i := 0; ; i++ {
			buf = fmt.Appendf(buf[:0], `{"type":"update","data":"%s","event_id":"%d"}`, pad, i)
			if c.Write(ctx, websocket.MessageText, buf) != nil {
				return
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
