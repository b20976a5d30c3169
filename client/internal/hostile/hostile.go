// Package hostile is a small upstream for tests that misbehaves on purpose:
// a loopback HTTP server whose every request follows a script (SSE bodies,
// WebSocket messages, redirects, odd statuses), and that records what it
// received.
package hostile

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// Request is what the server received.
type Request struct {
	// N numbers the requests from 0.
	N      int
	Method string
	Host   string
	Path   string
	Query  url.Values
	Header http.Header
}

// Handler answers request n.
type Handler func(n int, w http.ResponseWriter, r *http.Request)

// Server is a loopback server that answers with a Handler.
type Server struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []Request
}

// New starts a server answering with h; it stops at the end of the test.
func New(t testing.TB, h Handler) *Server {
	s := &Server{}
	s.Server = httptest.NewServer(s.handler(h))
	t.Cleanup(s.Close)
	return s
}

func (s *Server) handler(h Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		n := len(s.reqs)
		s.reqs = append(s.reqs, Request{N: n, Method: r.Method, Host: r.Host, Path: r.URL.Path, Query: r.URL.Query(), Header: r.Header.Clone()})
		s.mu.Unlock()
		h(n, w, r)
	})
}

// NewTLS is New over https; Client returns an http.Client that trusts it.
func NewTLS(t testing.TB, h Handler) *Server {
	s := &Server{}
	s.Server = httptest.NewTLSServer(s.handler(h))
	t.Cleanup(s.Close)
	return s
}

// Requests returns what the server received so far.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.reqs...)
}

// SSE answers with an event stream: each chunk written and flushed in turn,
// then the response ends.
func SSE(w http.ResponseWriter, chunks ...string) {
	w.Header().Set("Content-Type", "text/event-stream")
	w.WriteHeader(http.StatusOK)
	f, _ := w.(http.Flusher)
	for _, c := range chunks {
		if _, err := w.Write([]byte(c)); err != nil {
			return
		}
		if f != nil {
			f.Flush()
		}
	}
}

// Hold answers with an event stream that writes the chunks, then keeps the
// response open until the client goes away.
func Hold(w http.ResponseWriter, r *http.Request, chunks ...string) {
	SSE(w, chunks...)
	<-r.Context().Done()
}

// Flood answers with an event stream that writes chunk again and again
// until the client goes away.
func Flood(w http.ResponseWriter, r *http.Request, chunk string) {
	w.Header().Set("Content-Type", "text/event-stream")
	w.WriteHeader(http.StatusOK)
	b := []byte(chunk)
	for r.Context().Err() == nil {
		if _, err := w.Write(b); err != nil {
			return
		}
	}
}

// WS accepts a WebSocket and sends each message as a text message, then
// closes it normally.
func WS(w http.ResponseWriter, r *http.Request, messages ...string) {
	c, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	defer c.CloseNow()
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	for _, m := range messages {
		if err := c.Write(ctx, websocket.MessageText, []byte(m)); err != nil {
			return
		}
	}
	_ = c.Close(websocket.StatusNormalClosure, "")
}

// WSEndless accepts a WebSocket and starts one text message that never
// ends: frames of chunk until the client goes away.
func WSEndless(w http.ResponseWriter, r *http.Request, chunk string) {
	c, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	defer c.CloseNow()
	wr, err := c.Writer(r.Context(), websocket.MessageText)
	if err != nil {
		return
	}
	b := []byte(chunk)
	for r.Context().Err() == nil {
		if _, err := wr.Write(b); err != nil {
			return
		}
	}
}

// Redirect answers with a 307 to target.
func Redirect(w http.ResponseWriter, target string) {
	w.Header().Set("Location", target)
	w.WriteHeader(http.StatusTemporaryRedirect)
}

// Status answers with code and, when set, a Retry-After header.
func Status(w http.ResponseWriter, code int, retryAfter string) {
	if retryAfter != "" {
		w.Header().Set("Retry-After", retryAfter)
	}
	w.WriteHeader(code)
}
