// Package stream is the connection machinery of package client's
// subscriptions: a reconnect loop with jittered exponential backoff that
// resumes from the last cursor, an idle watchdog, and the retry hints
// (Retry-After, SSE retry:) that SSE and WebSocket have in common. It knows
// nothing of HTTP or of Restless events: a Dialer opens connections, a Conn
// reads raw events off one.
//
// A Runner owns one goroutine per subscription. That goroutine dials, reads
// events off the connection and hands them to Next through a small queue, so
// that Next is cheap, can be cancelled without harming the connection, and a
// consumer that stops calling Next stops the reading (backpressure).
package stream

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// Errors that end a Runner, for package client to export as its own.
var (
	// ErrStreamEnded: the server ended the stream for good (HTTP 204), or,
	// with Policy.Once, ended the one connection in order.
	ErrStreamEnded = errors.New("stream ended by the server")
	// ErrClosed is returned by Next once Close was called.
	ErrClosed = errors.New("subscription closed")
	// ErrExhausted is wrapped by the error of a Runner whose reconnect
	// budget (Policy.MaxAttempts or Policy.MaxReconnects) ran out.
	ErrExhausted = errors.New("reconnects exhausted")
	// ErrServerClosed is wrapped by a Conn's Read error when the server
	// ended the connection in order (the end of an SSE response, a
	// WebSocket closed normally), as opposed to a failure.
	ErrServerClosed = errors.New("the server closed the connection")
)

// permanentError marks a failure that retrying cannot fix.
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// Permanent marks err as a failure that reconnecting cannot fix: the Runner
// stops on it. nil stays nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err: err}
}

// IsPermanent reports whether err was marked by Permanent.
func IsPermanent(err error) bool {
	var p *permanentError
	return errors.As(err, &p)
}

// Event is one event read off a connection.
type Event struct {
	// Data is owned by the receiver: a connection never reuses it.
	Data []byte
	// Cursor is the resume position the event carries; "" when it carries
	// none. The Runner's Next replaces "" with the cursor in effect.
	Cursor string
	// TooLarge reports that Data was cut at the size limit.
	TooLarge bool
	// Err, when set, says why the event cannot be used although it was
	// read (an id that cannot be a cursor). Its Cursor is "".
	Err error
	// Received is when the event was read (set by the Runner).
	Received time.Time
}

// Conn is one open upstream connection.
type Conn interface {
	// Read blocks for the next event. Any error ends the connection; an
	// orderly end by the server wraps ErrServerClosed.
	Read() (Event, error)
	// Close aborts the connection. It may be called while Read blocks and
	// makes it return promptly. It is called exactly once per Conn.
	Close() error
}

// Dialer opens connections.
type Dialer interface {
	// Dial opens a connection resuming after cursor ("" before any event).
	// It returns an error wrapping ErrStreamEnded when the server ended the
	// stream for good, one marked Permanent when retrying cannot help, and
	// any other error to be retried with backoff. WithRetryAfter attaches a
	// delay the server asked for.
	Dial(ctx context.Context, cursor string) (Conn, error)
}

// State is where a Runner stands with its connection.
type State int

// States, in the order of package client's ConnState.
const (
	StateConnecting State = iota
	StateConnected
	StateReconnecting
	StateEnded
	StateFailed
)

// StateChange is reported on every change of State.
type StateChange struct {
	State State
	// Attempt counts consecutive reconnect attempts (StateReconnecting).
	Attempt int
	// Delay is the wait before the attempt (StateReconnecting).
	Delay time.Duration
	// Err is why the connection was lost or the Runner stopped.
	Err error
}

// DefaultQueue is how many events the reading goroutine may hold ready for
// Next: enough that the reader and its consumer rarely wait for each other
// (each wait is a goroutine put to sleep and woken).
const DefaultQueue = 64

// DefaultQueueBytes bounds the bytes of the events waiting for Next. An
// event larger than that still passes, alone: a Runner holds at most
// max(DefaultQueueBytes, one event) in its queue, and the event it is
// reading.
const DefaultQueueBytes = 1 << 20

// Config configures a Runner.
type Config struct {
	// Dialer opens each connection. Required.
	Dialer Dialer
	// Cursor is the resume position of the first connection.
	Cursor string
	// Policy says whether and how to reconnect.
	Policy Policy
	// OnState, when set, is called on every state change from the runner's
	// goroutine. It must not block.
	OnState func(StateChange)
	// Queue is how many events may wait for Next. Default DefaultQueue.
	Queue int
	// QueueBytes bounds the bytes of those events. Default DefaultQueueBytes.
	QueueBytes int
	// ExplicitProgress makes only Runner.Progress restart the count of
	// consecutive failed attempts (Policy.MaxAttempts); without it every
	// connection that delivered an event restarts it.
	ExplicitProgress bool
	// MaxSilence ends a connection, and reconnects, when no event arrives
	// for this long while the runner waits on the server (heartbeats and
	// other bytes do not count; time spent waiting for a slow consumer does
	// not either). 0 disables it.
	MaxSilence time.Duration
	// StartErr, when set, is the Err of the first report (StateConnecting):
	// something the owner wants known that does not stop the runner.
	StartErr error
}

// ErrSilence is wrapped by the error of a connection that delivered no
// event for Config.MaxSilence.
var ErrSilence = errors.New("no event for the maximum silence")

// Runner turns a Dialer into a stream of events that survives disconnects.
type Runner struct {
	cfg    Config
	events chan Event
	queued atomic.Int64  // bytes of the events in events
	full   atomic.Bool   // the reading goroutine waits for queued to fall
	space  chan struct{} // wakes it (capacity 1)
	done   chan struct{} // closed when the goroutine has returned
	err    error         // why it returned; read only after done is closed
	ctx    context.Context
	cancel context.CancelFunc
	start  sync.Once
	closed atomic.Bool

	mu     sync.Mutex
	cursor string // of the last event Next returned

	progress  atomic.Bool  // Progress was called since the last check
	lastEvent atomic.Int64 // Unix nanoseconds of the last event read; 0 before any

	// With ExplicitProgress, the end of a connection that delivered events
	// waits until the consumer came back to Next after the last of them, so
	// that its Progress for them is seen: sent counts the events queued,
	// takenN those Next returned, caughtUp is takenN as of the latest Next
	// call, and back wakes the runner waiting for it.
	sent, takenN, caughtUp atomic.Int64
	awaitBack              atomic.Bool
	back                   chan struct{}
}

// Progress tells the runner that its consumer accepted an event: with
// Config.ExplicitProgress, only this restarts the count of consecutive
// failed attempts. It is safe to call from any goroutine.
func (r *Runner) Progress() { r.progress.Store(true) }

// LastEvent returns when the last event was read off a connection, or the
// zero time before any.
func (r *Runner) LastEvent() time.Time {
	if n := r.lastEvent.Load(); n != 0 {
		return time.Unix(0, n)
	}
	return time.Time{}
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
		events: make(chan Event, cfg.Queue),
		space:  make(chan struct{}, 1),
		back:   make(chan struct{}, 1),
		done:   make(chan struct{}),
		ctx:    ctx,
		cancel: cancel,
		cursor: cfg.Cursor,
	}
}

// Next blocks for the next event. It returns a non-nil error only when the
// runner is done: one wrapping ErrStreamEnded after the server ended the
// stream, the failure that stopped it (marked Permanent, or wrapping
// ErrExhausted, or any error with Policy.Once), ErrClosed after Close, or
// ctx.Err() when ctx ends (which leaves the runner intact: Next may be
// called again).
func (r *Runner) Next(ctx context.Context) (Event, error) {
	if r.closed.Load() {
		return Event{}, ErrClosed
	}
	r.start.Do(func() { go r.run() })
	r.caughtUp.Store(r.takenN.Load())
	if r.awaitBack.Load() {
		select {
		case r.back <- struct{}{}:
		default:
		}
	}
	select {
	case e := <-r.events:
		r.taken(e)
		return e, nil
	default:
	}
	select {
	case e := <-r.events:
		r.taken(e)
		return e, nil
	case <-r.done:
		// Every event was queued before done closed: deliver those first.
		select {
		case e := <-r.events:
			r.taken(e)
			return e, nil
		default:
		}
		if r.closed.Load() {
			return Event{}, ErrClosed
		}
		return Event{}, r.err
	case <-ctx.Done():
		return Event{}, ctx.Err()
	}
}

// taken accounts for an event handed to Next's caller, waking the reading
// goroutine when it waits for room, and remembers its cursor.
func (r *Runner) taken(e Event) {
	r.takenN.Add(1)
	r.queued.Add(-int64(len(e.Data)))
	if r.full.Load() {
		select {
		case r.space <- struct{}{}:
		default:
		}
	}
	if e.Cursor != "" {
		r.mu.Lock()
		r.cursor = e.Cursor
		r.mu.Unlock()
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

// Cursor returns the cursor of the last event Next returned, or the initial
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

func (r *Runner) state(c StateChange) {
	if r.cfg.OnState != nil {
		r.cfg.OnState(c)
	}
}

// stop records why the runner ends and reports it.
func (r *Runner) stop(s State, err error) {
	r.err = err
	if s == StateFailed {
		r.state(StateChange{State: s, Err: err})
	} else {
		r.state(StateChange{State: s})
	}
}

func (r *Runner) run() {
	defer close(r.done)
	ctx := r.ctx
	cursor := r.cfg.Cursor
	policy := r.cfg.Policy
	attempt, reconnects := 0, 0
	r.state(StateChange{State: StateConnecting, Err: r.cfg.StartErr})
	for {
		conn, err := r.cfg.Dialer.Dial(ctx, cursor)
		if err == nil {
			r.state(StateChange{State: StateConnected})
			var delivered bool
			cursor, delivered, err = r.pump(ctx, conn, cursor)
			if r.cfg.ExplicitProgress {
				if delivered {
					r.awaitConsumer(ctx)
				}
				delivered = r.progress.Swap(false)
			}
			if delivered {
				attempt = 0
			}
		}
		switch {
		case ctx.Err() != nil:
			r.err = ErrClosed
			return
		case errors.Is(err, ErrStreamEnded):
			r.stop(StateEnded, err)
			return
		case IsPermanent(err):
			r.stop(StateFailed, err)
			return
		case policy.Once && errors.Is(err, ErrServerClosed):
			r.stop(StateEnded, fmt.Errorf("%w: %w", ErrStreamEnded, err))
			return
		case policy.Once:
			r.stop(StateFailed, err)
			return
		}
		attempt++
		reconnects++
		if policy.Exhausted(attempt) {
			r.stop(StateFailed, fmt.Errorf("%w after %d attempts: %w", ErrExhausted, attempt-1, err))
			return
		}
		if policy.LimitReconnects && reconnects > policy.MaxReconnects {
			r.stop(StateFailed, fmt.Errorf("%w after %d reconnects: %w", ErrExhausted, reconnects-1, err))
			return
		}
		delay := policy.Hint(policy.Delay(attempt), RetryAfterOf(err))
		r.state(StateChange{State: StateReconnecting, Attempt: attempt, Delay: delay, Err: err})
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

// awaitConsumer waits until the consumer called Next after taking every
// event queued so far (it has judged them all), or ctx ends.
func (r *Runner) awaitConsumer(ctx context.Context) {
	defer r.awaitBack.Store(false)
	for {
		if r.caughtUp.Load() >= r.sent.Load() {
			return
		}
		r.awaitBack.Store(true)
		if r.caughtUp.Load() >= r.sent.Load() {
			return
		}
		select {
		case <-r.back:
		case <-ctx.Done():
			return
		}
	}
}

// pump reads conn until it fails, queueing events. It returns the cursor in
// effect, whether any event was delivered, and why the connection ended.
func (r *Runner) pump(ctx context.Context, conn Conn, cursor string) (string, bool, error) {
	var once sync.Once
	closeConn := func() { once.Do(func() { _ = conn.Close() }) } // exactly once
	stop := context.AfterFunc(ctx, closeConn)
	defer func() {
		stop()
		closeConn()
	}()
	delivered := false
	silence := NewWatchdog(r.cfg.MaxSilence, closeConn)
	defer silence.Disarm()
	for {
		silence.Arm()
		ev, err := conn.Read()
		silence.Disarm()
		if silence.Fired() {
			return cursor, delivered, fmt.Errorf("%w: no event for %v", ErrSilence, r.cfg.MaxSilence)
		}
		if err != nil {
			return cursor, delivered, err
		}
		if ev.Cursor != "" {
			cursor = ev.Cursor
		}
		ev.Cursor = cursor
		ev.Received = time.Now()
		r.lastEvent.Store(ev.Received.UnixNano())
		n := int64(len(ev.Data))
		if err := r.room(ctx, n); err != nil {
			return cursor, delivered, err
		}
		r.queued.Add(n)
		r.sent.Add(1)
		select {
		case r.events <- ev:
		case <-ctx.Done():
			r.queued.Add(-n)
			r.sent.Add(-1)
			return cursor, delivered, ctx.Err()
		}
		delivered = true
	}
}
