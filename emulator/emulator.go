package emulator

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/restless-stream/ingest/client"
)

// Options configure an Emulator. The zero value is usable: one generated API
// key, no state file, the defaults below.
type Options struct {
	// APIKeys are the keys accepted as x-api-key (REST) and Bearer or apiKey=
	// (runtime). None: one key "rs_" + 64 hex is generated; see APIKey.
	APIKeys []string
	// StateFile keeps managed streams (with their secrets) and direct
	// sessions across restarts: loaded by New, rewritten atomically on every
	// change and at Close. "" = memory only.
	StateFile string
	// ReplayBuffer is how many events each stream keeps for resuming
	// connections. Default 10000.
	ReplayBuffer int
	// KeepAlive is the interval of ": keepalive" comments on idle SSE
	// connections. Default 15s; negative disables them.
	KeepAlive time.Duration
	// PingInterval is the interval of WebSocket pings. Default 15s; negative
	// disables them.
	PingInterval time.Duration
	// MinPollingInterval is the smallest pollingInterval accepted, in seconds.
	// Default 0.01 (fractional intervals make tests fast).
	MinPollingInterval float64
	// DefaultPollingInterval is used when a stream gives none, in seconds. Default 30.
	DefaultPollingInterval float64
	// SessionTTL is how long a direct session lives after it was created or
	// last reused. Default 1h.
	SessionTTL time.Duration
	// DirectIdle is how long a direct stream (/direct, /ws/direct) keeps
	// polling and its replay buffer after its last connection left, so a
	// reconnecting client resumes. Default 60s.
	DirectIdle time.Duration
	// DirectSecret signs the events of direct streams and sessions. "" = a
	// generated secret; see DirectSecret.
	DirectSecret string
	// DemoAPI serves the demo upstream at /_emulator/demo/orders (a JSON
	// document that changes every second) and creates the managed stream
	// "demo" polling it once a second.
	DemoAPI bool
	// DemoSecret is the HMAC secret of the "demo" stream. "" = generated; see Secret.
	DemoSecret string
	// PublicURL is the base of the sseUrl and websocketUrl the REST API hands
	// out. "" = taken from each request (scheme and Host header).
	PublicURL string
	// HTTPClient polls upstreams. nil = a client with a 30s timeout.
	HTTPClient *http.Client
	// MaxUpstreamBytes limits an upstream response body. Default 16 MiB.
	MaxUpstreamBytes int64
	// AllowUpstream lists the upstreams the pollers may fetch, as host,
	// host:port, *.domain or [ipv6]:port patterns (port may be *); a
	// redirect to any other is not followed. Empty: any upstream. Either
	// way never the emulator's own address (its port on this machine),
	// except its demo upstream (DemoPath), served in-process.
	AllowUpstream []string
	// MaxReplayBytes bounds the bytes of one stream's replay buffer: past
	// it the oldest events are dropped (the newest is always kept).
	// Default 64 MiB.
	MaxReplayBytes int64
	// MaxFirehoseBytes bounds the memory all firehose connections together
	// may use to generate their events (each takes about its event size
	// plus 256 KiB); a connection beyond it is answered 503 with
	// Retry-After. Default 256 MiB.
	MaxFirehoseBytes int64
}

func (o *Options) setDefaults() {
	if o.ReplayBuffer <= 0 {
		o.ReplayBuffer = 10000
	}
	if o.KeepAlive == 0 {
		o.KeepAlive = 15 * time.Second
	}
	if o.PingInterval == 0 {
		o.PingInterval = 15 * time.Second
	}
	if o.MinPollingInterval <= 0 {
		o.MinPollingInterval = 0.01
	}
	if o.DefaultPollingInterval <= 0 {
		o.DefaultPollingInterval = 30
	}
	if o.SessionTTL <= 0 {
		o.SessionTTL = time.Hour
	}
	if o.DirectIdle <= 0 {
		o.DirectIdle = 60 * time.Second
	}
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{Timeout: 30 * time.Second}
	}
	if o.MaxUpstreamBytes <= 0 {
		o.MaxUpstreamBytes = 16 << 20
	}
	if o.MaxReplayBytes <= 0 {
		o.MaxReplayBytes = 64 << 20
	}
	if o.MaxFirehoseBytes <= 0 {
		o.MaxFirehoseBytes = 256 << 20
	}
}

// Emulator is a local Restless Stream: REST API, runtime endpoints, pollers.
// Its methods are safe for concurrent use.
type Emulator struct {
	opts     Options
	keys     map[string]bool
	firstKey string
	direct   string // direct streams' secret

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup // pollers and the janitor
	// handlers counts runtime connections being served; Add only under mu
	// while not closed, so Close can wait for them.
	handlers sync.WaitGroup
	mux      *http.ServeMux

	mu        sync.Mutex
	streams   map[string]*stream // managed, demo and firehose streams
	sessions  map[string]*stream
	dedupe    map[string]string // dedupeKey → session id
	directs   map[string]*stream
	closed    bool
	saveErr   error
	srv       *http.Server
	serveDone chan struct{}
	url       string

	conns atomic.Int64 // open runtime connections
	// client polls upstreams (upstreamClient).
	client *http.Client
	// fhBytes is the memory the firehose connections reserved (Options.MaxFirehoseBytes).
	fhBytes atomic.Int64
}

// New returns an emulator configured by opts, with its state loaded from
// opts.StateFile when that file exists. Call Close to stop it.
func New(opts Options) (*Emulator, error) {
	opts.setDefaults()
	e := &Emulator{
		opts:     opts,
		keys:     map[string]bool{},
		streams:  map[string]*stream{},
		sessions: map[string]*stream{},
		dedupe:   map[string]string{},
		directs:  map[string]*stream{},
	}
	for _, k := range opts.APIKeys {
		if k == "" {
			return nil, errors.New("emulator: empty API key")
		}
		if e.firstKey == "" {
			e.firstKey = k
		}
		e.keys[k] = true
	}
	if e.firstKey == "" {
		e.firstKey = "rs_" + randomHex(32)
		e.keys[e.firstKey] = true
	}
	if err := checkAllowUpstream(opts.AllowUpstream); err != nil {
		return nil, fmt.Errorf("emulator: %w", err)
	}
	e.client = e.upstreamClient(opts.HTTPClient)
	e.direct = opts.DirectSecret
	if e.direct == "" {
		e.direct = randomHex(32)
	}
	e.ctx, e.cancel = context.WithCancel(context.Background())
	if opts.StateFile != "" {
		if err := e.load(opts.StateFile); err != nil {
			e.cancel()
			return nil, err
		}
	}
	if opts.DemoAPI {
		e.addDemoStream()
	}
	if err := e.persistIdentity(); err != nil {
		e.cancel()
		return nil, err
	}
	e.mux = e.routes()
	e.mu.Lock()
	for _, st := range e.streams {
		if st.kind != kindFirehose && st.cfg.Status == client.StatusActive {
			e.startPollerLocked(st)
		}
	}
	for _, st := range e.sessions {
		e.startPollerLocked(st)
	}
	e.mu.Unlock()
	e.wg.Add(1)
	go e.janitor()
	return e, nil
}

// APIKey returns an accepted API key: the first of Options.APIKeys, or the
// generated one (for `ingest emulate` to print).
func (e *Emulator) APIKey() string { return e.firstKey }

// DirectSecret returns the HMAC secret of direct streams and sessions.
func (e *Emulator) DirectSecret() string { return e.direct }

// Handler returns the emulator's HTTP handler: REST API, runtime endpoints
// and /_emulator admin endpoints on one server.
func (e *Emulator) Handler() http.Handler { return e.mux }

// Start listens on addr (e.g. "127.0.0.1:0") and serves in the background.
func (e *Emulator) Start(addr string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return errors.New("emulator: closed")
	}
	if e.srv != nil {
		return errors.New("emulator: already started")
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("emulator: listen %s: %w", addr, err)
	}
	e.srv = &http.Server{Handler: e.mux, ReadHeaderTimeout: 10 * time.Second}
	e.url = "http://" + ln.Addr().String()
	e.serveDone = make(chan struct{})
	go func() {
		defer close(e.serveDone)
		_ = e.srv.Serve(ln)
	}()
	return nil
}

// URL returns http://host:port after Start, else "".
func (e *Emulator) URL() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.url
}

// Close stops the pollers, ends every runtime connection, stops the server
// (when started) and writes the state file. It returns the first state-file
// write error seen, if any.
func (e *Emulator) Close() error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil
	}
	e.closed = true
	e.cancel()
	var pollers []*poller
	for _, m := range []map[string]*stream{e.streams, e.sessions, e.directs} {
		for _, st := range m {
			if st.poller != nil {
				pollers = append(pollers, st.poller)
				st.poller = nil
			}
			if st.feed != nil {
				st.feed.close()
			}
		}
	}
	srv, done := e.srv, e.serveDone
	e.mu.Unlock()
	for _, p := range pollers {
		p.stop()
	}
	if srv != nil {
		_ = srv.Close()
		<-done
	}
	e.handlers.Wait()
	e.wg.Wait()
	e.mu.Lock()
	defer e.mu.Unlock()
	e.saveLocked()
	return e.saveErr
}

// Connections returns the number of open runtime connections.
func (e *Emulator) Connections() int { return int(e.conns.Load()) }

// janitor expires direct sessions and idle direct streams.
func (e *Emulator) janitor() {
	defer e.wg.Done()
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-e.ctx.Done():
			return
		case now := <-t.C:
			e.expire(now)
		}
	}
}

func (e *Emulator) expire(now time.Time) {
	var stop []*poller
	e.mu.Lock()
	changed := false
	for id, st := range e.sessions {
		if !now.Before(st.expires) {
			stop = append(stop, e.dropLocked(st))
			delete(e.sessions, id)
			if e.dedupe[st.dedupeKey] == id {
				delete(e.dedupe, st.dedupeKey)
			}
			changed = true
		}
	}
	for key, st := range e.directs {
		if st.subs.Load() == 0 && !st.idleSince.IsZero() && now.Sub(st.idleSince) >= e.opts.DirectIdle {
			stop = append(stop, e.dropLocked(st))
			delete(e.directs, key)
		}
	}
	if changed {
		e.saveLocked()
	}
	e.mu.Unlock()
	for _, p := range stop {
		if p != nil {
			p.stop()
		}
	}
}

// dropLocked detaches a stream's poller (returned, to be stopped outside the
// lock) and closes its feed so its connections end.
func (e *Emulator) dropLocked(st *stream) *poller {
	p := st.poller
	st.poller = nil
	if st.feed != nil {
		st.feed.close()
	}
	return p
}

func (e *Emulator) isKey(k string) bool {
	return k != "" && e.keys[k]
}
