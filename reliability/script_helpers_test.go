package reliability

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/restless-stream/ingest/client"
)

// scripted is an SSE server whose every connection is written by a test
// function, for misbehaviour the emulator cannot show (a 64 MiB line, a
// catalogue of bad events).
type scripted struct {
	url string
	mu  sync.Mutex
	n   int
}

// sseConn is one connection of a scripted server.
type sseConn struct {
	n      int    // 1, 2, ...
	cursor string // Last-Event-ID or cursor= of the request
	w      http.ResponseWriter
	rc     *http.ResponseController
	ctx    context.Context
}

// start answers 200 with the SSE content type.
func (c *sseConn) start() {
	c.w.Header().Set("Content-Type", "text/event-stream")
	c.w.WriteHeader(http.StatusOK)
	_ = c.rc.Flush()
}

// write writes raw bytes and flushes them.
func (c *sseConn) write(s string) error {
	if _, err := c.w.Write([]byte(s)); err != nil {
		return err
	}
	return c.rc.Flush()
}

// event writes one SSE event with the given id line (none when id is "").
func (c *sseConn) event(id, data string) error {
	var b strings.Builder
	if id != "" {
		fmt.Fprintf(&b, "id: %s\n", id)
	}
	fmt.Fprintf(&b, "event: update\ndata: %s\n\n", data)
	return c.write(b.String())
}

func newScripted(t *testing.T, serve func(c *sseConn)) *scripted {
	t.Helper()
	s := &scripted{}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+apiKey {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		s.mu.Lock()
		s.n++
		n := s.n
		s.mu.Unlock()
		cur := r.Header.Get("Last-Event-ID")
		if cur == "" {
			cur = r.URL.Query().Get("cursor")
		}
		serve(&sseConn{n: n, cursor: cur, w: w, rc: http.NewResponseController(w), ctx: r.Context()})
	}), ReadHeaderTimeout: 5 * time.Second}
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			_ = srv.Close()
		}
		<-done
	})
	s.url = "http://" + ln.Addr().String() + "/"
	return s
}

func (s *scripted) connections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n
}

// ev is a runtime event to write by hand.
type ev struct {
	typ       string // "" = update
	id        string // event_id; "" = none
	data      string // JSON of data
	signature string // "" = computed with secret; "-" = null
	secret    string
}

// json returns the event as the emulator writes it (snake_case, every member).
func (e ev) json(t *testing.T) string {
	t.Helper()
	typ := e.typ
	if typ == "" {
		typ = "update"
	}
	sig := `null`
	switch e.signature {
	case "":
		s, err := client.ComputeSignatureRaw(e.secret, []byte(e.data))
		if err != nil {
			t.Fatalf("sign %s: %v", e.data, err)
		}
		sig = `"` + s + `"`
	case "-":
	default:
		sig = `"` + e.signature + `"`
	}
	id := ""
	if e.id != "" {
		id = fmt.Sprintf(`,"event_id":%q`, e.id)
	}
	return fmt.Sprintf(`{"type":%q,"meta":{"timestamp":"2026-11-26T10:00:00.000+00:00","attempt_id":"a1","status":200,"latency_ms":3,"payload_mode_fallback":null},"data":%s,"error":null,"signature":%s%s}`,
		typ, e.data, sig, id)
}
