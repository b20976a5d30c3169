package nats

import (
	"context"
	"sync"
)

// order keeps the records of each subject in the order the Writes hand
// them over, even when a publish is lost (a leader change, a dropped
// connection) while later ones would reach the stream, and while other
// publishers (other replicas of the daemon, each with its own subjects)
// write to the same stream.
//
// Every record carries Nats-Expected-Last-Subject-Sequence: the stream
// sequence of the last message the stream holds on the record's subject,
// as the sink last learnt it (from the acknowledgement of the record before
// it on the subject, or by reading the subject's last message). The server
// stores the record only if that message is still the subject's last, so a
// record can land only right after the one it names: when a record is lost,
// a later record on its subject cannot be stored ahead of it. A sequence
// names one message (sequences are never reused), and publishes on other
// subjects do not move a subject's last sequence, so other publishers on
// the stream neither break the chain nor slip in through it. nats-server
// checks this header on a replicated stream at the leader, before it
// proposes the record, and refuses cleanly.
//
// The sequence a record will get is known only from its acknowledgement
// (other publishers take sequences in between), and nats-server refuses a
// fenced record on a replicated stream while another on its subject is
// still being replicated; so one record per subject is in flight at a
// time: each is acknowledged before the next on its subject is sent.
// Records of different subjects, in one Write or in Writes of several
// lanes, are in flight together. A Write holds a subject from its first
// record on it to its last, so Writes of two lanes that share a subject
// never interleave their records there; the second waits.
//
// What the sink knows of a subject is dropped, so that the next record
// first reads the subject's last message, whenever it may be wrong: a
// record failed or was refused (it may still be stored late, or another
// publisher wrote on the subject), an acknowledgement said duplicate (the
// first copy may be newer than what the sink knew), the connection dropped
// (the server may have restarted with less). A failure on a subject fails
// the Write's later records on that subject unsent, so that they are
// resent after it, in order. The sink's own late copies count as other
// publishers, so a fenced record is never resent by the client library (no
// retry on "no responders"): only a Write resends, in order.
type order struct {
	mu sync.Mutex
	// epoch is bumped by forgetAll: a chain's sequence read or learnt in an
	// earlier epoch is not trusted.
	epoch  uint64
	chains map[string]*chain
}

// chain is what the sink knows of one subject.
type chain struct {
	held bool          // a Write publishes on the subject
	wake chan struct{} // closed, and replaced, when held turns false
	refs int           // Writes holding the chain or waiting for it
	// last is the stream sequence of the subject's last message, valid
	// when known and epoch is the order's.
	known bool
	epoch uint64
	last  uint64
}

// maxIdleChains bounds what the sink remembers of subjects no Write is
// using; past it, a released chain is forgotten (its next record reads
// the subject's last message). Record subjects come from configuration,
// but nothing here relies on that.
const maxIdleChains = 4096

func (o *order) init() {
	o.chains = make(map[string]*chain)
}

// acquire waits until no other Write publishes on subject and holds its
// chain until release. It fails only when ctx ends.
func (o *order) acquire(ctx context.Context, subject string) (*chain, error) {
	o.mu.Lock()
	c := o.chains[subject]
	if c == nil {
		c = &chain{wake: make(chan struct{})}
		o.chains[subject] = c
	}
	c.refs++
	for c.held {
		wake := c.wake
		o.mu.Unlock()
		select {
		case <-wake:
		case <-ctx.Done():
			o.mu.Lock()
			c.refs--
			o.dropIdle(subject, c)
			o.mu.Unlock()
			return nil, ctx.Err()
		}
		o.mu.Lock()
	}
	c.held = true
	o.mu.Unlock()
	return c, nil
}

// release lets the next Write publish on subject.
func (o *order) release(subject string, c *chain) {
	o.mu.Lock()
	defer o.mu.Unlock()
	c.held = false
	c.refs--
	close(c.wake)
	c.wake = make(chan struct{})
	o.dropIdle(subject, c)
}

// dropIdle forgets c when no Write uses it and too many chains are
// remembered. o.mu must be held.
func (o *order) dropIdle(subject string, c *chain) {
	if c.refs == 0 && len(o.chains) > maxIdleChains {
		delete(o.chains, subject)
	}
}

// lastSeq returns the stream sequence of the last message on c's subject,
// and whether it is known. Only the holder of c calls it.
func (o *order) lastSeq(c *chain) (uint64, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return c.last, c.known && c.epoch == o.epoch
}

// set records seq as the sequence of the last message on c's subject. Only
// the holder of c calls it.
func (o *order) set(c *chain, seq uint64) {
	o.mu.Lock()
	defer o.mu.Unlock()
	c.known, c.epoch, c.last = true, o.epoch, seq
}

// forget drops what is known of c's subject.
func (o *order) forget(c *chain) {
	o.mu.Lock()
	defer o.mu.Unlock()
	c.known = false
}

// forgetAll drops what is known of every subject; safe to call from any
// goroutine.
func (o *order) forgetAll() {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.epoch++
}
