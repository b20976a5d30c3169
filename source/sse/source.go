package sse

import (
	"context"
	"time"

	"github.com/restless-stream/ingest"
	"github.com/restless-stream/ingest/client"
	"github.com/restless-stream/ingest/source/internal/adapt"
)

// DefaultIdleTimeout is the IdleTimeout of a Config that sets none.
const DefaultIdleTimeout = client.DefaultIdleTimeout

// ErrClosed is returned by Source.Next after Close.
var ErrClosed = client.ErrSubscriptionClosed

// Config configures a Source.
type Config struct {
	// Client gives the API key (sent as "Authorization: Bearer"), the
	// http.Client (used without its Timeout) and the User-Agent. nil means a
	// client without a key.
	Client *client.Client
	// URL is the full runtime URL: a managed SSE URL, a session URL or a
	// server-issued URL. Required.
	URL string
	// Cursor is the resume position, sent as Last-Event-ID and cursor=.
	Cursor string
	// Since is sent as since= while no cursor exists.
	Since string
	// Reconnect paces reconnects; its zero value means 1s initial, 30s max,
	// forever.
	Reconnect client.Backoff
	// IdleTimeout ends a connection that sends no byte (comments and
	// heartbeats count) for this long. Default 60s.
	IdleTimeout time.Duration
	// MaxEventBytes cuts longer events (marked TooLarge). Default 4194304.
	MaxEventBytes int
	// MaxSilence ends a connection, and reconnects, when no event arrives
	// for this long (heartbeats and other bytes do not count). 0, the
	// default, turns it off.
	MaxSilence time.Duration
	// OnState, when set, receives every state change, from the source's
	// goroutine. It must not block.
	OnState func(ingest.StateChange)
}

func (c Config) common() adapt.Common {
	return adapt.Common{Cursor: c.Cursor, Since: c.Since, Reconnect: c.Reconnect,
		IdleTimeout: c.IdleTimeout, MaxEventBytes: c.MaxEventBytes, MaxSilence: c.MaxSilence, OnState: c.OnState}
}

// Validate reports every field out of range, as *ingest.FieldError values
// joined with errors.Join; the URL is checked the way the subscription will
// use it.
func (c Config) Validate() error {
	return adapt.ValidateURL(c.Client, c.URL, c.common(), (*client.StreamsService).OpenSSE)
}

// Source reads events from an SSE runtime URL and reconnects on its own.
type Source struct {
	a *adapt.Source
}

// NewSource checks cfg and returns a Source. It connects on the first Next.
func NewSource(cfg Config) (*Source, error) {
	sub, err := adapt.OpenURL(cfg.Client, cfg.URL, cfg.common(), (*client.StreamsService).OpenSSE)
	if err != nil {
		return nil, err
	}
	return &Source{a: adapt.New(sub)}, nil
}

// Next blocks for the next frame. Reconnecting is internal: Next returns an
// error only when the source is done — a *ingest.PermanentError (HTTP
// 401/403/other 4xx, or the reconnect budget exhausted), an error matching
// ingest.ErrStreamEnded (HTTP 204), ErrClosed after Close — or ctx.Err()
// when ctx ends, which leaves the source intact.
func (s *Source) Next(ctx context.Context) (ingest.Frame, error) { return s.a.Next(ctx) }

// Cursor returns the cursor of the last frame Next returned.
func (s *Source) Cursor() string { return s.a.Cursor() }

// Progress tells the source that the pipeline accepted a frame (published
// it: not rejected, not a duplicate). Only accepted frames restart the
// count of consecutive failed reconnect attempts (Reconnect.MaxAttempts).
func (s *Source) Progress() { s.a.Progress() }

// LastEvent returns when the source last read an event (good or bad), or
// the zero time before the first: for the time since the last event in
// status pages and metrics.
func (s *Source) LastEvent() time.Time { return s.a.LastEvent() }

// Close ends the connection and waits for the source's goroutine. Next then
// returns ErrClosed.
func (s *Source) Close() error { return s.a.Close() }
