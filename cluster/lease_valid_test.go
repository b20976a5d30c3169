package cluster

import (
	"context"
	"testing"
	"time"
)

// TestLeaseValidChecksTheClock: a lease whose renewal deadline has passed
// is not valid even before the deadline's timer has cancelled its context,
// as in a process resumed after a pause.
func TestLeaseValidChecksTheClock(t *testing.T) {
	l := newLease(context.Background(), "orders", Token{Member: "a", Epoch: 1}, func(*Lease) {})
	if !l.Valid() {
		t.Fatal("a lease without a deadline is not valid")
	}
	late := &deadline{at: time.Now().Add(-time.Second), t: time.NewTimer(time.Hour)}
	defer late.t.Stop()
	l.dl.Store(late)
	if l.Err() != nil {
		t.Fatal("the context ended")
	}
	if l.Valid() {
		t.Error("a lease past its deadline is valid")
	}
	late.stop() // disarmed by a release: the context decides
	if !l.Valid() {
		t.Error("a stopped deadline makes a live lease invalid")
	}
	l.end(ErrReleased)
	if l.Valid() {
		t.Error("an ended lease is valid")
	}
	ahead := &deadline{at: time.Now().Add(time.Hour), t: time.NewTimer(time.Hour)}
	defer ahead.t.Stop()
	l2 := newLease(context.Background(), "orders", Token{Member: "a", Epoch: 2}, func(*Lease) {})
	l2.dl.Store(ahead)
	if !l2.Valid() {
		t.Error("a lease before its deadline is not valid")
	}
}
