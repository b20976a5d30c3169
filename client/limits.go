package client

import (
	"errors"
	"fmt"
	"io"
	"sync/atomic"
	"time"

	"github.com/restless-stream/ingest/client/internal/stream"
)

// Limits on what an upstream controls. A server, a proxy in front of it or
// anyone who can write into a stream may send any bytes; these bound what
// such bytes can make a subscription do.
const (
	// MaxEventIDBytes is the longest acceptable event id: an event_id (or
	// eventId) in an event, an SSE id field, or a cursor given to
	// WithCursor.
	MaxEventIDBytes = 1024
	// MaxNestingDepth bounds how deeply arrays and objects may nest in an
	// event (the envelope counts as one level): deeper is a *ParseError.
	MaxNestingDepth = maxDepth
	// MinReconnectDelay is the shortest wait before a reconnect that a
	// subscription accepts (WithRetryDelay, Backoff.Initial).
	MinReconnectDelay = stream.MinDelay
	// MaxRetryAfter is the longest wait a server can ask for with
	// Retry-After or the SSE retry: field. It is honoured up to this even
	// above Backoff.Max.
	MaxRetryAfter = stream.MaxHint
	// MaxNonEventBytes is how many bytes a connection may deliver beyond
	// the size limit without completing an event: comments, heartbeats,
	// ignored fields, the dropped rest of an oversized event, WebSocket
	// control frames. Past it the connection fails and the subscription
	// reconnects with backoff, so an endless line or endless heartbeats
	// cannot hold a core.
	MaxNonEventBytes = 1 << 20
)

// ErrNoEventBytes is wrapped by the error of a connection that delivered
// more than the size limit plus MaxNonEventBytes without completing an
// event. The subscription reconnects with backoff.
var ErrNoEventBytes = errors.New("too many bytes without an event")

// budgetReader fails a connection that reads more than limit bytes without
// an event: reset calls the count back to zero at each event. A never
// ending line, endless comments or heartbeats, or a WebSocket message that
// never ends would otherwise hold a core at network speed for ever.
type budgetReader struct {
	r      io.Reader
	n      atomic.Int64
	limit  int64
	failed atomic.Bool
}

func newBudgetReader(r io.Reader, maxEvent int) *budgetReader {
	return &budgetReader{r: r, limit: int64(maxEvent) + MaxNonEventBytes}
}

func (b *budgetReader) Read(p []byte) (int, error) {
	if b.n.Load() > b.limit {
		b.failed.Store(true)
		return 0, b.err()
	}
	n, err := b.r.Read(p)
	b.n.Add(int64(n))
	return n, err
}

func (b *budgetReader) reset() { b.n.Store(0) }

func (b *budgetReader) err() error {
	return fmt.Errorf("%w: more than %d bytes", ErrNoEventBytes, b.limit)
}

// ErrInvalidEventID is matched by the error for an event id that cannot be
// a cursor: see CheckEventID.
var ErrInvalidEventID = errors.New("invalid event id")

// CheckEventID reports whether id can be used as a cursor: sent as the
// Last-Event-ID header and the cursor= query parameter, and saved in a
// checkpoint. An acceptable id is 1 to MaxEventIDBytes (1024) bytes of
// printable ASCII, 0x21 to 0x7E: no space, no control character, nothing
// outside ASCII. Every such value is a valid HTTP header value. The error
// matches ErrInvalidEventID.
func CheckEventID(id string) error {
	if id == "" {
		return fmt.Errorf("%w: empty", ErrInvalidEventID)
	}
	if len(id) > MaxEventIDBytes {
		return fmt.Errorf("%w: %d bytes, longer than %d", ErrInvalidEventID, len(id), MaxEventIDBytes)
	}
	if i := badIDByte(id); i >= 0 {
		return fmt.Errorf("%w: byte 0x%02x at offset %d is not printable ASCII", ErrInvalidEventID, id[i], i)
	}
	return nil
}

// badIDByte returns the index of the first byte of id outside 0x21–0x7E,
// or -1.
func badIDByte[S string | []byte](id S) int {
	for i := 0; i < len(id); i++ {
		if c := id[i]; c < 0x21 || c > 0x7e {
			return i
		}
	}
	return -1
}

// validID reports whether CheckEventID accepts id.
func validID[S string | []byte](id S) bool {
	return len(id) > 0 && len(id) <= MaxEventIDBytes && badIDByte(id) < 0
}

// CursorError is reported when a subscription drops the cursor it was given
// (WithCursor) because it cannot be sent: it then starts from WithSince, or
// from the live end of the stream without one. It comes as the Err of the
// first StateChange (StateConnecting) and from Subscription.DroppedCursor;
// it matches ErrInvalidEventID.
type CursorError struct {
	// Cursor is the dropped cursor, quoted and cut to 64 bytes.
	Cursor string
	Err    error
}

func (e *CursorError) Error() string {
	return fmt.Sprintf("restless: subscribe: cursor %s dropped: %v", e.Cursor, e.Err)
}

func (e *CursorError) Unwrap() error { return e.Err }

// quoteCut quotes s for a message, cut to n bytes.
func quoteCut(s string, n int) string {
	if len(s) > n {
		return fmt.Sprintf("%q… (%d bytes)", s[:n], len(s))
	}
	return fmt.Sprintf("%q", s)
}

// durationFloor is the error for a delay below MinReconnectDelay.
func durationFloor(what string, d time.Duration) error {
	return fmt.Errorf("restless: subscribe: %s %v is below the minimum of %v", what, d, MinReconnectDelay)
}
