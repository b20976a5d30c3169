// Package direct is the daemon's source of direct streams: Restless Stream
// polls a REST endpoint given entirely by the client's inputs (PROTOCOL.md
// §1, §2). It reads them through package client's direct subscriptions
// ([client.StreamsService.OpenDirectSSE] and OpenDirectWebSocket) and hands
// the pipeline raw frames and state changes in package ingest's terms.
//
// Without a DedupeKey the subscription builds the direct URL from the
// inputs against the client's stream base URL. With a DedupeKey it opens
// (or, server side, reuses) a direct session through the client and follows
// the session's server-issued URL; when the session has expired at
// reconnect time, or the server refuses its URL (401, 403, 404 or 410), it
// opens the session again with the same key and continues from the same
// cursor. A new session that is refused as well fails the source for good.
package direct

import (
	"context"
	"errors"
	"time"

	"github.com/restless-stream/ingest"
	"github.com/restless-stream/ingest/client"
	"github.com/restless-stream/ingest/source/internal/adapt"
)

// Transports.
const (
	TransportSSE       = "sse"
	TransportWebSocket = "websocket"
)

// ErrClosed is returned by Next after Close.
var ErrClosed = client.ErrSubscriptionClosed

// Config configures a Source.
type Config struct {
	// Client opens direct sessions and gives the stream base URL, the API
	// key (sent as "Authorization: Bearer"), the http.Client (used without
	// its Timeout for the stream) and the User-Agent. Required with a
	// DedupeKey; without one, nil means a client of the hosted service
	// without a key.
	Client *client.Client
	// Input are the direct stream's inputs.
	Input client.DirectInput
	// DedupeKey, when set, makes the source open or reuse a direct session
	// and follow its server-issued URL.
	DedupeKey string
	// Transport is "sse" (the default) or "websocket".
	Transport string

	// Cursor is the resume position (Last-Event-ID and cursor=).
	Cursor string
	// Since is sent as since= while no cursor exists.
	Since string
	// Reconnect paces reconnects; its zero value means 1s initial, 30s max,
	// forever.
	Reconnect client.Backoff
	// IdleTimeout ends a connection that sends nothing for this long. Default 60s.
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
// joined with errors.Join.
func (c Config) Validate() error {
	errs := c.common().Check()
	switch c.Transport {
	case "", TransportSSE, TransportWebSocket:
	default:
		errs = append(errs, ingest.FieldErrorf("Transport", "%q is not %q or %q", c.Transport, TransportSSE, TransportWebSocket))
	}
	if c.DedupeKey != "" && c.Client == nil {
		errs = append(errs, ingest.FieldErrorf("Client", "is required with a DedupeKey"))
	}
	if c.Input.URL == "" {
		errs = append(errs, ingest.FieldErrorf("Input.URL", "is required"))
	} else if _, err := client.BuildDirectSSEURL(client.DefaultStreamBaseURL, c.Input); err != nil {
		errs = append(errs, &ingest.FieldError{Field: "Input", Err: err})
	}
	return errors.Join(errs...)
}

// Source reads a direct stream.
type Source struct {
	a *adapt.Source
}

// NewSource checks cfg and returns a Source. It connects (and opens the
// session) on the first Next.
func NewSource(cfg Config) (*Source, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cl, err := adapt.Client(cfg.Client)
	if err != nil {
		return nil, err
	}
	opts := cfg.common().Options()
	if cfg.DedupeKey != "" {
		opts = append(opts, client.WithDirectSession(cfg.DedupeKey))
	}
	open := cl.Streams.OpenDirectSSE
	if cfg.Transport == TransportWebSocket {
		open = cl.Streams.OpenDirectWebSocket
	}
	sub, err := open(cfg.Input, opts...)
	if err != nil {
		return nil, err
	}
	return &Source{a: adapt.New(sub)}, nil
}

// Next blocks for the next frame; see sse.Source.Next. Failing to open the
// session is permanent for a 4xx answer (but 408 and 429) and retried
// otherwise.
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

// Close ends the connection and waits for the source's goroutines.
func (s *Source) Close() error { return s.a.Close() }
