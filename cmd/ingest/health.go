package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/restless-stream/ingest"
)

// Readiness tracks what /readyz reports: ready while the sink is connected and
// every stream is connected or still within its reconnect budget.
type Readiness struct {
	sinkConnected func() bool // nil = always connected (file, stdout)
	// joined, in cluster mode, reports whether this replica has joined the
	// cluster: not ready before, ready after even while it owns no stream.
	joined func() bool

	mu      sync.Mutex
	streams map[string]*streamHealth

	// degraded, when set, marks streams that rejects everything or cannot
	// reconnect as not ready (see Degradation).
	degraded *Degradation
}

// maxReportedError bounds an error /readyz quotes (an upstream writes
// part of it): redacted first, then cut.
const maxReportedError = 1024

type streamHealth struct {
	state     ingest.State
	attempt   int
	connected bool // has connected at least once
	lastErr   string
	ckErr     string // why the last checkpoint save failed; "" while saves work
}

// NewReadiness returns a tracker for the named streams.
func NewReadiness(names []string) *Readiness {
	r := &Readiness{streams: map[string]*streamHealth{}}
	for _, n := range names {
		r.streams[n] = &streamHealth{state: ingest.StateConnecting}
	}
	return r
}

// Add starts tracking a stream added while running (reload, discovery);
// a stream already tracked is left as it is.
func (r *Readiness) Add(name string) {
	r.mu.Lock()
	if _, ok := r.streams[name]; !ok {
		r.streams[name] = &streamHealth{state: ingest.StateConnecting}
	}
	r.mu.Unlock()
}

// Remove stops tracking a stream that left the set.
func (r *Readiness) Remove(name string) {
	r.mu.Lock()
	delete(r.streams, name)
	r.mu.Unlock()
}

// SetSink sets the function reporting the sink's connection.
func (r *Readiness) SetSink(connected func() bool) {
	r.mu.Lock()
	r.sinkConnected = connected
	r.mu.Unlock()
}

// SetJoined makes readiness need joined() (cluster mode).
func (r *Readiness) SetJoined(joined func() bool) {
	r.mu.Lock()
	r.joined = joined
	r.mu.Unlock()
}

// State records a stream's state change.
func (r *Readiness) State(stream string, c ingest.StateChange) {
	r.mu.Lock()
	defer r.mu.Unlock()
	h, ok := r.streams[stream]
	if !ok {
		return
	}
	h.state = c.State
	h.attempt = c.Attempt
	if c.State == ingest.StateConnected {
		h.connected = true
		h.lastErr = ""
	}
	if c.Err != nil {
		h.lastErr = truncateRedacted(c.Err.Error(), maxReportedError)
	}
}

// CheckpointFailing records a failed checkpoint save of stream: it is not
// ready until a save succeeds (CheckpointSaved).
func (r *Readiness) CheckpointFailing(stream string, err error) {
	msg := "checkpoint save failed"
	if err != nil {
		msg = truncateRedacted(err.Error(), maxReportedError)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if h, ok := r.streams[stream]; ok {
		h.ckErr = msg
	}
}

// CheckpointSaved records a successful checkpoint save of stream.
func (r *Readiness) CheckpointSaved(stream string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if h, ok := r.streams[stream]; ok {
		h.ckErr = ""
	}
}

// ready: connected, or reconnecting after having connected once, or ended
// cleanly by its server. A source whose reconnect budget runs out reports
// StateFailed, so reconnecting always means within the budget.
//
// A stream whose last checkpoint save failed is not ready, whatever its
// source does: it waits for its store, and a restart would read it again.
func (h *streamHealth) ready() bool {
	if h.ckErr != "" {
		return false
	}
	switch h.state {
	case ingest.StateConnected, ingest.StateEnded:
		return true
	case ingest.StateReconnecting:
		return h.connected
	}
	return false
}

type readyReport struct {
	Ready         bool `json:"ready"`
	SinkConnected bool `json:"sink_connected"`
	// Joined is set in cluster mode: whether this replica has joined.
	Joined  *bool                   `json:"joined,omitempty"`
	Streams map[string]streamReport `json:"streams"`
}

type streamReport struct {
	State   string `json:"state"`
	Ready   bool   `json:"ready"`
	Attempt int    `json:"attempt,omitempty"`
	Error   string `json:"error,omitempty"`
	// CheckpointError is why the stream's last checkpoint save failed.
	CheckpointError string `json:"checkpoint_error,omitempty"`
	// Degraded says why the stream does no useful work, or "".
	Degraded string `json:"degraded,omitempty"`
}

// Report returns the readiness and its details.
func (r *Readiness) Report() readyReport {
	r.mu.Lock()
	sink, joined := r.sinkConnected, r.joined
	rep := readyReport{Streams: map[string]streamReport{}}
	names := make([]string, 0, len(r.streams))
	for n := range r.streams {
		names = append(names, n)
	}
	sort.Strings(names)
	allReady := true
	for _, n := range names {
		h := r.streams[n]
		ok := h.ready()
		reason := r.degraded.Reason(n)
		ok = ok && reason == ""
		allReady = allReady && ok
		rep.Streams[n] = streamReport{State: h.state.String(), Ready: ok, Attempt: h.attempt, Error: h.lastErr, CheckpointError: h.ckErr, Degraded: reason}
	}
	r.mu.Unlock()
	rep.SinkConnected = sink == nil || sink()
	rep.Ready = rep.SinkConnected && allReady
	if joined != nil {
		j := joined()
		rep.Joined = &j
		rep.Ready = rep.Ready && j
	}
	return rep
}

// newHTTPHandler serves /metrics, /healthz and /readyz, and what each of
// routes registers (the status endpoints).
func newHTTPHandler(m *Metrics, r *Readiness, routes ...func(*http.ServeMux)) http.Handler {
	mux := http.NewServeMux()
	for _, add := range routes {
		add(mux)
	}
	mux.Handle("GET /metrics", promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{Registry: m.Registry}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		rep := r.Report()
		w.Header().Set("Content-Type", "application/json")
		if !rep.Ready {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		_ = json.NewEncoder(w).Encode(rep)
	})
	return mux
}

// httpServer is the metrics and health server.
type httpServer struct {
	srv  *http.Server
	ln   net.Listener
	done chan error
}

// startHTTP listens on addr and serves h in the background.
func startHTTP(addr string, h http.Handler) (*httpServer, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("http.addr: listen %s: %w", addr, err)
	}
	s := &httpServer{
		srv:  &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second},
		ln:   ln,
		done: make(chan error, 1),
	}
	go func() { s.done <- s.srv.Serve(ln) }()
	return s, nil
}

// Addr is where the server listens.
func (s *httpServer) Addr() string { return s.ln.Addr().String() }

// Shutdown stops the server and waits for its goroutine.
func (s *httpServer) Shutdown(ctx context.Context) error {
	err := s.srv.Shutdown(ctx)
	if serr := <-s.done; serr != nil && !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = serr
	}
	return err
}
