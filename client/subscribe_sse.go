package client

import (
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"time"
	"unsafe"

	"github.com/restless-stream/ingest/client/internal/stream"
	"github.com/restless-stream/ingest/client/sse"
)

type sseDialer struct {
	u      *url.URL
	since  string
	header http.Header // sent with every request: extra headers, User-Agent, Authorization
	client *http.Client
	idle   time.Duration
	open   time.Duration
	max    int
	retry  time.Duration // the stream's reconnection time (retry:), kept across connections
	places cursorPlaces
}

// runtimeHeader returns the headers every runtime request of a
// subscription carries: the extra ones, the User-Agent and the API key.
func (s *StreamsService) runtimeHeader(set *subscribeSettings) http.Header {
	h := set.header.Clone()
	if h == nil {
		h = http.Header{}
	}
	if h.Get("User-Agent") == "" {
		h.Set("User-Agent", s.c.userAgent)
	}
	if s.c.apiKey != "" {
		h.Set("Authorization", "Bearer "+s.c.apiKey)
	}
	return h
}

// streamHTTP returns the Client's http.Client without its Timeout: a
// stream is long-lived, bounded by its context and the idle watchdog.
func (s *StreamsService) streamHTTP() *http.Client {
	h := *s.c.http
	h.Timeout = 0
	return &h
}

func (s *StreamsService) newSSEDialer(rawURL string, set *subscribeSettings) (*sseDialer, error) {
	if rawURL == "" {
		return nil, fmt.Errorf("restless: subscribe sse: the URL is empty")
	}
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("restless: subscribe sse: URL %s is not an http(s):// URL with a host", redactRawURL(rawURL))
	}
	return &sseDialer{u: u, since: set.since, header: s.runtimeHeader(set), client: s.streamHTTP(),
		idle: set.idleTimeout, open: set.openTimeout, max: set.maxEventBytes}, nil
}

// hint attaches the stream's retry: time unless the error has a Retry-After.
func (d *sseDialer) hint(err error) error {
	if stream.RetryAfterOf(err) > 0 {
		return err
	}
	return stream.WithRetryAfter(err, d.retry)
}

func (d *sseDialer) Dial(ctx context.Context, cursor string) (stream.Conn, error) {
	if !validID(cursor) {
		cursor = "" // never put an unsendable value in a request
	}
	qCursor, since := cursor, d.since
	if d.places.noQuery {
		qCursor = ""
		if cursor != "" && !d.places.noHeader {
			since = "" // the header carries the position
		}
	}
	target := resumeURL(d.u, qCursor, since)
	red := redactRawURL(target)
	cctx, cancel := context.WithCancel(ctx)
	req, err := http.NewRequestWithContext(cctx, http.MethodGet, target, nil)
	if err != nil {
		cancel()
		return nil, stream.Permanent(fmt.Errorf("restless: sse: request %s: %w", red, scrubError(err, target)))
	}
	req.Header = d.header.Clone()
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Cache-Control", "no-cache")
	req.Header.Set("Accept-Encoding", "identity")
	if cursor != "" && !d.places.noHeader {
		req.Header.Set(HeaderLastEventID, cursor)
	}
	wd := stream.NewWatchdog(d.idle, cancel)
	ot := newOpenTimer(d.open, cancel)
	wd.Arm() // bounds the wait for the response headers too
	resp, err := d.client.Do(req)
	wd.Disarm()
	late := ot.stop()
	if err == nil && late {
		resp.Body.Close()
		err = ot.err()
	}
	if err != nil {
		cancel()
		switch {
		case ot.fired():
			return nil, d.hint(fmt.Errorf("restless: sse: connect %s: %w", red, ot.err()))
		case wd.Fired():
			return nil, d.hint(fmt.Errorf("restless: sse: connect %s: %w", red, wd.Err()))
		}
		return nil, d.hint(fmt.Errorf("restless: sse: connect %s: %w", red, scrubError(err, target)))
	}
	fail := func(err error) (stream.Conn, error) {
		resp.Body.Close()
		cancel()
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		d.places.refused(resp.StatusCode)
		body, _ := io.ReadAll(io.LimitReader(wd.Reader(resp.Body), maxErrorBody))
		return fail(d.hint(fmt.Errorf("restless: sse: connect: %w", checkStatus(resp, red, body, time.Now()))))
	}
	ct := resp.Header.Get("Content-Type")
	if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "text/event-stream" {
		return fail(d.hint(fmt.Errorf("restless: sse: connect %s: HTTP 200 with Content-Type %q, want text/event-stream", red, ct)))
	}
	c := &sseConn{d: d, cancel: cancel, wd: wd, body: resp.Body, red: red}
	var r io.Reader = wd.Reader(resp.Body)
	switch ce := resp.Header.Get("Content-Encoding"); ce {
	case "", "identity":
	case "gzip", "x-gzip":
		zr, err := gzip.NewReader(r)
		if err != nil {
			return fail(d.hint(c.readErr(fmt.Errorf("gzip body: %w", err))))
		}
		r = zr
	default:
		return fail(d.hint(fmt.Errorf("restless: sse: connect %s: Content-Encoding %q despite Accept-Encoding: identity", red, ce)))
	}
	c.budget = newBudgetReader(r, d.max, cctx.Done())
	c.dec = sse.NewDecoder(c.budget)
	c.dec.SetMaxEventBytes(d.max)
	// Data is kept byte for byte, as over WebSocket: invalid UTF-8 is not
	// replaced, so that the event decoder rejects it and nothing published
	// differs from what was received.
	c.dec.SetRawData(true)
	return c, nil
}

type sseConn struct {
	d      *sseDialer
	dec    *sse.Decoder
	cancel context.CancelFunc
	wd     *stream.Watchdog
	body   io.Closer
	red    string
	badID  string // the last SSE id refused as a cursor
	budget *budgetReader
}

func (c *sseConn) Read() (stream.Event, error) {
	// An event whose data is empty ("data:" alone) is delivered like any
	// other, as the WebSocket subscription delivers an empty message: it is
	// not an event of the protocol, and decoding it fails.
	ev, tooLarge, err := c.dec.DecodeLimited()
	c.budget.reset()
	if err != nil {
		if r, ok := c.dec.Retry(); ok {
			c.d.retry = r
		}
		return stream.Event{}, c.d.hint(c.readErr(err))
	}
	// The event aliases the decoder's string instead of copying it: the
	// string is never modified, and RawEvent's Data is read-only.
	data := unsafe.Slice(unsafe.StringData(ev.Data), len(ev.Data))
	cursor := ev.ID
	if cursor != "" && !validID(cursor) {
		if cursor != c.badID {
			// The event that set an id that cannot be a cursor is
			// rejected; later events inheriting it fall back to their
			// event_id.
			c.badID = cursor
			return stream.Event{Data: data, TooLarge: tooLarge,
				Err: fmt.Errorf("SSE id %s: %w", quoteCut(cursor, 64), CheckEventID(cursor))}, nil
		}
		cursor = ""
	}
	if cursor == "" {
		cursor, _ = EventIDOf(data)
	}
	return stream.Event{Data: data, Cursor: cursor, TooLarge: tooLarge}, nil
}

func (c *sseConn) readErr(err error) error {
	switch {
	case c.wd.Fired():
		return fmt.Errorf("restless: sse: %s: %w", c.red, c.wd.Err())
	case err == io.EOF:
		return fmt.Errorf("restless: sse: %s: %w (end of the response)", c.red, stream.ErrServerClosed)
	}
	return fmt.Errorf("restless: sse: read %s: %w", c.red, err)
}

func (c *sseConn) Close() error {
	c.cancel()
	c.wd.Disarm()
	return c.body.Close()
}

// openTimer bounds the opening of a connection (WithOpenTimeout): once it
// fires it calls abort. A zero duration never fires.
type openTimer struct {
	d    time.Duration
	t    *time.Timer
	done chan struct{} // closed when it fired
}

func newOpenTimer(d time.Duration, abort func()) *openTimer {
	ot := &openTimer{d: d, done: make(chan struct{})}
	if d > 0 {
		ot.t = time.AfterFunc(d, func() { close(ot.done); abort() })
	}
	return ot
}

// stop stops the timer and reports whether it had fired already.
func (ot *openTimer) stop() bool {
	return ot.t != nil && !ot.t.Stop()
}

func (ot *openTimer) fired() bool {
	select {
	case <-ot.done:
		return true
	default:
		return false
	}
}

func (ot *openTimer) err() error {
	return fmt.Errorf("%w: not open after %v", ErrOpenTimeout, ot.d)
}
