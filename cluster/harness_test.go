package cluster

import (
	"context"
	"errors"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"
)

// span is one ownership of one stream by one member, as the consumer saw it:
// from the Assigned event until the lane stopped (just before Release after a
// revocation, or the moment the lease's context ended when lost).
type span struct {
	member string
	stream string
	token  Token
	reason Reason
	start  time.Time
	end    time.Time // zero while open
	lost   bool
}

// ledger records every span of every member of one test cluster.
type ledger struct {
	mu    sync.Mutex
	spans []*span
}

func (l *ledger) open(member string, ev Event) *span {
	s := &span{member: member, stream: ev.Stream(), token: ev.Lease.Token(), reason: ev.Reason, start: time.Now()}
	l.mu.Lock()
	l.spans = append(l.spans, s)
	l.mu.Unlock()
	return s
}

func (l *ledger) close(s *span, lost bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if s.end.IsZero() {
		s.end = time.Now()
		s.lost = lost
	}
}

func (l *ledger) all() []span {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]span, len(l.spans))
	for i, s := range l.spans {
		out[i] = *s
	}
	return out
}

// checkNoOverlap fails when two members owned a stream at the same time:
// a span must start at or after the end of the previous one, give or take
// slack (0 under synctest).
func (l *ledger) checkNoOverlap(t *testing.T, slack time.Duration) {
	t.Helper()
	by := map[string][]span{}
	for _, s := range l.all() {
		by[s.stream] = append(by[s.stream], s)
	}
	for stream, ss := range by {
		sort.Slice(ss, func(i, j int) bool { return ss[i].start.Before(ss[j].start) })
		for i := 1; i < len(ss); i++ {
			prev, cur := ss[i-1], ss[i]
			if prev.end.IsZero() {
				t.Errorf("stream %s: %s started at %v while %s still owned it (since %v)", stream, cur.member, cur.start, prev.member, prev.start)
				continue
			}
			if cur.start.Add(slack).Before(prev.end) {
				t.Errorf("stream %s: %s started at %v, %v before %s stopped (lost=%v)", stream, cur.member, cur.start, prev.end.Sub(cur.start), prev.member, prev.lost)
			}
		}
	}
}

// member drives one Coordinator the way the daemon does: it starts a "lane"
// on Assigned, drains for a while then releases on Revoked, stops at once on
// Lost.
type member struct {
	t      testing.TB
	id     string
	c      Coordinator
	led    *ledger
	drain  time.Duration
	cancel context.CancelFunc
	runErr chan error
	wg     sync.WaitGroup

	mu     sync.Mutex
	owned  map[string]*Lease
	events []Event
	hold   bool // keep revoked streams (a lane that never finishes draining)
}

func startMember(t testing.TB, id string, c Coordinator, led *ledger, streams []string, drain time.Duration) *member {
	t.Helper()
	m := &member{t: t, id: id, c: c, led: led, drain: drain, owned: map[string]*Lease{}, runErr: make(chan error, 1)}
	if err := c.SetStreams(streams); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	m.cancel = cancel
	m.wg.Go(func() { m.runErr <- c.Run(ctx) })
	m.wg.Go(m.consume)
	return m
}

func (m *member) consume() {
	for ev := range m.c.Events() {
		m.mu.Lock()
		m.events = append(m.events, ev)
		m.mu.Unlock()
		switch ev.Kind {
		case Assigned:
			if err := ev.Lease.Err(); err != nil {
				// Already over: a lane would not start.
				continue
			}
			sp := m.led.open(m.id, ev)
			m.mu.Lock()
			m.owned[ev.Stream()] = ev.Lease
			m.mu.Unlock()
			l := ev.Lease
			context.AfterFunc(l.Context(), func() {
				m.led.close(sp, !errors.Is(context.Cause(l.Context()), ErrReleased))
				m.mu.Lock()
				if m.owned[l.Stream()] == l {
					delete(m.owned, l.Stream())
				}
				m.mu.Unlock()
			})
		case Revoked:
			l := ev.Lease
			m.wg.Go(func() {
				timer := time.NewTimer(m.drain)
				defer timer.Stop()
				select {
				case <-timer.C:
				case <-l.Context().Done():
					return // lost while draining
				}
				m.mu.Lock()
				hold := m.hold
				m.mu.Unlock()
				if hold {
					return
				}
				// The lane has stopped: close the span, then release.
				for _, sp := range m.led.spansOf(m.id, l) {
					m.led.close(sp, false)
				}
				l.Release()
			})
		}
	}
}

func (l *ledger) spansOf(member string, lease *Lease) []*span {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []*span
	for _, s := range l.spans {
		if s.member == member && s.stream == lease.Stream() && s.token == lease.Token() && s.end.IsZero() {
			out = append(out, s)
		}
	}
	return out
}

func (m *member) ownedCount() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.owned)
}

func (m *member) ownedStreams() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return sortedKeys(m.owned)
}

func (m *member) eventsOf(kind EventKind) []Event {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []Event
	for _, e := range m.events {
		if e.Kind == kind {
			out = append(out, e)
		}
	}
	return out
}

// stop cancels Run and waits for the member's goroutines.
func (m *member) stop() error {
	m.cancel()
	err := <-m.runErr
	m.runErr <- err
	m.wg.Wait()
	return err
}

// leave leaves cleanly, then waits for the member's goroutines.
func (m *member) leave(timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	err := m.c.Leave(ctx)
	m.cancel()
	m.wg.Wait()
	return err
}

// waitFor polls cond every step until it holds or timeout passes.
func waitFor(t testing.TB, timeout, step time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s", timeout, what)
		}
		time.Sleep(step)
	}
}

// settled reports whether the members own every stream exactly once, each
// with want[i] streams.
func settled(ms []*member, streams []string, want ...int) bool {
	seen := map[string]int{}
	for i, m := range ms {
		owned := m.ownedStreams()
		if want != nil && len(owned) != want[i] {
			return false
		}
		for _, s := range owned {
			seen[s]++
		}
	}
	if len(seen) != len(streams) {
		return false
	}
	for _, s := range streams {
		if seen[s] != 1 {
			return false
		}
	}
	return true
}

// balancedCounts reports whether every member owns ⌊S/R⌋ or ⌈S/R⌉ streams
// and every stream has exactly one owner.
func balancedCounts(ms []*member, streams []string) bool {
	if !settled(ms, streams) {
		return false
	}
	lo, hi := len(streams)/len(ms), (len(streams)+len(ms)-1)/len(ms)
	for _, m := range ms {
		if n := m.ownedCount(); n < lo || n > hi {
			return false
		}
	}
	return true
}

func reasonsOf(evs []Event) map[Reason]int {
	out := map[Reason]int{}
	for _, e := range evs {
		out[e.Reason]++
	}
	return out
}

func streamSet(evs []Event) []string {
	var out []string
	for _, e := range evs {
		out = append(out, e.Stream())
	}
	slices.Sort(out)
	return slices.Compact(out)
}
