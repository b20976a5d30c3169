package cluster

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"testing/synctest"
	"time"
)

// Unit tests of the NATS coordinator on a fake bucket and a fake clock.

const syncTTL = 10 * time.Second

type natsCluster struct {
	t       *testing.T
	b       *fakeBucket
	led     *ledger
	streams []string
	members []*member
	conns   map[string]*fakeConn
}

func newNATSCluster(t *testing.T, streams int) *natsCluster {
	return &natsCluster{t: t, b: newFakeBucket(syncTTL), led: &ledger{}, streams: streamNames(streams), conns: map[string]*fakeConn{}}
}

func (nc *natsCluster) add(id string, drain time.Duration) *member {
	cfg := NATSConfig{Name: "test", Member: id, LeaseTTL: syncTTL}
	if err := cfg.check(); err != nil {
		nc.t.Fatal(err)
	}
	conn := nc.b.conn()
	nc.conns[id] = conn
	m := startMember(nc.t, id, newNATS(conn, conn.wg.Wait, cfg), nc.led, nc.streams, drain)
	nc.members = append(nc.members, m)
	return m
}

// checkBucket verifies that each stream's lease in the bucket is held by the
// member whose consumer owns it.
func (nc *natsCluster) checkBucket(ms []*member) {
	nc.t.Helper()
	for _, m := range ms {
		for _, s := range m.ownedStreams() {
			v, ok := nc.b.holder(s)
			if !ok || v.State != stateHeld || v.Member != m.id {
				nc.t.Errorf("stream %s: consumer of %s owns it, the bucket says %+v (present %v)", s, m.id, v, ok)
			}
		}
	}
}

func (nc *natsCluster) stopAll() {
	for _, m := range nc.members {
		_ = m.stop()
	}
}

func TestNATSSettleAndLeave(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nc := newNATSCluster(t, 30)
		a, b, c := nc.add("a", 100*time.Millisecond), nc.add("b", 100*time.Millisecond), nc.add("c", 100*time.Millisecond)
		defer nc.stopAll()
		waitFor(t, time.Minute, 100*time.Millisecond, "3 members settle to 10/10/10", func() bool {
			return settled(nc.members, nc.streams, 10, 10, 10)
		})
		synctest.Wait()
		nc.checkBucket(nc.members)
		for _, m := range nc.members {
			if st := m.c.Status(); !st.Joined || len(st.Members) != 3 || len(st.Owned) != 10 {
				t.Errorf("%s: status %+v", m.id, st)
			}
		}

		// c leaves cleanly: its ten streams go to a and b, each only after
		// c released it, and the new owners say why.
		before := c.ownedStreams()
		revokedBefore := len(c.eventsOf(Revoked))
		start := time.Now()
		if err := c.leave(time.Minute); err != nil {
			t.Fatalf("leave: %v", err)
		}
		waitFor(t, time.Minute, 10*time.Millisecond, "15/15 after c left", func() bool {
			return settled([]*member{a, b}, nc.streams, 15, 15)
		})
		if took := time.Since(start); took > 2*time.Second {
			t.Errorf("handover of c's streams took %v", took)
		}
		for _, ev := range c.eventsOf(Revoked)[revokedBefore:] {
			if ev.Reason != ReasonShutdown {
				t.Errorf("c: %v", ev)
			}
		}
		var taken []Event
		for _, m := range []*member{a, b} {
			for _, ev := range m.eventsOf(Assigned) {
				if slices.Contains(before, ev.Stream()) && ev.Reason == ReasonShutdown {
					taken = append(taken, ev)
				}
			}
		}
		if got := streamSet(taken); !slices.Equal(got, before) {
			t.Errorf("streams taken with reason shutdown %v, want c's %v", got, before)
		}
		if st := a.c.Status(); len(st.Members) != 2 {
			t.Errorf("a sees members %+v after c left", st.Members)
		}
		nc.led.checkNoOverlap(t, 0)
		nc.checkBucket([]*member{a, b})
	})
}

// TestNATSJoinMovesOnlyWhatBalanceNeeds: a third member joining 15/15 takes
// five from each, and nothing else moves.
func TestNATSJoinMovesOnlyWhatBalanceNeeds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nc := newNATSCluster(t, 30)
		a, b := nc.add("a", time.Second), nc.add("b", time.Second)
		defer nc.stopAll()
		waitFor(t, time.Minute, 100*time.Millisecond, "15/15", func() bool {
			return settled([]*member{a, b}, nc.streams, 15, 15)
		})
		aBefore, bBefore := a.ownedStreams(), b.ownedStreams()
		revA, revB := len(a.eventsOf(Revoked)), len(b.eventsOf(Revoked))
		c := nc.add("c", time.Second)
		waitFor(t, time.Minute, 100*time.Millisecond, "10/10/10", func() bool {
			return settled(nc.members, nc.streams, 10, 10, 10)
		})
		synctest.Wait()
		if n := len(a.eventsOf(Revoked)) - revA; n != 5 {
			t.Errorf("a revoked %d streams, want 5", n)
		}
		if n := len(b.eventsOf(Revoked)) - revB; n != 5 {
			t.Errorf("b revoked %d streams, want 5", n)
		}
		for _, s := range a.ownedStreams() {
			if !slices.Contains(aBefore, s) {
				t.Errorf("a gained %s", s)
			}
		}
		for _, s := range b.ownedStreams() {
			if !slices.Contains(bBefore, s) {
				t.Errorf("b gained %s", s)
			}
		}
		for _, ev := range c.eventsOf(Assigned) {
			if ev.Reason != ReasonRebalance {
				t.Errorf("c: %v", ev)
			}
		}
		// The drain took a second: c started each stream only after its
		// old owner released it.
		nc.led.checkNoOverlap(t, 0)
	})
}

// TestNATSSilentMember: a member cut off from the server keeps renewing
// nothing; its leases end on its own clock a TTL after their last renewal,
// and only then do the others take them, with reason failover. Back on the
// network it learns it lost them and gets a fair share again.
func TestNATSSilentMember(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nc := newNATSCluster(t, 30)
		a, b, c := nc.add("a", 0), nc.add("b", 0), nc.add("c", 0)
		defer nc.stopAll()
		waitFor(t, time.Minute, 100*time.Millisecond, "10/10/10", func() bool {
			return settled(nc.members, nc.streams, 10, 10, 10)
		})
		synctest.Wait()
		lost := c.ownedStreams()
		cut := time.Now()
		nc.conns["c"].cut()
		waitFor(t, 3*syncTTL, 100*time.Millisecond, "a and b take c's streams", func() bool {
			return settled([]*member{a, b}, nc.streams, 15, 15)
		})
		if took := time.Since(cut); took > syncTTL+2*time.Second {
			t.Errorf("failover took %v, lease TTL %v", took, syncTTL)
		}
		if n := c.ownedCount(); n != 0 {
			t.Errorf("cut-off c still owns %d streams", n)
		}
		gotLost := c.eventsOf(Lost)
		if s := streamSet(gotLost); !slices.Equal(s, lost) {
			t.Errorf("c lost %v, want %v", s, lost)
		}
		for _, ev := range gotLost {
			if ev.Reason != ReasonExpired || !errors.Is(ev.Lease.Err(), ErrExpired) {
				t.Errorf("c: %v, lease error %v", ev, ev.Lease.Err())
			}
		}
		failovers := 0
		for _, m := range []*member{a, b} {
			failovers += reasonsOf(m.eventsOf(Assigned))[ReasonFailover]
		}
		if failovers != len(lost) {
			t.Errorf("%d failovers, want %d", failovers, len(lost))
		}
		nc.led.checkNoOverlap(t, 0)

		nc.conns["c"].heal()
		waitFor(t, 3*syncTTL, 100*time.Millisecond, "c back to a fair share", func() bool {
			return settled(nc.members, nc.streams, 10, 10, 10)
		})
		nc.led.checkNoOverlap(t, 0)
		nc.checkBucket(nc.members)
	})
}

// TestNATSConcurrentJoins: five members start at the same instant.
func TestNATSConcurrentJoins(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nc := newNATSCluster(t, 47)
		for i := range 5 {
			nc.add(fmt.Sprintf("m%d", i), 200*time.Millisecond)
		}
		defer nc.stopAll()
		waitFor(t, time.Minute, 100*time.Millisecond, "balanced", func() bool {
			return balancedCounts(nc.members, nc.streams)
		})
		synctest.Wait()
		nc.led.checkNoOverlap(t, 0)
		nc.checkBucket(nc.members)
	})
}

// TestNATSSlowDrain: the new owner waits however long the old owner drains.
func TestNATSSlowDrain(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nc := newNATSCluster(t, 4)
		a := nc.add("a", 25*time.Second) // longer than the lease TTL: renewals continue
		defer nc.stopAll()
		waitFor(t, time.Minute, 100*time.Millisecond, "a owns all", func() bool { return a.ownedCount() == 4 })
		b := nc.add("b", 0)
		time.Sleep(20 * time.Second)
		if n := b.ownedCount(); n != 0 {
			t.Fatalf("b owns %d streams while a is still draining", n)
		}
		waitFor(t, time.Minute, 100*time.Millisecond, "2/2", func() bool {
			return settled(nc.members, nc.streams, 2, 2)
		})
		if n := len(a.eventsOf(Lost)); n != 0 {
			t.Errorf("a lost %d streams while draining", n)
		}
		nc.led.checkNoOverlap(t, 0)
	})
}

// TestNATSLostWhileDraining: a member cut off in the middle of a handover
// loses the streams it was draining (no release), and the new owner takes
// them only after the lease expired.
func TestNATSLostWhileDraining(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nc := newNATSCluster(t, 6)
		a := nc.add("a", 0)
		defer nc.stopAll()
		waitFor(t, time.Minute, 100*time.Millisecond, "a owns all", func() bool { return a.ownedCount() == 6 })
		a.mu.Lock()
		a.hold = true
		a.mu.Unlock()
		b := nc.add("b", 0)
		waitFor(t, time.Minute, 10*time.Millisecond, "a revokes three", func() bool { return len(a.eventsOf(Revoked)) == 3 })
		nc.conns["a"].cut()
		waitFor(t, 3*syncTTL, 100*time.Millisecond, "b owns all", func() bool { return b.ownedCount() == 6 })
		if n := len(a.eventsOf(Lost)); n != 6 {
			t.Errorf("a lost %d streams, want 6", n)
		}
		nc.led.checkNoOverlap(t, 0)
	})
}

// TestNATSStreamSetChanges: streams added go to the least loaded member,
// streams removed are revoked with reason removed, and a stream only one
// member lists goes to that member.
func TestNATSStreamSetChanges(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nc := newNATSCluster(t, 10)
		a, b := nc.add("a", 0), nc.add("b", 0)
		defer nc.stopAll()
		waitFor(t, time.Minute, 100*time.Millisecond, "5/5", func() bool { return settled(nc.members, nc.streams, 5, 5) })
		smaller := nc.streams[:8]
		for _, m := range nc.members {
			if err := m.c.SetStreams(smaller); err != nil {
				t.Fatal(err)
			}
		}
		waitFor(t, time.Minute, 100*time.Millisecond, "4/4", func() bool { return settled(nc.members, smaller, 4, 4) })
		var removed []Event
		for _, m := range nc.members {
			for _, ev := range m.eventsOf(Revoked) {
				if ev.Reason == ReasonRemoved {
					removed = append(removed, ev)
				}
			}
		}
		// A member that still lists a stream another one dropped may take it
		// over before dropping it in turn; only the two dropped streams are
		// ever revoked as removed.
		if got := streamSet(removed); !slices.Equal(got, nc.streams[8:]) {
			t.Errorf("streams revoked as removed: %v, want %v", got, nc.streams[8:])
		}
		// Only a lists "only-a".
		if err := a.c.SetStreams(append(slices.Clone(smaller), "only-a")); err != nil {
			t.Fatal(err)
		}
		waitFor(t, time.Minute, 100*time.Millisecond, "a runs only-a", func() bool {
			return slices.Contains(a.ownedStreams(), "only-a")
		})
		synctest.Wait()
		if slices.Contains(b.ownedStreams(), "only-a") {
			t.Error("b owns a stream it does not list")
		}
		if err := a.c.SetStreams([]string{"Bad"}); err == nil {
			t.Error("an invalid stream name was accepted")
		}
		nc.led.checkNoOverlap(t, 0)
	})
}

// TestNATSMemberConflict: a second live replica with the same member id is
// an error for Run, not two owners.
func TestNATSMemberConflict(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nc := newNATSCluster(t, 4)
		a1 := nc.add("a", 0)
		waitFor(t, time.Minute, 100*time.Millisecond, "a owns all", func() bool { return a1.ownedCount() == 4 })
		a2 := nc.add("a", 0)
		var err1, err2 error
		waitFor(t, time.Minute, 100*time.Millisecond, "a replica reports the conflict", func() bool {
			select {
			case err1 = <-a1.runErr:
				a1.runErr <- err1
				return true
			case err2 = <-a2.runErr:
				a2.runErr <- err2
				return true
			default:
				return false
			}
		})
		if !errors.Is(err1, ErrMemberConflict) && !errors.Is(err2, ErrMemberConflict) {
			t.Errorf("Run errors %v, %v; want ErrMemberConflict", err1, err2)
		}
		nc.stopAll()
		nc.led.checkNoOverlap(t, 0)
	})
}

// TestNATSRestartSameMember: a replica that dies and comes back under the
// same member id (a StatefulSet pod) waits for its old leases to expire
// rather than trusting them.
func TestNATSRestartSameMember(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nc := newNATSCluster(t, 4)
		a := nc.add("a", 0)
		waitFor(t, time.Minute, 100*time.Millisecond, "a owns all", func() bool { return a.ownedCount() == 4 })
		nc.conns["a"].cut() // dies: nothing more reaches the server
		_ = a.stop()
		died := time.Now()
		a2 := nc.add("a", 0)
		defer nc.stopAll()
		waitFor(t, 3*syncTTL, 100*time.Millisecond, "the new a owns all", func() bool { return a2.ownedCount() == 4 })
		if took := time.Since(died); took < syncTTL-nc.members[0].c.(*NATS).cfg.Heartbeat {
			t.Errorf("the restarted member took the old leases after %v, before they could have expired", took)
		}
		if r := reasonsOf(a2.eventsOf(Assigned)); r[ReasonFailover] != 4 {
			t.Errorf("reasons %v, want 4 failovers", r)
		}
		nc.led.checkNoOverlap(t, 0)
	})
}

// TestNATSCost: in a settled cluster each member renews its member key and
// each of its leases once per heartbeat, and nothing else.
func TestNATSCost(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nc := newNATSCluster(t, 300)
		for i := range 3 {
			nc.add(fmt.Sprintf("m%d", i), 0)
		}
		defer nc.stopAll()
		waitFor(t, time.Minute, 100*time.Millisecond, "settled", func() bool { return balancedCounts(nc.members, nc.streams) })
		time.Sleep(syncTTL)
		synctest.Wait()
		before := nc.b.opCount()
		time.Sleep(10 * syncTTL)
		synctest.Wait()
		perSecond := float64(nc.b.opCount()-before) / (10 * syncTTL).Seconds()
		hb := nc.members[0].c.(*NATS).cfg.Heartbeat.Seconds()
		want := (300 + 3) / hb
		if perSecond > want*1.05 || perSecond < want*0.95 {
			t.Errorf("%.1f requests/s in steady state, want about %.1f", perSecond, want)
		}
	})
}
