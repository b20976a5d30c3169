package sse

import (
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"time"
	"unsafe"

	"github.com/restless-stream/ingest"
	"github.com/restless-stream/ingest/client"
	"github.com/restless-stream/ingest/internal/backoff"
	"github.com/restless-stream/ingest/internal/stream"
)

// DefaultIdleTimeout is the IdleTimeout of a Config that sets none.
const DefaultIdleTimeout = stream.DefaultIdleTimeout

// ErrClosed is returned by Source.Next after Close.
var ErrClosed = stream.ErrClosed

// StatusError is the error (wrapped) of a connection refused with an HTTP status.
type StatusError = stream.StatusError

// Config configures a Source.
type Config struct {
	// URL is the full runtime URL: a managed SSE URL, a session URL or a
	// server-issued URL. Required.
	URL string
	// APIKey is sent as "Authorization: Bearer" when non-empty.
	APIKey ingest.Secret
	// Cursor is the resume position, sent as Last-Event-ID and cursor=.
	Cursor string
	// Since is sent as since= while no cursor exists.
	Since string
	// HTTPClient performs the requests. nil means a client without Timeout:
	// a stream is long-lived, bounded by Close and the idle watchdog.
	HTTPClient *http.Client
	// Reconnect paces reconnects; zero values mean 1s initial, 30s max, forever.
	Reconnect backoff.Policy
	// IdleTimeout ends a connection that sends no byte (comments and
	// heartbeats count) for this long. Default 60s.
	IdleTimeout time.Duration
	// MaxEventBytes cuts longer events (marked TooLarge). Default 4194304.
	MaxEventBytes int
	// OnState, when set, receives every state change, from the source's
	// goroutine. It must not block.
	OnState func(ingest.StateChange)
}

// Source reads events from an SSE runtime URL and reconnects on its own.
//
// Requests carry "Accept: text/event-stream", "Cache-Control: no-cache",
// "Accept-Encoding: identity" (so no transparent gzip buffers events), the
// Bearer key, and the cursor as Last-Event-ID and cursor= (since= before any
// cursor). Answers:
//   - 200 with a text/event-stream content type (parameters allowed) streams;
//   - 204 ends the stream for good (ingest.ErrStreamEnded);
//   - 401, 403 and any other 4xx but 408 and 429 fail for good;
//   - 408, 429, 5xx, network errors, a clean end of the stream and the idle
//     watchdog reconnect with backoff, waiting at least what Retry-After or
//     the stream's retry: field asked for, within Reconnect.Max.
//   - 200 with another content type is treated as a transient server fault
//     (a proxy's error page, a misrouted request): it reconnects with backoff,
//     and the state's error names the content type received.
//   - A server that compresses despite "identity" is tolerated for gzip
//     (decoded here, as the bytes arrive); any other Content-Encoding fails
//     the connection with an error naming it, and it reconnects.
//
// The cursor of an event is the SSE id in effect, or the event_id read from
// the data when the stream sends no id. An event with empty data ("data:"
// alone) is delivered as an empty frame, for the pipeline to count as bad
// input, as the WebSocket source delivers an empty message.
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

// Close ends the connection and waits for the source's goroutine. Next then
// returns ErrClosed.
func (s *Source) Close() error { return s.r.Close() }

// NewDialer returns the source's connection logic for use with a
// stream.Runner (the direct source shares it).
func NewDialer(cfg Config) (stream.Dialer, error) { return newDialer(cfg) }

type dialer struct {
	u      *url.URL
	since  string
	apiKey string
	client *http.Client
	idle   time.Duration
	max    int
	retry  time.Duration // the stream's reconnection time (retry:), kept across connections
}

func newDialer(cfg Config) (*dialer, error) {
	if cfg.URL == "" {
		return nil, errors.New("sse: URL is required")
	}
	u, err := url.Parse(cfg.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("sse: URL %s is not an http(s):// URL with a host", stream.RedactURL(cfg.URL))
	}
	idle, maxEvent, err := stream.Limits("sse", cfg.IdleTimeout, cfg.MaxEventBytes)
	if err != nil {
		return nil, err
	}
	d := &dialer{u: u, since: cfg.Since, apiKey: cfg.APIKey.Reveal(), client: cfg.HTTPClient, idle: idle, max: maxEvent}
	if d.client == nil {
		d.client = &http.Client{}
	}
	return d, nil
}

// hint attaches the stream's retry: time unless the error has a Retry-After.
func (d *dialer) hint(err error) error {
	if stream.RetryAfterOf(err) > 0 {
		return err
	}
	return stream.WithRetryAfter(err, d.retry)
}

func (d *dialer) Dial(ctx context.Context, cursor string) (stream.Conn, error) {
	target := stream.ResumeURL(d.u, cursor, d.since)
	red := stream.RedactURL(target)
	cctx, cancel := context.WithCancel(ctx)
	req, err := http.NewRequestWithContext(cctx, http.MethodGet, target, nil)
	if err != nil {
		cancel()
		return nil, &ingest.PermanentError{Err: fmt.Errorf("sse: request %s: %w", red, stream.ScrubError(err, target))}
	}
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Cache-Control", "no-cache")
	req.Header.Set("Accept-Encoding", "identity")
	if d.apiKey != "" {
		req.Header.Set("Authorization", "Bearer "+d.apiKey)
	}
	if cursor != "" {
		req.Header.Set("Last-Event-ID", cursor)
	}
	wd := stream.NewWatchdog(d.idle, cancel)
	wd.Arm() // bounds the wait for the response headers too
	resp, err := d.client.Do(req)
	wd.Disarm()
	if err != nil {
		cancel()
		if wd.Fired() {
			return nil, d.hint(fmt.Errorf("sse: connect %s: %w", red, wd.Err()))
		}
		return nil, d.hint(fmt.Errorf("sse: connect %s: %w", red, stream.ScrubError(err, target)))
	}
	fail := func(err error) (stream.Conn, error) {
		resp.Body.Close()
		cancel()
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(wd.Reader(resp.Body), stream.MaxErrorBody))
		return fail(d.hint(fmt.Errorf("sse: connect: %w", stream.CheckStatus(resp, red, body, time.Now()))))
	}
	ct := resp.Header.Get("Content-Type")
	if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "text/event-stream" {
		return fail(d.hint(fmt.Errorf("sse: connect %s: HTTP 200 with Content-Type %q, want text/event-stream", red, ct)))
	}
	c := &conn{d: d, cancel: cancel, wd: wd, body: resp.Body, red: red}
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
		return fail(d.hint(fmt.Errorf("sse: connect %s: Content-Encoding %q despite Accept-Encoding: identity", red, ce)))
	}
	c.dec = NewDecoder(r)
	c.dec.SetMaxEventBytes(d.max)
	return c, nil
}

type conn struct {
	d      *dialer
	dec    *Decoder
	cancel context.CancelFunc
	wd     *stream.Watchdog
	body   io.Closer
	red    string
}

func (c *conn) Read() (stream.Event, error) {
	// An event whose data is empty ("data:" alone) is delivered like any
	// other, as the WebSocket source delivers an empty message: it is not
	// an event of the protocol, and the pipeline counts it as bad input.
	ev, tooLarge, err := c.dec.DecodeLimited()
	if err != nil {
		if r, ok := c.dec.Retry(); ok {
			c.d.retry = r
		}
		return stream.Event{}, c.d.hint(c.readErr(err))
	}
	// The frame aliases the decoder's string instead of copying it: the
	// string is never modified, and ingest.Frame's Data is read-only.
	data := unsafe.Slice(unsafe.StringData(ev.Data), len(ev.Data))
	cursor := ev.ID
	if cursor == "" {
		cursor, _ = client.EventIDOf(data)
	}
	return stream.Event{Data: data, Cursor: cursor, TooLarge: tooLarge}, nil
}

func (c *conn) readErr(err error) error {
	switch {
	case c.wd.Fired():
		return fmt.Errorf("sse: %s: %w", c.red, c.wd.Err())
	case err == io.EOF:
		return fmt.Errorf("sse: %s: the server ended the response", c.red)
	}
	return fmt.Errorf("sse: read %s: %w", c.red, err)
}

func (c *conn) Close() error {
	c.cancel()
	c.wd.Disarm()
	return c.body.Close()
}
