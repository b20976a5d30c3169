package cluster

import (
	"fmt"
	"slices"
	"testing"
	"testing/synctest"
	"time"
)

// Unit tests of the Kafka coordinator on a fake group coordinator and a
// fake clock.

type kafkaCluster struct {
	t       *testing.T
	g       *fakeGroup
	led     *ledger
	streams []string
	members []*member
	conns   map[string]*fakeGroupConn
}

func newKafkaCluster(t *testing.T, streams int) *kafkaCluster {
	return &kafkaCluster{t: t, g: newFakeGroup(), led: &ledger{}, streams: streamNames(streams), conns: map[string]*fakeGroupConn{}}
}

func (kc *kafkaCluster) add(id string, drain time.Duration) *member {
	cfg := KafkaConfig{Name: "test", Member: id, LeaseTTL: syncTTL}
	if err := cfg.check(); err != nil {
		kc.t.Fatal(err)
	}
	conn := kc.g.conn()
	kc.conns[id] = conn
	m := startMember(kc.t, id, newKafka(conn, cfg), kc.led, kc.streams, drain)
	kc.members = append(kc.members, m)
	return m
}

func (kc *kafkaCluster) stopAll() {
	for _, m := range kc.members {
		_ = m.stop()
	}
}

func TestKafkaSettleAndLeave(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		kc := newKafkaCluster(t, 30)
		a, b, c := kc.add("a", 100*time.Millisecond), kc.add("b", 100*time.Millisecond), kc.add("c", 100*time.Millisecond)
		defer kc.stopAll()
		waitFor(t, time.Minute, 100*time.Millisecond, "10/10/10", func() bool {
			return settled(kc.members, kc.streams, 10, 10, 10)
		})
		synctest.Wait()
		for _, m := range kc.members {
			st := m.c.Status()
			if !st.Joined || len(st.Members) != 3 || len(st.Owned) != 10 {
				t.Errorf("%s: status %+v", m.id, st)
			}
		}
		gone := c.ownedStreams()
		revokedBefore := len(c.eventsOf(Revoked))
		start := time.Now()
		if err := c.leave(time.Minute); err != nil {
			t.Fatalf("leave: %v", err)
		}
		waitFor(t, time.Minute, 10*time.Millisecond, "15/15", func() bool {
			return settled([]*member{a, b}, kc.streams, 15, 15)
		})
		if took := time.Since(start); took > 2*time.Second {
			t.Errorf("handover took %v", took)
		}
		for _, ev := range c.eventsOf(Revoked)[revokedBefore:] {
			if ev.Reason != ReasonShutdown {
				t.Errorf("c: %v", ev)
			}
		}
		var taken []Event
		for _, m := range []*member{a, b} {
			for _, ev := range m.eventsOf(Assigned) {
				if slices.Contains(gone, ev.Stream()) && ev.Reason == ReasonShutdown {
					taken = append(taken, ev)
				}
			}
		}
		if got := streamSet(taken); !slices.Equal(got, gone) {
			t.Errorf("streams taken with reason shutdown %v, want %v", got, gone)
		}
		waitFor(t, syncTTL, 100*time.Millisecond, "a sees two members", func() bool {
			return len(a.c.Status().Members) == 2
		})
		kc.led.checkNoOverlap(t, 0)
	})
}

func TestKafkaJoinMovesOnlyWhatBalanceNeeds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		kc := newKafkaCluster(t, 30)
		a, b := kc.add("a", time.Second), kc.add("b", time.Second)
		defer kc.stopAll()
		waitFor(t, time.Minute, 100*time.Millisecond, "15/15", func() bool {
			return settled([]*member{a, b}, kc.streams, 15, 15)
		})
		synctest.Wait()
		revA, revB := len(a.eventsOf(Revoked)), len(b.eventsOf(Revoked))
		c := kc.add("c", time.Second)
		waitFor(t, time.Minute, 100*time.Millisecond, "10/10/10", func() bool {
			return settled(kc.members, kc.streams, 10, 10, 10)
		})
		synctest.Wait()
		if n := len(a.eventsOf(Revoked)) - revA; n != 5 {
			t.Errorf("a revoked %d, want 5", n)
		}
		if n := len(b.eventsOf(Revoked)) - revB; n != 5 {
			t.Errorf("b revoked %d, want 5", n)
		}
		for _, ev := range c.eventsOf(Assigned) {
			if ev.Reason != ReasonRebalance {
				t.Errorf("c: %v", ev)
			}
		}
		kc.led.checkNoOverlap(t, 0)
	})
}

// TestKafkaSilentMember: heartbeat loss. The silent member's leases end on
// its own clock a session timeout after its last confirmed heartbeat; the
// coordinator drops it no earlier, and only then do the others get its
// streams (failover). Back, it learns from the coordinator that it is gone.
func TestKafkaSilentMember(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		kc := newKafkaCluster(t, 30)
		a, b, c := kc.add("a", 0), kc.add("b", 0), kc.add("c", 0)
		defer kc.stopAll()
		waitFor(t, time.Minute, 100*time.Millisecond, "10/10/10", func() bool {
			return settled(kc.members, kc.streams, 10, 10, 10)
		})
		synctest.Wait()
		lost := c.ownedStreams()
		cut := time.Now()
		kc.conns["c"].cut()
		waitFor(t, 3*syncTTL, 100*time.Millisecond, "a and b take c's streams", func() bool {
			return settled([]*member{a, b}, kc.streams, 15, 15)
		})
		if took := time.Since(cut); took > syncTTL+2*time.Second {
			t.Errorf("failover took %v", took)
		}
		synctest.Wait()
		if got := streamSet(c.eventsOf(Lost)); !slices.Equal(got, lost) {
			t.Errorf("c lost %v, want %v", got, lost)
		}
		for _, ev := range c.eventsOf(Lost) {
			if ev.Reason != ReasonExpired {
				t.Errorf("c: %v", ev)
			}
		}
		failovers := 0
		for _, m := range []*member{a, b} {
			failovers += reasonsOf(m.eventsOf(Assigned))[ReasonFailover]
		}
		if failovers != 10 {
			t.Errorf("%d failovers, want 10", failovers)
		}
		kc.led.checkNoOverlap(t, 0)
		kc.conns["c"].heal()
		waitFor(t, 3*syncTTL, 100*time.Millisecond, "10/10/10 again", func() bool {
			return settled(kc.members, kc.streams, 10, 10, 10)
		})
		kc.led.checkNoOverlap(t, 0)
	})
}

// TestKafkaLeaderDiesDuringRebalance: the leader joins, then dies before it
// sends SyncGroup. The coordinator drops it after the rebalance timeout, the
// others rejoin under a new leader and take its streams, no earlier than its
// own clock ended its leases.
func TestKafkaLeaderDiesDuringRebalance(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		kc := newKafkaCluster(t, 30)
		a, b, c := kc.add("a", 0), kc.add("b", 0), kc.add("c", 0)
		defer kc.stopAll()
		waitFor(t, time.Minute, 100*time.Millisecond, "10/10/10", func() bool {
			return settled(kc.members, kc.streams, 10, 10, 10)
		})
		synctest.Wait()
		byID := map[string]*member{}
		for id, conn := range kc.conns {
			byID[conn.memberID] = map[string]*member{"a": a, "b": b, "c": c}[id]
		}
		leader := byID[kc.g.leaderID()]
		if leader == nil {
			t.Fatalf("no member is the leader %q", kc.g.leaderID())
		}
		lconn := kc.conns[leader.id]
		lconn.mu.Lock()
		lconn.onSync = func() { lconn.cut() } // dies between join and sync
		lconn.mu.Unlock()
		var rest []*member
		for _, m := range kc.members {
			if m != leader {
				rest = append(rest, m)
			}
		}
		// A new stream set triggers a rebalance.
		more := streamNames(32)
		kc.streams = more
		for _, m := range kc.members {
			if err := m.c.SetStreams(more); err != nil {
				t.Fatal(err)
			}
		}
		waitFor(t, 4*syncTTL, 100*time.Millisecond, "the other two own everything", func() bool {
			return settled(rest, more, 16, 16)
		})
		synctest.Wait()
		if kc.g.leaderID() == leader.c.(*Kafka).hbTargetID() {
			t.Error("the dead leader is still the leader")
		}
		if n := len(leader.eventsOf(Lost)); n != 10 {
			t.Errorf("the dead leader lost %d streams, want 10", n)
		}
		kc.led.checkNoOverlap(t, 0)
	})
}

func TestKafkaConcurrentJoins(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		kc := newKafkaCluster(t, 47)
		for i := range 5 {
			kc.add(fmt.Sprintf("m%d", i), 200*time.Millisecond)
		}
		defer kc.stopAll()
		waitFor(t, time.Minute, 100*time.Millisecond, "balanced", func() bool {
			return balancedCounts(kc.members, kc.streams)
		})
		synctest.Wait()
		kc.led.checkNoOverlap(t, 0)
	})
}

// TestKafkaSlowDrain: the follow-up rebalance waits for the release however
// long the drain takes.
func TestKafkaSlowDrain(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		kc := newKafkaCluster(t, 4)
		a := kc.add("a", 25*time.Second)
		defer kc.stopAll()
		waitFor(t, time.Minute, 100*time.Millisecond, "a owns all", func() bool { return a.ownedCount() == 4 })
		b := kc.add("b", 0)
		time.Sleep(20 * time.Second)
		if n := b.ownedCount(); n != 0 {
			t.Fatalf("b owns %d streams while a is draining", n)
		}
		waitFor(t, time.Minute, 100*time.Millisecond, "2/2", func() bool { return settled(kc.members, kc.streams, 2, 2) })
		if n := len(a.eventsOf(Lost)); n != 0 {
			t.Errorf("a lost %d streams while draining", n)
		}
		kc.led.checkNoOverlap(t, 0)
	})
}

func TestKafkaStreamSetChanges(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		kc := newKafkaCluster(t, 10)
		a, b := kc.add("a", 0), kc.add("b", 0)
		defer kc.stopAll()
		waitFor(t, time.Minute, 100*time.Millisecond, "5/5", func() bool { return settled(kc.members, kc.streams, 5, 5) })
		smaller := kc.streams[:8]
		for _, m := range kc.members {
			if err := m.c.SetStreams(smaller); err != nil {
				t.Fatal(err)
			}
		}
		waitFor(t, time.Minute, 100*time.Millisecond, "4/4", func() bool { return settled(kc.members, smaller, 4, 4) })
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
		kc.led.checkNoOverlap(t, 0)
	})
}

// TestKafkaCost: in a settled group only heartbeats reach the coordinator.
func TestKafkaCost(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		kc := newKafkaCluster(t, 300)
		for i := range 3 {
			kc.add(fmt.Sprintf("m%d", i), 0)
		}
		defer kc.stopAll()
		waitFor(t, time.Minute, 100*time.Millisecond, "settled", func() bool { return balancedCounts(kc.members, kc.streams) })
		time.Sleep(syncTTL)
		synctest.Wait()
		before := kc.g.requestCounts()
		time.Sleep(10 * syncTTL)
		synctest.Wait()
		after := kc.g.requestCounts()
		hb := kc.members[0].c.(*Kafka).cfg.Heartbeat
		want := 3 * int(10*syncTTL/hb)
		if got := after["heartbeat"] - before["heartbeat"]; got < want-3 || got > want+3 {
			t.Errorf("%d heartbeats in %v, want about %d", got, 10*syncTTL, want)
		}
		for _, k := range []string{"join", "sync", "leave"} {
			if after[k] != before[k] {
				t.Errorf("%d %s requests in a settled group", after[k]-before[k], k)
			}
		}
	})
}
