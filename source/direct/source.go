// Package direct reads direct streams: Restless Stream polls a REST endpoint
// given entirely by the client's inputs (PROTOCOL.md §1, §2).
//
// Without a DedupeKey the source builds the direct URL from the inputs
// (client.BuildDirectSSEURL or BuildDirectWebSocketURL against the client's
// stream base URL) and reads it like any runtime URL. With a DedupeKey it
// opens (or, server side, reuses) a direct session through the client and
// follows the session's server-issued URL; when the session has expired at
// reconnect time, or the server refuses its URL (401, 403, 404 or 410), it
// opens the session again with the same key and continues from the same
// cursor. A new session that is refused as well fails the source for good.
//
// Reading, resuming, backoff, the idle watchdog and the size limit are those
// of the sse and ws packages.
package direct

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/restless-stream/ingest"
	"github.com/restless-stream/ingest/client"
	"github.com/restless-stream/ingest/internal/backoff"
	"github.com/restless-stream/ingest/internal/stream"
	"github.com/restless-stream/ingest/source/sse"
	"github.com/restless-stream/ingest/source/ws"
)

// Transports.
const (
	TransportSSE       = "sse"
	TransportWebSocket = "websocket"
)

// ErrClosed is returned by Next after Close.
var ErrClosed = stream.ErrClosed

// Config configures a Source.
type Config struct {
	// Client opens direct sessions and gives the stream base URL. Required
	// with a DedupeKey; without one, nil means client.DefaultStreamBaseURL.
	Client *client.Client
	// Input are the direct stream's inputs.
	Input client.DirectInput
	// DedupeKey, when set, makes the source open or reuse a direct session
	// and follow its server-issued URL.
	DedupeKey string
	// Transport is "sse" (the default) or "websocket".
	Transport string

	// APIKey is sent as "Authorization: Bearer" when non-empty.
	APIKey ingest.Secret
	// Cursor is the resume position (Last-Event-ID and cursor=).
	Cursor string
	// Since is sent as since= while no cursor exists.
	Since string
	// HTTPClient reads the stream. nil means a client without Timeout.
	HTTPClient *http.Client
	// Reconnect paces reconnects; zero values mean 1s initial, 30s max, forever.
	Reconnect backoff.Policy
	// IdleTimeout ends a connection that sends nothing for this long. Default 60s.
	IdleTimeout time.Duration
	// MaxEventBytes cuts longer events (marked TooLarge). Default 4194304.
	MaxEventBytes int
	// OnState, when set, receives every state change, from the source's
	// goroutine. It must not block.
	OnState func(ingest.StateChange)
}

// Source reads a direct stream.
type Source struct {
	r *stream.Runner
}

// NewSource checks cfg and returns a Source. It connects (and opens the
// session) on the first Next.
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

// Next blocks for the next frame; see sse.Source.Next. Failing to open the
// session is permanent for a 4xx answer (but 408 and 429) and retried
// otherwise.
func (s *Source) Next(ctx context.Context) (ingest.Frame, error) { return s.r.Next(ctx) }

// Cursor returns the cursor of the last frame Next returned.
func (s *Source) Cursor() string { return s.r.Cursor() }

// Close ends the connection and waits for the source's goroutines.
func (s *Source) Close() error { return s.r.Close() }

type dialer struct {
	cfg     Config
	base    string
	inner   stream.Dialer // nil: no session (yet, or any more)
	expires time.Time
}

func newDialer(cfg Config) (*dialer, error) {
	switch cfg.Transport {
	case "":
		cfg.Transport = TransportSSE
	case TransportSSE, TransportWebSocket:
	default:
		return nil, fmt.Errorf("direct: Transport %q is not %q or %q", cfg.Transport, TransportSSE, TransportWebSocket)
	}
	if cfg.Input.URL == "" {
		return nil, errors.New("direct: Input.URL is required")
	}
	// Checked here, not only by the inner source: with a DedupeKey that is
	// built per session, and a bad limit would fail every session opened.
	if _, _, err := stream.Limits("direct", cfg.IdleTimeout, cfg.MaxEventBytes); err != nil {
		return nil, err
	}
	d := &dialer{cfg: cfg, base: client.DefaultStreamBaseURL}
	if cfg.Client != nil {
		d.base = cfg.Client.StreamBaseURL()
	}
	if cfg.DedupeKey != "" {
		if cfg.Client == nil {
			return nil, errors.New("direct: a Client is required with a DedupeKey")
		}
		return d, nil
	}
	build := client.BuildDirectSSEURL
	if cfg.Transport == TransportWebSocket {
		build = client.BuildDirectWebSocketURL
	}
	u, err := build(d.base, cfg.Input)
	if err != nil {
		return nil, fmt.Errorf("direct: %w", err)
	}
	if d.inner, err = d.innerDialer(u); err != nil {
		return nil, err
	}
	return d, nil
}

func (d *dialer) innerDialer(u string) (stream.Dialer, error) {
	c := d.cfg
	if c.Transport == TransportWebSocket {
		return ws.NewDialer(ws.Config{URL: u, APIKey: c.APIKey, Since: c.Since, HTTPClient: c.HTTPClient,
			IdleTimeout: c.IdleTimeout, MaxEventBytes: c.MaxEventBytes})
	}
	return sse.NewDialer(sse.Config{URL: u, APIKey: c.APIKey, Since: c.Since, HTTPClient: c.HTTPClient,
		IdleTimeout: c.IdleTimeout, MaxEventBytes: c.MaxEventBytes})
}

func (d *dialer) Dial(ctx context.Context, cursor string) (stream.Conn, error) {
	if d.cfg.DedupeKey == "" {
		return d.inner.Dial(ctx, cursor)
	}
	fresh := false
	if d.inner == nil || (!d.expires.IsZero() && !time.Now().Before(d.expires)) {
		if err := d.open(ctx); err != nil {
			return nil, err
		}
		fresh = true
	}
	conn, err := d.inner.Dial(ctx, cursor)
	if err != nil && refused(err) {
		d.inner = nil
		if fresh {
			return nil, err
		}
		if err := d.open(ctx); err != nil {
			return nil, err
		}
		conn, err = d.inner.Dial(ctx, cursor)
		if err != nil && refused(err) {
			d.inner = nil
		}
	}
	return conn, err
}

// refused reports whether the runtime answered as it does for a session
// that is gone.
func refused(err error) bool {
	var se *stream.StatusError
	if !errors.As(err, &se) {
		return false
	}
	switch se.Code {
	case http.StatusUnauthorized, http.StatusForbidden, http.StatusNotFound, http.StatusGone:
		return true
	}
	return false
}

// open opens (or reuses, server side) the direct session and points the
// inner dialer at its URL.
func (d *dialer) open(ctx context.Context) error {
	resp, err := d.cfg.Client.Streams.DirectSession(ctx, client.DirectSessionRequest{
		DirectInput: d.cfg.Input, DedupeKey: d.cfg.DedupeKey})
	if err != nil {
		err = fmt.Errorf("direct: open session: %w", err)
		var ae *client.APIError
		if errors.As(err, &ae) && ae.StatusCode >= 400 && ae.StatusCode < 500 &&
			ae.StatusCode != http.StatusRequestTimeout && ae.StatusCode != http.StatusTooManyRequests {
			return &ingest.PermanentError{Err: err}
		}
		return err
	}
	raw := resp.SSEURL
	if d.cfg.Transport == TransportWebSocket {
		raw = resp.WebSocketURL
		if raw == "" && resp.SSEURL != "" {
			if raw, err = client.ToWebSocketURL(d.resolve(resp.SSEURL)); err != nil {
				return fmt.Errorf("direct: session %s: %w", resp.SessionID, err)
			}
		}
	}
	if raw == "" {
		return fmt.Errorf("direct: session %q has no URL for transport %s", resp.SessionID, d.cfg.Transport)
	}
	inner, err := d.innerDialer(d.resolve(raw))
	if err != nil {
		// The limits were checked up front: the URL the server issued is
		// unusable, and opening another session would issue the same.
		return &ingest.PermanentError{Err: fmt.Errorf("direct: session %q: %w", resp.SessionID, err)}
	}
	d.inner, d.expires = inner, resp.ExpiresAt
	return nil
}

// resolve makes a relative server-issued URL absolute against the stream
// base URL.
func (d *dialer) resolve(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.IsAbs() {
		return raw
	}
	base, err := url.Parse(d.base)
	if err != nil {
		return raw
	}
	return base.ResolveReference(u).String()
}
