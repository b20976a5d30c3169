package client

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

	"github.com/restless-stream/ingest/client/internal/stream"
)

type wsDialer struct {
	u      *url.URL
	since  string
	header http.Header
	client *http.Client
	idle   time.Duration
	open   time.Duration
	max    int
	buf    []byte // reused by each connection in turn: one at a time
	places cursorPlaces
}

func (s *StreamsService) newWSDialer(rawURL string, set *subscribeSettings) (*wsDialer, error) {
	if rawURL == "" {
		return nil, fmt.Errorf("restless: subscribe websocket: the URL is empty")
	}
	raw, err := ToWebSocketURL(rawURL)
	if err != nil {
		return nil, fmt.Errorf("restless: subscribe websocket: URL %s: %w", redactRawURL(rawURL), scrubError(err, rawURL))
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "ws" && u.Scheme != "wss") || u.Host == "" {
		return nil, fmt.Errorf("restless: subscribe websocket: URL %s is not a ws(s):// URL with a host", redactRawURL(raw))
	}
	c := s.streamHTTP()
	rt := c.Transport
	if rt == nil {
		rt = http.DefaultTransport
	}
	c.Transport = watchTransport{base: rt}
	return &wsDialer{u: u, since: set.since, header: s.runtimeHeader(set), client: c,
		idle: set.idleTimeout, open: set.openTimeout, max: set.maxEventBytes}, nil
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
	if c, ok := req.Context().Value(watchKey{}).(*wsConn); ok {
		if rwc, ok := resp.Body.(io.ReadWriteCloser); ok {
			c.budget = newBudgetReader(c.wd.Reader(rwc), c.d.max, req.Context().Done())
			c.body = &bufferedBody{ReadWriteCloser: rwc, br: bufio.NewReaderSize(c.budget, readBufSize)}
			resp.Body = c.body
		}
	}
	return resp, nil
}

// readBufSize is the read buffer of a connection, as the SSE decoder's: the
// WebSocket library reads through a 4 KiB buffer of its own, which at a
// thousand 1 KiB messages a second and more meant a read system call every
// few messages.
const readBufSize = 32 << 10

// bufferedBody is the connection under the WebSocket library: reads come
// from br, which reads the network with the watchdog armed while it waits.
// It remembers that the network failed: the library reports a connection
// cut in the middle of a message as the message's end (io.EOF), and only
// this tells the two apart.
type bufferedBody struct {
	io.ReadWriteCloser
	br     *bufio.Reader
	failed atomic.Bool
}

func (b *bufferedBody) Read(p []byte) (int, error) {
	n, err := b.br.Read(p)
	if err != nil {
		b.failed.Store(true)
	}
	return n, err
}

func (d *wsDialer) Dial(ctx context.Context, cursor string) (stream.Conn, error) {
	if !validID(cursor) || d.places.noQuery {
		// Never an unsendable value; and after a 414 the query has no room
		// for it: the subscription starts from since= instead.
		cursor = ""
	}
	target := resumeURL(d.u, cursor, d.since)
	red := redactRawURL(target)
	cctx, cancel := context.WithCancel(ctx)
	c := &wsConn{d: d, cancel: cancel, red: red, pingDone: make(chan struct{})}
	c.wd = stream.NewWatchdog(d.idle, c.abort)
	ot := newOpenTimer(d.open, c.abort)
	c.wd.Arm() // bounds the handshake too
	ws, resp, err := websocket.Dial(context.WithValue(cctx, watchKey{}, c), target,
		&websocket.DialOptions{HTTPClient: d.client, HTTPHeader: d.header})
	c.wd.Disarm()
	late := ot.stop()
	if err != nil {
		cancel()
		switch {
		case ot.fired():
			return nil, fmt.Errorf("restless: ws: connect %s: %w", red, ot.err())
		case c.wd.Fired():
			return nil, fmt.Errorf("restless: ws: connect %s: %w", red, c.wd.Err())
		case resp != nil && resp.StatusCode != http.StatusSwitchingProtocols:
			d.places.refused(resp.StatusCode)
			var body []byte
			if resp.Body != nil {
				body, _ = io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
			}
			return nil, fmt.Errorf("restless: ws: connect: no WebSocket upgrade: %w", checkStatus(resp, red, body, time.Now()))
		}
		return nil, fmt.Errorf("restless: ws: connect %s: %w", red, scrubError(err, target))
	}
	ws.SetReadLimit(-1) // bounded by readMessage instead, without closing the link
	c.ws.Store(ws)
	if late {
		ws.CloseNow()
		cancel()
		return nil, fmt.Errorf("restless: ws: connect %s: %w", red, ot.err())
	}
	if c.wd.Fired() { // fired between Dial returning and the Store
		ws.CloseNow()
	}
	go c.keepalive(cctx, max(d.idle/2, time.Millisecond)) // a ticker needs a positive period
	return c, nil
}

type wsConn struct {
	d        *wsDialer
	ws       atomic.Pointer[websocket.Conn]
	wd       *stream.Watchdog
	body     *bufferedBody // set during the handshake
	budget   *budgetReader // under body: bytes since the last message
	cancel   context.CancelFunc
	red      string
	pingDone chan struct{}
}

// abort is the watchdog's action: end the handshake or the connection.
func (c *wsConn) abort() {
	c.cancel()
	if ws := c.ws.Load(); ws != nil {
		ws.CloseNow()
	}
}

func (c *wsConn) keepalive(ctx context.Context, every time.Duration) {
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
		// which judges the link (see above).
		_ = ws.Ping(pctx)
		cancel()
	}
}

func (c *wsConn) Close() error {
	c.cancel()
	c.wd.Disarm()
	c.ws.Load().CloseNow()
	<-c.pingDone
	return nil
}

func (c *wsConn) Read() (stream.Event, error) {
	ws := c.ws.Load()
	_, r, err := ws.Reader(context.Background()) // Close and the watchdog end it
	if err != nil {
		return stream.Event{}, c.readErr(err)
	}
	n, tooLarge, err := c.readMessage(r)
	if c.budget != nil {
		c.budget.reset()
	}
	if err == nil && c.body != nil && c.body.failed.Load() {
		err = errors.New("the connection was cut in the middle of a message")
	}
	if err != nil {
		return stream.Event{}, c.readErr(err)
	}
	data := make([]byte, n)
	copy(data, c.d.buf[:n])
	if cap(c.d.buf) > maxKeptBuffer {
		c.d.buf = nil // one huge message must not pin its buffer for the stream's life
	}
	id, _ := EventIDOf(data)
	return stream.Event{Data: data, Cursor: id, TooLarge: tooLarge}, nil
}

// maxKeptBuffer is the largest read buffer a connection keeps between
// messages.
const maxKeptBuffer = 64 << 10

// readMessage reads at most max+1 bytes of the message into the dialer's
// buffer; when there are more, it reports tooLarge and discards the rest.
func (c *wsConn) readMessage(r io.Reader) (n int, tooLarge bool, err error) {
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

func (c *wsConn) readErr(err error) error {
	if c.wd.Fired() {
		return fmt.Errorf("restless: ws: %s: %w", c.red, c.wd.Err())
	}
	if code := websocket.CloseStatus(err); code != -1 {
		var ce websocket.CloseError
		errors.As(err, &ce)
		if code == websocket.StatusNormalClosure || code == websocket.StatusGoingAway {
			return fmt.Errorf("restless: ws: %s: %w with status %d (%v) %q", c.red, stream.ErrServerClosed, int(code), code, ce.Reason)
		}
		return fmt.Errorf("restless: ws: %s: the server closed the connection with status %d (%v) %q", c.red, int(code), code, ce.Reason)
	}
	return fmt.Errorf("restless: ws: read %s: %w", c.red, err)
}
