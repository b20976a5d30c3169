package nats

import (
	"context"
	"sync"
)

// order keeps the records of each subject in the stream in the order the
// Writes hand them over, even when a publish in the middle of a pipelined
// batch is lost (a leader change, a dropped connection) while later ones
// reach the stream.
//
// While the chain is whole, Writes publish asynchronously, one Write at a
// time onto the connection, and every record names the record the stream
// must hold last for it to be stored: Nats-Expected-Last-Msg-Id, the
// Nats-Msg-Id of the record published just before it; or, after a record
// without a MsgID and for the first record once the chain is restored,
// Nats-Expected-Last-Sequence, its predicted sequence. The server checks
// these in the order it stores, so when a record is lost every record
// published after it is refused instead of being stored ahead of it; they
// fail, and are resent.
//
// A replicated stream gets Nats-Expected-Last-Sequence only. Its leader
// checks that before it proposes the record to the replicated log, but it
// checks Nats-Expected-Last-Msg-Id only when each replica applies the log:
// a mismatch there (a record lost in a leader change, another publisher) is
// a write error on every replica at once, which steps them all down and
// leaves the stream without a leader until its servers restart. A sequence
// names a slot, not a record, so on a replicated stream another publisher
// whose message takes the slot of a refused record lets the records after
// it through: there, the order holds only while the sink is the stream's
// only publisher on its subjects. The sink's own late copies count as
// other publishers, so a fenced record is never resent by the client
// library (no retry on "no responders"): only a Write resends, in order.
//
// Anything unexpected breaks the chain: a failed or refused record, an
// acknowledgement with another sequence than predicted (a duplicate, another
// publisher on the stream), a disconnect. The next Write then waits until no
// pipelined Write is in flight, publishes its records one at a time, each
// acknowledged before the next is sent, and stops at the first failure; once
// one such Write succeeds whole, the sink reads the stream's last sequence
// and pipelines again. A stream that other publishers write to at the same
// time therefore costs throughput, never order.
type order struct {
	mu     sync.Mutex
	broken bool
	serial bool // a one-at-a-time Write is in progress
	busy   int  // pipelined Writes in flight
	// wake is closed, and replaced, whenever broken, serial or busy change
	// in a way that may let a waiting Write go.
	wake   chan struct{}
	last   uint64 // predicted stream sequence of the last record sent
	lastID string // its Nats-Msg-Id, "" when it had none
	// seqOnly: fence with sequences only (a replicated stream).
	seqOnly bool
}

// fence is what a record requires of the stream to be stored.
type fence struct {
	id  string // Nats-Expected-Last-Msg-Id, when not ""
	seq uint64 // otherwise Nats-Expected-Last-Sequence
}

func (o *order) init() {
	o.broken = true // the last sequence is not known yet
	o.wake = make(chan struct{})
}

// start begins the chain on a stream whose last sequence is last, before
// anything was published; replicas is the stream's number of replicas.
func (o *order) start(last uint64, replicas int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.broken, o.last, o.lastID = false, last, ""
	o.seqOnly = replicas > 1
}

// breakChain marks the predictions wrong; safe to call from any goroutine.
func (o *order) breakChain() {
	o.mu.Lock()
	o.broken = true
	o.mu.Unlock()
}

func (o *order) signal() {
	close(o.wake)
	o.wake = make(chan struct{})
}

// mode is how a Write publishes.
type mode int

const (
	pipelined mode = iota // with predicted sequences; o.mu is held on return
	oneByOne              // each record acknowledged before the next
)

// enter waits until the Write may publish and returns how. With pipelined,
// o.mu is held: the caller publishes, then calls sent. With oneByOne the
// caller publishes, then calls leaveSerial. It fails only when ctx ends.
func (o *order) enter(ctx context.Context) (mode, error) {
	o.mu.Lock()
	for {
		switch {
		case !o.broken && !o.serial:
			o.busy++
			return pipelined, nil
		case o.broken && !o.serial && o.busy == 0:
			o.serial = true
			o.mu.Unlock()
			return oneByOne, nil
		}
		wake := o.wake
		o.mu.Unlock()
		select {
		case <-wake:
		case <-ctx.Done():
			return 0, ctx.Err()
		}
		o.mu.Lock()
	}
}

// predict returns the fence of the next record, whose Nats-Msg-Id is id,
// and the sequence it is predicted to get. o.mu must be held.
func (o *order) predict(id string) (fence, uint64) {
	f := fence{id: o.lastID, seq: o.last}
	o.last++
	if !o.seqOnly {
		o.lastID = id
	}
	return f, o.last
}

// sent releases o.mu after a pipelined Write has published.
func (o *order) sent() { o.mu.Unlock() }

// leavePipelined ends a pipelined Write; ok reports whether every record
// was stored at its predicted sequence.
func (o *order) leavePipelined(ok bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.busy--
	if !ok {
		o.broken = true
	}
	if o.busy == 0 && o.broken {
		o.signal()
	}
}

// leaveSerial ends a one-at-a-time Write. When it succeeded whole, last is
// the stream's last sequence read afterwards (with nothing else in flight)
// and known says whether it could be read; the chain is then restored.
func (o *order) leaveSerial(ok, known bool, last uint64) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.serial = false
	if ok && known {
		o.broken = false
		o.last, o.lastID = last, ""
	}
	o.signal()
}
