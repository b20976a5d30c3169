package client

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/restless-stream/ingest/client/internal/stream"
)

// directDialer reads a direct stream (PROTOCOL.md §1, §2): through the
// direct URL built from the inputs, or, with a dedupe key, through the URL
// of a direct session it opens and renews.
type directDialer struct {
	s       *StreamsService
	set     *subscribeSettings
	in      DirectInput
	ws      bool
	base    string
	inner   stream.Dialer // nil: no session (yet, or any more)
	expires time.Time
}

func (s *StreamsService) newDirectDialer(in DirectInput, ws bool, set *subscribeSettings) (*directDialer, error) {
	if in.URL == "" {
		return nil, errors.New("restless: subscribe direct: the input URL is empty")
	}
	d := &directDialer{s: s, set: set, in: in, ws: ws, base: s.c.StreamBaseURL()}
	if set.dedupeKey != "" {
		// The inputs are checked here, not only by the server: a bad input
		// would fail every session opened.
		if _, err := BuildDirectSSEURL(d.base, in); err != nil {
			return nil, fmt.Errorf("restless: subscribe direct: %w", err)
		}
		return d, nil
	}
	build := BuildDirectSSEURL
	if ws {
		build = BuildDirectWebSocketURL
	}
	u, err := build(d.base, in)
	if err != nil {
		return nil, fmt.Errorf("restless: subscribe direct: %w", err)
	}
	if d.inner, err = d.innerDialer(u); err != nil {
		return nil, err
	}
	return d, nil
}

func (d *directDialer) innerDialer(u string) (stream.Dialer, error) {
	if d.ws {
		return d.s.newWSDialer(u, d.set)
	}
	return d.s.newSSEDialer(u, d.set)
}

func (d *directDialer) Dial(ctx context.Context, cursor string) (stream.Conn, error) {
	if d.set.dedupeKey == "" {
		return d.inner.Dial(ctx, cursor)
	}
	fresh := false
	if d.inner == nil || (!d.expires.IsZero() && !time.Now().Before(d.expires)) {
		if err := d.openSession(ctx); err != nil {
			return nil, err
		}
		fresh = true
	}
	conn, err := d.inner.Dial(ctx, cursor)
	if err != nil && sessionRefused(err) {
		d.inner = nil
		if fresh {
			return nil, err
		}
		if err := d.openSession(ctx); err != nil {
			return nil, err
		}
		conn, err = d.inner.Dial(ctx, cursor)
		if err != nil && sessionRefused(err) {
			d.inner = nil
		}
	}
	return conn, err
}

// sessionRefused reports whether the runtime answered as it does for a
// session that is gone.
func sessionRefused(err error) bool {
	var se *StatusError
	if !errors.As(err, &se) {
		return false
	}
	switch se.Code {
	case http.StatusUnauthorized, http.StatusForbidden, http.StatusNotFound, http.StatusGone:
		return true
	}
	return false
}

// openSession opens (or reuses, server side) the direct session and points
// the inner dialer at its URL.
func (d *directDialer) openSession(ctx context.Context) error {
	resp, err := d.s.DirectSession(ctx, DirectSessionRequest{DirectInput: d.in, DedupeKey: d.set.dedupeKey})
	if err != nil {
		err = fmt.Errorf("restless: subscribe direct: open session: %w", err)
		var ae *APIError
		if errors.As(err, &ae) && ae.StatusCode >= 400 && ae.StatusCode < 500 &&
			ae.StatusCode != http.StatusRequestTimeout && ae.StatusCode != http.StatusTooManyRequests {
			return stream.Permanent(err)
		}
		return err
	}
	raw := resp.SSEURL
	if d.ws {
		raw = resp.WebSocketURL
		if raw == "" && resp.SSEURL != "" {
			if raw, err = ToWebSocketURL(d.resolve(resp.SSEURL)); err != nil {
				return fmt.Errorf("restless: subscribe direct: session %s: %w", resp.SessionID, err)
			}
		}
	}
	if raw == "" {
		transport := "sse"
		if d.ws {
			transport = "websocket"
		}
		return fmt.Errorf("restless: subscribe direct: session %q has no URL for %s", resp.SessionID, transport)
	}
	inner, err := d.innerDialer(d.resolve(raw))
	if err != nil {
		// The URL the server issued is unusable, and opening another
		// session would issue the same.
		return stream.Permanent(fmt.Errorf("restless: subscribe direct: session %q: %w", resp.SessionID, err))
	}
	d.inner, d.expires = inner, resp.ExpiresAt
	return nil
}

// resolve makes a relative server-issued URL absolute against the stream
// base URL.
func (d *directDialer) resolve(raw string) string {
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
