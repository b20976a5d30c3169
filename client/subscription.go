package client

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/restless-stream/ingest/client/internal/stream"
)

// Errors of subscriptions, matched with errors.Is.
var (
	// ErrStreamEnded: the server ended the stream for good (HTTP 204), or,
	// with reconnecting off (WithReconnect(false)), ended the connection in
	// order. The Subscribe functions end their iteration on it without
	// yielding it; Subscription.Next returns it.
	ErrStreamEnded = stream.ErrStreamEnded
	// ErrSubscriptionClosed is returned by Subscription.Next after Close.
	ErrSubscriptionClosed = stream.ErrClosed
	// ErrReconnectsExhausted ends a subscription whose reconnect budget
	// (WithMaxReconnects, or Backoff.MaxAttempts) ran out. The error also
	// wraps why the last connection ended.
	ErrReconnectsExhausted = stream.ErrExhausted
	// ErrIdleTimeout is wrapped by the error of a connection that received
	// no byte for the idle timeout (WithIdleTimeout).
	ErrIdleTimeout = stream.ErrIdle
	// ErrOpenTimeout is wrapped by the error of a connection that did not
	// open within the open timeout (WithOpenTimeout).
	ErrOpenTimeout = errors.New("open timeout")
	// ErrMaxSilence is wrapped by the error of a connection that delivered
	// no event for the maximum silence (WithMaxSilence).
	ErrMaxSilence = stream.ErrSilence
	// ErrEventTooLarge is wrapped by the error yielded for an event larger
	// than the size limit (WithMaxEventBytes). The rest of the event was
	// read and dropped; the subscription goes on.
	ErrEventTooLarge = errors.New("event too large")
)

// SignatureError is yielded for an event that failed verification
// (WithVerifier). It matches ErrSignatureMissing or ErrSignatureInvalid.
// The event must not be trusted; it is there to be logged or set aside.
type SignatureError struct {
	// Event is the event as received.
	Event *Event
	// Err is Verifier.Verify's error.
	Err error
}

func (e *SignatureError) Error() string {
	return fmt.Sprintf("%v (event_id %q)", e.Err, e.Event.EventID)
}

func (e *SignatureError) Unwrap() error { return e.Err }

// ConnState is where a subscription stands with its connection.
type ConnState int

// Connection states, reported to WithStateFunc.
const (
	// StateConnecting: the first connection attempt is under way.
	StateConnecting ConnState = iota
	// StateConnected: the server answered and events may flow.
	StateConnected
	// StateReconnecting: the connection was lost; the subscription waits
	// Delay before attempt Attempt.
	StateReconnecting
	// StateEnded: the server ended the stream (ErrStreamEnded).
	StateEnded
	// StateFailed: the subscription stopped on an error that reconnecting
	// cannot fix, or its reconnect budget ran out.
	StateFailed
)

func (s ConnState) String() string {
	switch s {
	case StateConnecting:
		return "connecting"
	case StateConnected:
		return "connected"
	case StateReconnecting:
		return "reconnecting"
	case StateEnded:
		return "ended"
	case StateFailed:
		return "failed"
	}
	return fmt.Sprintf("ConnState(%d)", int(s))
}

// StateChange is what a subscription reports each time its state changes.
type StateChange struct {
	State ConnState
	// Attempt counts consecutive reconnect attempts since the last
	// connection that delivered an event (StateReconnecting only).
	Attempt int
	// Delay is the wait before the next attempt (StateReconnecting only).
	Delay time.Duration
	// Err is why the connection was lost or the subscription stopped.
	Err error
}

// RawEvent is one event as a subscription read it off the wire, before any
// decoding: the data of an SSE event or a WebSocket text message.
type RawEvent struct {
	// Data is the event's bytes. It belongs to the receiver but is
	// read-only: it may share memory with an immutable string. When
	// TooLarge is set it holds only the first bytes, up to the size limit.
	Data []byte
	// Cursor is the resume position in effect after this event: the SSE
	// id, else the event_id read from the data; the previous cursor when
	// the event carries neither.
	Cursor string
	// TooLarge reports that the event was larger than the size limit: Data
	// was cut and the rest dropped.
	TooLarge bool
	// Err, when set, says why the event must be rejected although it was
	// read whole: its SSE id cannot be a cursor (it matches
	// ErrInvalidEventID; see CheckEventID). Such an event never moves the
	// cursor (Cursor is the previous one); the Subscribe functions yield it
	// as a *ParseError.
	Err error
	// Received is when the event was read.
	Received time.Time
}

// Subscription is the level under the Subscribe functions: it connects,
// reads raw events, resumes from the last cursor and reconnects, and leaves
// decoding to its caller. Open one with StreamsService.OpenSSE and friends;
// it connects on the first Next. One goroutine reads ahead of Next (at most
// 64 events or 1 MiB); Close ends it.
type Subscription struct {
	r       *stream.Runner
	verify  *Verifier
	maxSize int
	dropped error
}

// Next blocks for the next raw event. Reconnecting happens inside: Next
// returns an error only when the subscription is done, or ctx.Err() when ctx
// ends (the subscription stays intact: Next may be called again). Once done
// it returns an error matching ErrStreamEnded when the server ended the
// stream; ErrSubscriptionClosed after Close; otherwise the failure that
// stopped it: a *StatusError for a refused connection (any 4xx but 408 and
// 429), an error matching ErrReconnectsExhausted, or, with reconnecting
// off, why the connection failed.
func (s *Subscription) Next(ctx context.Context) (RawEvent, error) {
	e, err := s.r.Next(ctx)
	return RawEvent{Data: e.Data, Cursor: e.Cursor, TooLarge: e.TooLarge, Err: e.Err, Received: e.Received}, err
}

// Progress tells the subscription that its consumer accepted an event. With
// WithExplicitProgress only this restarts the count of consecutive failed
// reconnect attempts (Backoff.MaxAttempts). Safe from any goroutine.
func (s *Subscription) Progress() { s.r.Progress() }

// LastEvent returns when the last event (any event, good or bad) was read
// off a connection, or the zero time before the first: what a status page
// shows as the time since the last event.
func (s *Subscription) LastEvent() time.Time { return s.r.LastEvent() }

// DroppedCursor returns the *CursorError for a WithCursor cursor that could
// not be sent and was dropped, or nil.
func (s *Subscription) DroppedCursor() error { return s.dropped }

// Cursor returns the cursor of the last event Next returned, or the initial
// cursor (WithCursor) before any: the position to resume from later.
func (s *Subscription) Cursor() string { return s.r.Cursor() }

// Close ends the connection and waits for the subscription's goroutines.
// Next then returns ErrSubscriptionClosed. Close is idempotent.
func (s *Subscription) Close() error { return s.r.Close() }

// events decodes (and verifies) what Next returns, for the Subscribe
// functions.
func (s *Subscription) events(ctx context.Context, yield func(*Event, error) bool) {
	for {
		raw, err := s.Next(ctx)
		if err != nil {
			if !errors.Is(err, ErrStreamEnded) {
				yield(nil, err)
			}
			return
		}
		ev, err := s.decode(raw)
		if err == nil {
			s.r.Progress()
		}
		if !yield(ev, err) {
			return
		}
	}
}

// decode turns one raw event into an *Event, or the error to yield for it.
func (s *Subscription) decode(raw RawEvent) (*Event, error) {
	if raw.TooLarge {
		return nil, fmt.Errorf("restless: %w: more than %d bytes (after cursor %q)", ErrEventTooLarge, s.maxSize, raw.Cursor)
	}
	if raw.Err != nil {
		return nil, &ParseError{Field: "id", Reason: raw.Err.Error(), cause: raw.Err}
	}
	ev := new(Event)
	// raw.Data belongs to this call and is never changed: ev may alias it.
	if err := DecodeEvent(raw.Data, ev); err != nil {
		return nil, err
	}
	if s.verify != nil && ev.Type == EventUpdate {
		if err := s.verify.Verify(ev.Data, ev.Signature); err != nil {
			return nil, &SignatureError{Event: ev, Err: err}
		}
	}
	return ev, nil
}

// stateFunc adapts a WithStateFunc callback to the runner's reports.
func stateFunc(f func(StateChange)) func(stream.StateChange) {
	if f == nil {
		return nil
	}
	return func(c stream.StateChange) {
		f(StateChange{State: ConnState(c.State), Attempt: c.Attempt, Delay: c.Delay, Err: c.Err})
	}
}
