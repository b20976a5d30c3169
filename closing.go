package ingest

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// ErrClosed is wrapped by the error of each record that a sink's Write
// refuses because the sink's Close has begun. Every sink of this module
// (sink/nats, sink/kafka, sink/file) closes the same way, with a WriteGate:
//
//   - Close(ctx) stops taking Writes at once: a Write that starts after it
//     fails every record with an error wrapping ErrClosed, in a WriteErrors.
//   - It waits for the Writes in progress to return, so that each of their
//     records is acknowledged or reported failed, and then releases the
//     connection or file.
//   - If ctx ends first, it stops waiting: the Writes still in progress are
//     cancelled (their records not yet acknowledged fail, for whoever retries
//     them) and Close releases what it holds and returns an error wrapping
//     ctx.Err().
//   - Calling Close again is safe; only the first call that stops waiting
//     releases, and reports what releasing failed.
var ErrClosed = errors.New("sink closed")

// WriteGate is the part of ErrClosed's contract that every sink shares: it
// counts the Writes in progress, refuses new ones once Close has begun, and
// cancels those in progress when Close gives up waiting. The zero value is
// open. A WriteGate must not be copied after first use.
type WriteGate struct {
	mu      sync.Mutex
	closing bool
	n       int           // Writes in progress
	idle    chan struct{} // closed once closing is set and n is 0
	abort   context.Context
	cancel  context.CancelFunc // ends abort: Close gave up waiting
}

// init makes what the zero value lacks; g.mu is held.
func (g *WriteGate) init() {
	if g.idle == nil {
		g.idle = make(chan struct{})
		g.abort, g.cancel = context.WithCancel(context.Background())
	}
}

// Enter registers a Write. It returns the context the Write is to use: ctx,
// ended also when Close gives up waiting; and done, to call once when the
// Write returns. Once Close has begun it returns ErrClosed.
func (g *WriteGate) Enter(ctx context.Context) (_ context.Context, done func(), err error) {
	g.mu.Lock()
	if g.closing {
		g.mu.Unlock()
		return ctx, nil, ErrClosed
	}
	g.init()
	g.n++
	abort := g.abort
	g.mu.Unlock()
	ctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(abort, cancel)
	return ctx, func() {
		stop()
		cancel()
		g.mu.Lock()
		if g.n--; g.n == 0 && g.closing {
			close(g.idle)
		}
		g.mu.Unlock()
	}, nil
}

// Close refuses new Writes and waits for those in progress. When ctx ends
// first, it cancels their contexts and returns an error wrapping ctx.Err()
// at once, without waiting for them to return.
func (g *WriteGate) Close(ctx context.Context) error {
	g.mu.Lock()
	g.init()
	if !g.closing {
		g.closing = true
		if g.n == 0 {
			close(g.idle)
		}
	}
	idle, giveUp := g.idle, g.cancel
	g.mu.Unlock()
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		giveUp()
		return fmt.Errorf("writes still in progress were cancelled: %w", ctx.Err())
	}
}

// Closing reports whether Close has begun.
func (g *WriteGate) Closing() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.closing
}

// InProgress reports how many Writes have entered and not yet returned.
func (g *WriteGate) InProgress() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.n
}
