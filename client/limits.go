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
	// the size limit without completing an event (comments, heartbeats,
	// ignored fields, the dropped rest of an oversized event, WebSocket
	// control frames) at full speed. Past it the connection is read at
	// NonEventRate until the next event, so an endless line or endless
	// heartbeats cannot hold a core; WithMaxSilence ends such a
	// connection.
	MaxNonEventBytes = 1 << 20
	// NonEventRate is the pace, in bytes a second, of a connection past
	// MaxNonEventBytes without an event: 8 MiB/s, a few per cent of a core.
	NonEventRate = 8 << 20
)

// budgetReader bounds the CPU a connection can take without delivering
// events: once more than limit bytes arrived since the last event, it reads
// at most NonEventRate bytes a second (the server's sends back up in TCP).
// A never-ending line, endless comments or heartbeats, or a WebSocket
// message that never ends would otherwise hold a core at network speed for
// ever; an oversized event that does end still ends, only slower, and is
// reported as too large. reset starts the count again at each event.
type budgetReader struct {
	r     io.Reader
	n     atomic.Int64
	limit int64
	done  <-chan struct{} // the connection's end: stops a wait
	// wait sleeps d or until done; a test replaces it.
	wait func(d time.Duration, done <-chan struct{}) bool
}

func newBudgetReader(r io.Reader, maxEvent int, done <-chan struct{}) *budgetReader {
	return &budgetReader{r: r, limit: int64(maxEvent) + MaxNonEventBytes, done: done, wait: sleepOrDone}
}

func sleepOrDone(d time.Duration, done <-chan struct{}) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-done:
		return false
	}
}

func (b *budgetReader) Read(p []byte) (int, error) {
	over := b.n.Load() >= b.limit
	if over && len(p) > nonEventChunk {
		p = p[:nonEventChunk]
	}
	n, err := b.r.Read(p)
	if b.n.Add(int64(n)) > b.limit && n > 0 {
		// Pace the bytes past the budget at NonEventRate.
		d := (time.Duration(n)*time.Second + NonEventRate - 1) / NonEventRate // rounded up
		if !b.wait(d, b.done) && err == nil {
			err = errors.New("connection closed")
		}
	}
	return n, err
}

// nonEventChunk is the largest read once the budget is spent.
const nonEventChunk = 16 << 10

func (b *budgetReader) reset() { b.n.Store(0) }

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
