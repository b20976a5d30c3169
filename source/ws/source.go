// Package ws is the WebSocket source: it reads one Restless Stream event per
// message from a runtime WebSocket URL (coder/websocket), resumes from the
// last event_id with cursor= in the query, and reconnects with jittered
// exponential backoff on any close or error.
//
// Reads are raw: a message is passed on byte for byte, whatever it holds, so
// a malformed event never closes the link; the pipeline judges it. A message
// longer than MaxEventBytes is cut at the limit, the rest is read and thrown
// away without being held in memory, and the frame is marked TooLarge; the
// link stays open. (The library's own read limit is disabled because it
// closes the connection.)
//
// Keepalive: the source pings every IdleTimeout/2. The idle watchdog ends
// the connection when no byte at all (messages, pings, pongs) arrives for
// IdleTimeout while the source waits on the server. An unanswered ping is
// not fatal by itself: a pong can only be read while the consumer asks for
// events, so only the watchdog, which ignores time spent waiting for the
// consumer, judges the link dead.
package ws

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/restless-stream/ingest"
	"github.com/restless-stream/ingest/client"
	"github.com/restless-stream/ingest/internal/backoff"
	"github.com/restless-stream/ingest/internal/stream"
)

// Defaults of Config, as documented on its fields.
const (
	DefaultIdleTimeout   = stream.DefaultIdleTimeout
	DefaultMaxEventBytes = stream.DefaultMaxEventBytes
)

// ErrClosed is returned by Next after Close.
var ErrClosed = stream.ErrClosed

// StatusError is the error (wrapped) of a handshake refused with an HTTP status.
type StatusError = stream.StatusError

// Config configures a Source.
type Config struct {
	// URL is the runtime WebSocket URL. ws:// and wss:// are used as is;
	// http:// and https:// are converted (PROTOCOL.md §2). Required.
	URL string
	// APIKey is sent as "Authorization: Bearer" when non-empty.
	APIKey ingest.Secret
	// Cursor is the resume position, sent as cursor= in the query.
	Cursor string
	// Since is sent as since= while no cursor exists.
	Since string
	// HTTPClient performs the handshake. nil means a client without Timeout.
	HTTPClient *http.Client
	// Reconnect paces reconnects; zero values mean 1s initial, 30s max, forever.
	Reconnect backoff.Policy
	// IdleTimeout ends a connection that sends nothing for this long; pings go
	// out every IdleTimeout/2. Default 60s.
	IdleTimeout time.Duration
	// MaxEventBytes cuts longer messages (marked TooLarge). Default 4194304.
	MaxEventBytes int
	// OnState, when set, receives every state change, from the source's
	// goroutine. It must not block.
	OnState func(ingest.StateChange)
}

// Source reads events from a WebSocket runtime URL.
type Source struct {
	r *stream.Runner
}

// NewSource checks cfg and returns a Source. It connects on the first Next.
func NewSource(cfg Config) (*Source, error) {
	d, err := newDialer(cfg)
	if err != nil {
		return nil, err
	}
	return &Source{r: stream.New(stream.Config{
		Dialer:    d,
		Cursor:    cfg.Cursor,
		Reconnect: cfg.Reconnect,
		OnState:   cfg.OnState,
	})}, nil
}

// Next blocks for the next frame. Reconnecting is internal: Next returns an
// error only when the source is done — a *ingest.PermanentError (HTTP
// 401/403/other 4xx, or the reconnect budget exhausted), ingest.ErrStreamEnded
// (HTTP 204), ErrClosed after Close — or ctx.Err() when ctx ends, which
// leaves the source intact.
func (s *Source) Next(ctx context.Context) (ingest.Frame, error) { return s.r.Next(ctx) }

// Cursor returns the cursor of the last frame Next returned.
func (s *Source) Cursor() string { return s.r.Cursor() }

// Close ends the connection and waits for the source's goroutines. Next then
// returns ErrClosed.
func (s *Source) Close() error { return s.r.Close() }

// NewDialer returns the source's connection logic for use with a
// stream.Runner (the direct source shares it).
func NewDialer(cfg Config) (stream.Dialer, error) { return newDialer(cfg) }

type dialer struct {
	u      *url.URL
	since  string
	header http.Header
	client *http.Client
	idle   time.Duration
	max    int
	buf    []byte // reused by each connection in turn: one at a time
}

func newDialer(cfg Config) (*dialer, error) {
	if cfg.URL == "" {
		return nil, errors.New("ws: URL is required")
	}
	raw, err := client.ToWebSocketURL(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("ws: URL %s: %w", stream.RedactURL(cfg.URL), stream.ScrubError(err, cfg.URL))
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "ws" && u.Scheme != "wss") || u.Host == "" {
		return nil, fmt.Errorf("ws: URL %s is not a ws(s):// URL with a host", stream.RedactURL(raw))
	}
	idle, maxEvent, err := stream.Limits("ws", cfg.IdleTimeout, cfg.MaxEventBytes)
	if err != nil {
		return nil, err
	}
	d := &dialer{u: u, since: cfg.Since, idle: idle, max: maxEvent, header: http.Header{}}
	if k := cfg.APIKey.Reveal(); k != "" {
		d.header.Set("Authorization", "Bearer "+k)
	}
	base := cfg.HTTPClient
	if base == nil {
		base = &http.Client{}
	}
	c := *base
	rt := c.Transport
	if rt == nil {
		rt = http.DefaultTransport
	}
	c.Transport = watchTransport{base: rt}
	d.client = &c
	return d, nil
}

type watchKey struct{}

// watchTransport puts the connection's watchdog on the upgraded body, so
// every byte the server sends (pings and pongs included) feeds it.
type watchTransport struct{ base http.RoundTripper }

func (t watchTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(req)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		return resp, err
	}
	if wd, ok := req.Context().Value(watchKey{}).(*stream.Watchdog); ok {
		if rwc, ok := resp.Body.(io.ReadWriteCloser); ok {
			resp.Body = &bufferedBody{ReadWriteCloser: rwc, br: bufio.NewReaderSize(wd.Reader(rwc), readBufSize)}
		}
	}
	return resp, nil
}

// readBufSize is the read buffer of a connection, as the SSE source's: the
// WebSocket library reads through a 4 KiB buffer of its own, which at a
// thousand 1 KiB messages a second and more meant a read system call every
// few messages.
const readBufSize = 32 << 10

// bufferedBody is the connection under the WebSocket library: reads come
// from br, which reads the network with the watchdog armed while it waits.
type bufferedBody struct {
	io.ReadWriteCloser
	br *bufio.Reader
}

func (b *bufferedBody) Read(p []byte) (int, error) { return b.br.Read(p) }

func (d *dialer) Dial(ctx context.Context, cursor string) (stream.Conn, error) {
	target := stream.ResumeURL(d.u, cursor, d.since)
	red := stream.RedactURL(target)
	cctx, cancel := context.WithCancel(ctx)
	c := &conn{d: d, cancel: cancel, red: red, pingDone: make(chan struct{})}
	c.wd = stream.NewWatchdog(d.idle, c.abort)
	c.wd.Arm() // bounds the handshake too
	ws, resp, err := websocket.Dial(context.WithValue(cctx, watchKey{}, c.wd), target,
		&websocket.DialOptions{HTTPClient: d.client, HTTPHeader: d.header})
	c.wd.Disarm()
	if err != nil {
		cancel()
		switch {
		case c.wd.Fired():
			return nil, fmt.Errorf("ws: connect %s: %w", red, c.wd.Err())
		case resp != nil && resp.StatusCode != http.StatusSwitchingProtocols:
			var body []byte
			if resp.Body != nil {
				body, _ = io.ReadAll(io.LimitReader(resp.Body, stream.MaxErrorBody))
			}
			return nil, fmt.Errorf("ws: connect: no WebSocket upgrade: %w", stream.CheckStatus(resp, red, body, time.Now()))
		}
		return nil, fmt.Errorf("ws: connect %s: %w", red, stream.ScrubError(err, target))
	}
	ws.SetReadLimit(-1) // bounded by readMessage instead, without closing the link
	c.ws.Store(ws)
	if c.wd.Fired() { // fired between Dial returning and the Store
		ws.CloseNow()
	}
	go c.keepalive(cctx, max(d.idle/2, time.Millisecond)) // a ticker needs a positive period
	return c, nil
}

type conn struct {
	d        *dialer
	ws       atomic.Pointer[websocket.Conn]
	wd       *stream.Watchdog
	cancel   context.CancelFunc
	red      string
	pingDone chan struct{}
}

// abort is the watchdog's action: end the handshake or the connection.
func (c *conn) abort() {
	c.cancel()
	if ws := c.ws.Load(); ws != nil {
		ws.CloseNow()
	}
}

func (c *conn) keepalive(ctx context.Context, every time.Duration) {
	defer close(c.pingDone)
	t := time.NewTicker(every)
	defer t.Stop()
	ws := c.ws.Load()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		pctx, cancel := context.WithTimeout(ctx, every)
		// The outcome does not matter here: the pong feeds the watchdog,
		// which judges the link (see the package doc).
		_ = ws.Ping(pctx)
		cancel()
	}
}

func (c *conn) Close() error {
	c.cancel()
	c.wd.Disarm()
	c.ws.Load().CloseNow()
	<-c.pingDone
	return nil
}

func (c *conn) Read() (stream.Event, error) {
	ws := c.ws.Load()
	_, r, err := ws.Reader(context.Background()) // Close and the watchdog end it
	if err != nil {
		return stream.Event{}, c.readErr(err)
	}
	n, tooLarge, err := c.readMessage(r)
	if err != nil {
		return stream.Event{}, c.readErr(err)
	}
	data := make([]byte, n)
	copy(data, c.d.buf[:n])
	if cap(c.d.buf) > maxKeptBuffer {
		c.d.buf = nil // one huge message must not pin its buffer for the stream's life
	}
	id, _ := client.EventIDOf(data)
	return stream.Event{Data: data, Cursor: id, TooLarge: tooLarge}, nil
}

// maxKeptBuffer is the largest read buffer a connection keeps between
// messages.
const maxKeptBuffer = 64 << 10

// readMessage reads at most max+1 bytes of the message into the dialer's
// buffer; when there are more, it reports tooLarge and discards the rest.
func (c *conn) readMessage(r io.Reader) (n int, tooLarge bool, err error) {
	limit := c.d.max + 1
	buf := c.d.buf[:0]
	if cap(buf) == 0 {
		buf = make([]byte, 0, min(limit, 16<<10))
	}
	for {
		if len(buf) == cap(buf) {
			if len(buf) >= limit {
				break
			}
			buf = append(buf, 0)[:len(buf)]
			if cap(buf) > limit {
				buf = buf[:len(buf):limit]
			}
		}
		m, rerr := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+m]
		if rerr == io.EOF {
			c.d.buf = buf
			return len(buf), false, nil
		}
		if rerr != nil {
			c.d.buf = buf
			return 0, false, rerr
		}
	}
	c.d.buf = buf
	if _, err := io.Copy(io.Discard, r); err != nil {
		return 0, false, err
	}
	return c.d.max, true, nil
}

func (c *conn) readErr(err error) error {
	if c.wd.Fired() {
		return fmt.Errorf("ws: %s: %w", c.red, c.wd.Err())
	}
	if code := websocket.CloseStatus(err); code != -1 {
		var ce websocket.CloseError
		errors.As(err, &ce)
		return fmt.Errorf("ws: %s: server closed the connection with status %d (%v) %q", c.red, int(code), code, ce.Reason)
	}
	return fmt.Errorf("ws: read %s: %w", c.red, err)
}
