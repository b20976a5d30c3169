package cluster

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// Lease is this member's ownership of one stream, from an Assigned event
// until it is released or lost.
//
// Its context is cancelled, with the reason as its cause, the moment the
// ownership ends: when the coordinator could not renew it in time (a timer
// of its own fires at the renewal deadline, whatever else the coordinator is
// doing), when the broker says it belongs to someone else, after Release, or
// when Run returns. A lane that runs with this context, and checks Err
// before each publish and each checkpoint save, stops before another member
// may start the stream.
type Lease struct {
	stream  string
	token   Token
	ctx     context.Context
	cancel  context.CancelCauseFunc
	release func(*Lease)
	done    atomic.Bool
	// dl is the renewal deadline the lease's context is cancelled at.
	dl atomic.Pointer[deadline]
}

func newLease(parent context.Context, stream string, tok Token, release func(*Lease)) *Lease {
	ctx, cancel := context.WithCancelCause(parent)
	return &Lease{stream: stream, token: tok, ctx: ctx, cancel: cancel, release: release}
}

// Stream is the stream this lease is for.
func (l *Lease) Stream() string { return l.stream }

// Token identifies this ownership; record it with every checkpoint saved
// under the lease.
func (l *Lease) Token() Token { return l.token }

// Context is cancelled when the lease ends; context.Cause says why
// ([ErrExpired], [ErrFenced], [ErrReleased], [ErrStopped]).
func (l *Lease) Context() context.Context { return l.ctx }

// Err is nil while the lease is valid, and why it ended afterwards.
func (l *Lease) Err() error {
	if l.ctx.Err() == nil {
		return nil
	}
	return context.Cause(l.ctx)
}

// Valid reports whether the lease is valid now: its context is not
// cancelled, and its renewal deadline has not passed on this member's
// clock. It differs from Err == nil only in the moments after the deadline
// passed and before the deadline's timer has cancelled the context, as
// right after a paused process is resumed (SIGCONT), when its other
// goroutines may run before that timer does. Check it before each publish
// and each checkpoint save.
func (l *Lease) Valid() bool {
	if l.ctx.Err() != nil {
		return false
	}
	d := l.dl.Load()
	return d == nil || d.valid(time.Now())
}

// Release gives the stream up. After a Revoked event it completes the
// handover: call it once the lane has stopped reading, its in-flight events
// are acknowledged and its checkpoint is saved. Only then may the next owner
// start. Calling it again, or after the lease was lost, does nothing.
func (l *Lease) Release() {
	if l.done.CompareAndSwap(false, true) {
		l.release(l)
	}
}

// end cancels the lease's context with cause; it reports whether this call
// ended it.
func (l *Lease) end(cause error) bool {
	if l.ctx.Err() != nil {
		return false
	}
	l.cancel(cause)
	return true
}

// validFor is how long after the send time of its last confirmed renewal a
// lease stays valid on its holder's clock: the TTL less a twentieth. The
// server (or the group coordinator) counts the TTL from when it received the
// renewal, which is later, so the holder always stops before anybody else
// may start, with a margin for a timer that fires late.
func validFor(ttl time.Duration) time.Duration { return ttl - ttl/20 }

// deadline cancels something when a moving deadline passes. Renewals push
// the deadline forward; the timer fires on its own, so a coordinator loop
// that is stuck in a broker call cannot keep an expired lease alive.
type deadline struct {
	mu    sync.Mutex
	at    time.Time
	t     *time.Timer
	fired bool
	// stopped: disarmed by stop, not expired.
	stopped bool
}

// startDeadline calls fire once, from a timer, when at has passed without a
// later extend.
func startDeadline(at time.Time, fire func()) *deadline {
	d := &deadline{at: at}
	d.t = time.AfterFunc(time.Until(at), func() {
		d.mu.Lock()
		if d.fired || time.Now().Before(d.at) {
			// A late timer after an extend that could not stop it; the
			// extend armed it again.
			d.mu.Unlock()
			return
		}
		d.fired = true
		d.mu.Unlock()
		fire()
	})
	return d
}

// extend moves the deadline to at when that is later; it reports false when
// the deadline has already fired.
func (d *deadline) extend(at time.Time) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.fired {
		return false
	}
	if at.After(d.at) {
		d.at = at
		d.t.Reset(time.Until(at))
	}
	return true
}

// valid reports whether now is before the deadline (a deadline stopped for
// good after a release counts as valid: the lease's context says the rest).
func (d *deadline) valid(now time.Time) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.stopped || now.Before(d.at)
}

// stop disarms the deadline for good.
func (d *deadline) stop() {
	d.mu.Lock()
	if !d.fired {
		d.stopped = true
	}
	d.fired = true
	d.mu.Unlock()
	d.t.Stop()
}

// queue delivers events to the consumer in order without ever blocking the
// coordinator: a slow consumer must not delay a lease renewal.
type queue struct {
	mu    sync.Mutex
	items []Event
	wake  chan struct{}
	out   chan Event
}

func newQueue() *queue {
	return &queue{wake: make(chan struct{}, 1), out: make(chan Event)}
}

// push queues Assigned and Revoked events for leases that have not ended:
// once a lease ended (and its Lost event is queued), nothing more is said
// about it.
func (q *queue) push(evs ...Event) {
	if len(evs) == 0 {
		return
	}
	q.mu.Lock()
	for _, ev := range evs {
		if ev.Lease.ctx.Err() == nil {
			q.items = append(q.items, ev)
		}
	}
	q.mu.Unlock()
	q.ring()
}

// lose ends l with cause and queues its Lost event, atomically with respect
// to push; it reports false when l had already ended.
func (q *queue) lose(l *Lease, cause error, reason Reason) bool {
	q.mu.Lock()
	ended := l.end(cause)
	if ended {
		q.items = append(q.items, Event{Kind: Lost, Lease: l, Reason: reason})
	}
	q.mu.Unlock()
	q.ring()
	return ended
}

func (q *queue) ring() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// forward hands queued events to the consumer until stop is closed, then
// closes the output channel.
func (q *queue) forward(stop <-chan struct{}) {
	defer close(q.out)
	for {
		q.mu.Lock()
		var ev Event
		ok := len(q.items) > 0
		if ok {
			ev = q.items[0]
			q.items[0] = Event{}
			q.items = q.items[1:]
		}
		q.mu.Unlock()
		if !ok {
			select {
			case <-q.wake:
				continue
			case <-stop:
				return
			}
		}
		select {
		case q.out <- ev:
		case <-stop:
			return
		}
	}
}

// wakeup is a one-slot doorbell.
type wakeup chan struct{}

func (w wakeup) ring() {
	select {
	case w <- struct{}{}:
	default:
	}
}
