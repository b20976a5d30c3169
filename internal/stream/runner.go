// Package stream is the connection machinery shared by the sources: a
// reconnect loop with jittered exponential backoff that resumes from the last
// cursor, an idle watchdog, and the HTTP helpers (status classification,
// Retry-After, resume URLs, redaction) that SSE and WebSocket have in common.
//
// A Runner owns one goroutine per source. That goroutine dials, reads events
// off the connection and hands them to Next through a small queue, so that
// Next is cheap, can be cancelled without harming the connection, and a
// consumer that stops calling Next stops the reading (backpressure).
package stream

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/restless-stream/ingest"
	"github.com/restless-stream/ingest/internal/backoff"
)

// ErrClosed is returned by Next once Close was called.
var ErrClosed = errors.New("source closed")

// Event is one event read off a connection.
type Event struct {
	// Data is owned by the receiver: a connection never reuses it.
	Data []byte
	// Cursor is the resume position the event carries; "" when it carries none.
	Cursor string
	// TooLarge reports that Data was cut at the size limit.
	TooLarge bool
}

// Conn is one open upstream connection.
type Conn interface {
	// Read blocks for the next event. Any error ends the connection.
	Read() (Event, error)
	// Close aborts the connection. It may be called while Read blocks and
	// makes it return promptly. It is called exactly once per Conn.
	Close() error
}

// Dialer opens connections.
type Dialer interface {
	// Dial opens a connection resuming after cursor ("" before any event).
	// It returns an error wrapping ingest.ErrStreamEnded when the server ended
	// the stream for good, an *ingest.PermanentError when retrying cannot help,
	// and any other error to be retried with backoff. WithRetryAfter attaches
	// a delay the server asked for.
	Dial(ctx context.Context, cursor string) (Conn, error)
}

// DefaultQueue is how many events the reading goroutine may hold ready for
// Next: enough that the reader and its consumer rarely wait for each other
// (each wait is a goroutine put to sleep and woken).
const DefaultQueue = 64

// DefaultQueueBytes bounds the bytes of the events waiting for Next. An
// event larger than that still passes, alone: a source holds at most
// max(DefaultQueueBytes, one event) in its queue, and the event it is
// reading.
const DefaultQueueBytes = 1 << 20

// Config configures a Runner.
type Config struct {
	// Dialer opens each connection. Required.
	Dialer Dialer
	// Cursor is the resume position of the first connection.
	Cursor string
	// Reconnect paces the reconnects; its zero value means 1s..30s, forever.
	Reconnect backoff.Policy
	// OnState, when set, is called on every state change from the runner's
	// goroutine. It must not block.
	OnState func(ingest.StateChange)
	// Queue is how many events may wait for Next. Default DefaultQueue.
	Queue int
	// QueueBytes bounds the bytes of those events. Default DefaultQueueBytes.
	QueueBytes int
}

// Runner turns a Dialer into a stream of frames that survives disconnects.
type Runner struct {
	cfg    Config
	frames chan ingest.Frame
	queued atomic.Int64  // bytes of the frames in frames
	full   atomic.Bool   // the reading goroutine waits for queued to fall
	space  chan struct{} // wakes it (capacity 1)
	done   chan struct{} // closed when the goroutine has returned
	err    error         // why it returned; read only after done is closed

	ctx    context.Context
	cancel context.CancelFunc
	start  sync.Once
	closed atomic.Bool

	mu     sync.Mutex
	cursor string // of the last frame Next returned
}

// New returns a Runner. Nothing happens until the first Next.
func New(cfg Config) *Runner {
	if cfg.Queue <= 0 {
		cfg.Queue = DefaultQueue
	}
	if cfg.QueueBytes <= 0 {
		cfg.QueueBytes = DefaultQueueBytes
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Runner{
		cfg:    cfg,
		frames: make(chan ingest.Frame, cfg.Queue),
		space:  make(chan struct{}, 1),
		done:   make(chan struct{}),
		ctx:    ctx,
		cancel: cancel,
		cursor: cfg.Cursor,
	}
}

// Next blocks for the next frame. It returns a non-nil error only when the
// runner is done: ingest.ErrStreamEnded after the server ended the stream, an
// *ingest.PermanentError on a permanent failure or an exhausted reconnect
// budget, ErrClosed after Close, or ctx.Err() when ctx ends (which leaves the
// runner intact: Next may be called again).
func (r *Runner) Next(ctx context.Context) (ingest.Frame, error) {
	if r.closed.Load() {
		return ingest.Frame{}, ErrClosed
	}
	r.start.Do(func() { go r.run() })
	select {
	case f := <-r.frames:
		r.taken(f)
		r.setCursor(f.Cursor)
		return f, nil
	default:
	}
	select {
	case f := <-r.frames:
		r.taken(f)
		r.setCursor(f.Cursor)
		return f, nil
	case <-r.done:
		// Every frame was queued before done closed: deliver those first.
		select {
		case f := <-r.frames:
			r.taken(f)
			r.setCursor(f.Cursor)
			return f, nil
		default:
		}
		if r.closed.Load() {
			return ingest.Frame{}, ErrClosed
		}
		return ingest.Frame{}, r.err
	case <-ctx.Done():
		return ingest.Frame{}, ctx.Err()
	}
}

// taken accounts for a frame handed to Next's caller, waking the reading
// goroutine when it waits for room.
func (r *Runner) taken(f ingest.Frame) {
	r.queued.Add(-int64(len(f.Data)))
	if r.full.Load() {
		select {
		case r.space <- struct{}{}:
		default:
		}
	}
}

// room waits until n more bytes fit in the queue, or the queue is empty.
func (r *Runner) room(ctx context.Context, n int64) error {
	limit := int64(r.cfg.QueueBytes)
	for {
		q := r.queued.Load()
		if q == 0 || q+n <= limit {
			return nil
		}
		r.full.Store(true)
		// Check again now that taken sees full: it either freed the room
		// already or will send on space.
		if q = r.queued.Load(); q == 0 || q+n <= limit {
			r.full.Store(false)
			return nil
		}
		select {
		case <-r.space:
			r.full.Store(false)
		case <-ctx.Done():
			r.full.Store(false)
			return ctx.Err()
		}
	}
}

func (r *Runner) setCursor(c string) {
	if c == "" {
		return
	}
	r.mu.Lock()
	r.cursor = c
	r.mu.Unlock()
}

// Cursor returns the cursor of the last frame Next returned, or the initial
// cursor before any.
func (r *Runner) Cursor() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.cursor
}

// Close stops the runner, closes the connection and waits for the goroutine
// to return. Next then returns ErrClosed. Close is idempotent.
func (r *Runner) Close() error {
	r.closed.Store(true)
	r.cancel()
	r.start.Do(func() {
		r.err = ErrClosed
		close(r.done)
	})
	<-r.done
	return nil
}

func (r *Runner) state(c ingest.StateChange) {
	if r.cfg.OnState != nil {
		r.cfg.OnState(c)
	}
}

func (r *Runner) run() {
	defer close(r.done)
	ctx := r.ctx
	cursor := r.cfg.Cursor
	policy := r.cfg.Reconnect
	attempt := 0
	r.state(ingest.StateChange{State: ingest.StateConnecting})
	for {
		conn, err := r.cfg.Dialer.Dial(ctx, cursor)
		if err == nil {
			r.state(ingest.StateChange{State: ingest.StateConnected})
			var delivered bool
			cursor, delivered, err = r.pump(ctx, conn, cursor)
			if delivered {
				attempt = 0
			}
		}
		if ctx.Err() != nil {
			r.err = ErrClosed
			return
		}
		if errors.Is(err, ingest.ErrStreamEnded) {
			r.state(ingest.StateChange{State: ingest.StateEnded})
			r.err = err
			return
		}
		if ingest.IsPermanent(err) {
			r.state(ingest.StateChange{State: ingest.StateFailed, Err: err})
			r.err = err
			return
		}
		attempt++
		if policy.Exhausted(attempt) {
			err = &ingest.PermanentError{Err: fmt.Errorf("reconnect budget exhausted after %d attempts: %w", attempt-1, err)}
			r.state(ingest.StateChange{State: ingest.StateFailed, Err: err})
			r.err = err
			return
		}
		delay := policy.Hint(policy.Delay(attempt), RetryAfterOf(err))
		r.state(ingest.StateChange{State: ingest.StateReconnecting, Attempt: attempt, Delay: delay, Err: err})
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			r.err = ErrClosed
			return
		}
	}
}

// pump reads conn until it fails, queueing frames. It returns the cursor in
// effect, whether any event was delivered, and why the connection ended.
func (r *Runner) pump(ctx context.Context, conn Conn, cursor string) (string, bool, error) {
	stop := context.AfterFunc(ctx, func() { _ = conn.Close() })
	defer func() {
		if stop() {
			_ = conn.Close()
		}
	}()
	delivered := false
	for {
		ev, err := conn.Read()
		if err != nil {
			return cursor, delivered, err
		}
		if ev.Cursor != "" {
			cursor = ev.Cursor
		}
		f := ingest.Frame{Data: ev.Data, Cursor: cursor, TooLarge: ev.TooLarge, Received: time.Now()}
		n := int64(len(f.Data))
		if err := r.room(ctx, n); err != nil {
			return cursor, delivered, err
		}
		r.queued.Add(n)
		select {
		case r.frames <- f:
		case <-ctx.Done():
			r.queued.Add(-n)
			return cursor, delivered, ctx.Err()
		}
		delivered = true
	}
}
