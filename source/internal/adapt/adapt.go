// Package adapt turns package client's subscriptions into the daemon's
// sources: frames for the pipeline, the pipeline's errors, and state
// reports in the vocabulary of package ingest. Connecting, decoding,
// resuming and reconnecting are client's.
package adapt

import (
	"context"
	"errors"
	"time"

	"github.com/restless-stream/ingest"
	"github.com/restless-stream/ingest/client"
)

// Source reads a subscription as ingest frames.
type Source struct {
	sub *client.Subscription
}

// New returns a Source over sub, which it owns.
func New(sub *client.Subscription) *Source { return &Source{sub: sub} }

// Next returns the next frame. Its errors are the pipeline's: one matching
// ingest.ErrStreamEnded when the server ended the stream, ctx.Err() when ctx
// ended, client.ErrSubscriptionClosed after Close, and otherwise an
// *ingest.PermanentError: the subscription stopped for good.
func (s *Source) Next(ctx context.Context) (ingest.Frame, error) {
	e, err := s.sub.Next(ctx)
	if err != nil {
		return ingest.Frame{}, pipelineError(ctx, err)
	}
	return ingest.Frame{Data: e.Data, Cursor: e.Cursor, TooLarge: e.TooLarge, Err: e.Err, Received: e.Received}, nil
}

// Cursor returns the cursor of the last frame Next returned.
func (s *Source) Cursor() string { return s.sub.Cursor() }

// Progress tells the source that a frame was accepted (not rejected, not a
// duplicate): only this restarts the count of consecutive failed reconnect
// attempts.
func (s *Source) Progress() { s.sub.Progress() }

// LastEvent returns when the last event was read, or the zero time.
func (s *Source) LastEvent() time.Time { return s.sub.LastEvent() }

// Close ends the subscription and waits for its goroutines.
func (s *Source) Close() error { return s.sub.Close() }

func pipelineError(ctx context.Context, err error) error {
	switch {
	case ctx.Err() != nil && err == ctx.Err(), errors.Is(err, client.ErrSubscriptionClosed):
		return err
	case errors.Is(err, client.ErrStreamEnded):
		return &endedError{err: err}
	}
	return &ingest.PermanentError{Err: err}
}

// endedError is the client's end of stream, matching ingest.ErrStreamEnded.
type endedError struct{ err error }

func (e *endedError) Error() string   { return e.err.Error() }
func (e *endedError) Unwrap() []error { return []error{ingest.ErrStreamEnded, e.err} }

// States maps client's connection states to ingest's, index for index.
var states = [...]ingest.State{
	client.StateConnecting:   ingest.StateConnecting,
	client.StateConnected:    ingest.StateConnected,
	client.StateReconnecting: ingest.StateReconnecting,
	client.StateEnded:        ingest.StateEnded,
	client.StateFailed:       ingest.StateFailed,
}

// State returns the ingest state of s.
func State(s client.ConnState) ingest.State {
	if int(s) >= 0 && int(s) < len(states) {
		return states[s]
	}
	return ingest.State(s)
}

// Common are the settings every source shares, in the names of their
// Configs.
type Common struct {
	Cursor        string
	Since         string
	Reconnect     client.Backoff
	IdleTimeout   time.Duration
	MaxEventBytes int
	MaxSilence    time.Duration
	OnState       func(ingest.StateChange)
}

// Check returns a *ingest.FieldError for each setting out of range.
func (c Common) Check() []error {
	var errs []error
	if c.Reconnect.Initial < 0 {
		errs = append(errs, ingest.FieldErrorf("Reconnect.Initial", "%v is negative", c.Reconnect.Initial))
	} else if c.Reconnect.Initial > 0 && c.Reconnect.Initial < client.MinReconnectDelay {
		errs = append(errs, ingest.FieldErrorf("Reconnect.Initial", "%v is below the minimum of %v", c.Reconnect.Initial, client.MinReconnectDelay))
	}
	if c.Reconnect.Max < 0 {
		errs = append(errs, ingest.FieldErrorf("Reconnect.Max", "%v is negative", c.Reconnect.Max))
	}
	if c.Reconnect.MaxAttempts < 0 {
		errs = append(errs, ingest.FieldErrorf("Reconnect.MaxAttempts", "%d is negative", c.Reconnect.MaxAttempts))
	}
	if c.IdleTimeout < 0 {
		errs = append(errs, ingest.FieldErrorf("IdleTimeout", "%v is negative", c.IdleTimeout))
	}
	if c.MaxEventBytes < 0 {
		errs = append(errs, ingest.FieldErrorf("MaxEventBytes", "%d is negative", c.MaxEventBytes))
	}
	if c.MaxSilence < 0 {
		errs = append(errs, ingest.FieldErrorf("MaxSilence", "%v is negative", c.MaxSilence))
	}
	return errs
}

// Options returns the subscription options of c.
func (c Common) Options() []client.SubscribeOption {
	opts := []client.SubscribeOption{
		client.WithCursor(c.Cursor),
		client.WithSince(c.Since),
		client.WithBackoff(c.Reconnect),
		client.WithIdleTimeout(c.IdleTimeout),
		client.WithMaxEventBytes(c.MaxEventBytes),
		client.WithMaxSilence(c.MaxSilence),
		// Progress is what the pipeline accepts (Source.Progress), not any
		// event: one bad or repeated event per connection is no progress.
		client.WithExplicitProgress(),
	}
	if f := c.OnState; f != nil {
		opts = append(opts, client.WithStateFunc(func(sc client.StateChange) {
			f(ingest.StateChange{State: State(sc.State), Attempt: sc.Attempt, Delay: sc.Delay, Err: sc.Err})
		}))
	}
	return opts
}

// OpenFunc opens a subscription of a runtime URL: a method expression of
// client.StreamsService, (*client.StreamsService).OpenSSE or OpenWebSocket.
type OpenFunc func(s *client.StreamsService, url string, opts ...client.SubscribeOption) (*client.Subscription, error)

// OpenURL checks c and url, and opens url with open through cl (Client(cl)
// when nil): the NewSource of a source over one runtime URL. Its error
// joins a *ingest.FieldError per problem, the URL's named "URL".
func OpenURL(cl *client.Client, url string, c Common, open OpenFunc) (*client.Subscription, error) {
	errs := c.Check()
	var sub *client.Subscription
	if url == "" {
		errs = append(errs, ingest.FieldErrorf("URL", "is required"))
	} else {
		var err error
		if cl, err = Client(cl); err == nil {
			sub, err = open(cl.Streams, url, c.Options()...)
		}
		if err != nil {
			errs = append(errs, &ingest.FieldError{Field: "URL", Err: err})
		}
	}
	if len(errs) > 0 {
		if sub != nil {
			_ = sub.Close()
		}
		return nil, errors.Join(errs...)
	}
	return sub, nil
}

// ValidateURL reports what OpenURL would refuse, opening nothing that
// stays open: the Validate of a source over one runtime URL.
func ValidateURL(cl *client.Client, url string, c Common, open OpenFunc) error {
	sub, err := OpenURL(cl, url, c, open)
	if err != nil {
		return err
	}
	return sub.Close()
}

// Client returns c, or a client of the hosted service without an API key.
func Client(c *client.Client) (*client.Client, error) {
	if c != nil {
		return c, nil
	}
	return client.New("")
}
