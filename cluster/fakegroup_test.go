package cluster

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
)

// fakeGroup is an in-memory classic group coordinator (JoinGroup, SyncGroup,
// Heartbeat, LeaveGroup) with Kafka's timing rules, for tests under
// testing/synctest: session timeouts, the rebalance timeout while members
// rejoin and while the leader syncs, MEMBER_ID_REQUIRED for new members,
// generations. Each member talks to it through a fakeGroupConn that a test
// can cut.
type fakeGroup struct {
	mu       sync.Mutex
	state    string // empty, preparing, completing, stable
	gen      int32
	leader   string
	members  map[string]*fgMember
	pending  map[string]bool
	nextID   int
	tRebal   *time.Timer
	tSync    *time.Timer
	requests map[string]int
}

type fgMember struct {
	id        string
	meta      []byte
	session   time.Duration
	rebalance time.Duration
	joinWait  chan fgJoin // set while the member waits in JoinGroup
	syncWait  chan fgSync // set while the member waits in SyncGroup
	synced    bool
	assigned  []byte
	t         *time.Timer
}

type fgJoin struct {
	resp joinResponse
	err  error
}

type fgSync struct {
	b   []byte
	err error
}

func newFakeGroup() *fakeGroup {
	return &fakeGroup{state: "empty", members: map[string]*fgMember{}, pending: map[string]bool{}, requests: map[string]int{}}
}

func (g *fakeGroup) count(what string) {
	g.requests[what]++
}

func (g *fakeGroup) requestCounts() map[string]int {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := map[string]int{}
	for k, v := range g.requests {
		out[k] = v
	}
	return out
}

// touch restarts m's session timer.
func (g *fakeGroup) touch(m *fgMember) {
	if m.t != nil {
		m.t.Stop()
	}
	m.t = time.AfterFunc(m.session, func() {
		g.mu.Lock()
		defer g.mu.Unlock()
		if g.members[m.id] == m {
			g.remove(m)
			g.rebalance()
		}
	})
}

func (g *fakeGroup) remove(m *fgMember) {
	delete(g.members, m.id)
	if m.t != nil {
		m.t.Stop()
	}
}

func (g *fakeGroup) rebalance() {
	if g.state == "completing" {
		for _, m := range g.members {
			m.assigned = nil
			if m.syncWait != nil {
				m.syncWait <- fgSync{err: kerr.RebalanceInProgress}
				m.syncWait = nil
			}
		}
	}
	if g.tSync != nil {
		g.tSync.Stop()
	}
	g.state = "preparing"
	waiting := 0
	for _, m := range g.members {
		if m.joinWait != nil {
			waiting++
		}
	}
	if waiting == len(g.members) {
		g.complete()
		return
	}
	if g.tRebal != nil {
		g.tRebal.Stop()
	}
	var max time.Duration
	for _, m := range g.members {
		max = maxDur(max, m.rebalance)
	}
	gen := g.gen
	g.tRebal = time.AfterFunc(max, func() {
		g.mu.Lock()
		defer g.mu.Unlock()
		if g.gen == gen && g.state == "preparing" {
			g.complete()
		}
	})
}

func maxDur(a, b time.Duration) time.Duration {
	if a > b {
		return a
	}
	return b
}

func (g *fakeGroup) complete() {
	if g.tRebal != nil {
		g.tRebal.Stop()
	}
	for _, m := range g.members {
		if m.joinWait == nil {
			g.remove(m)
		}
	}
	g.gen++
	if len(g.members) == 0 {
		g.state = "empty"
		return
	}
	ids := sortedKeys(g.members)
	if g.members[g.leader] == nil {
		g.leader = ids[0]
	}
	g.state = "completing"
	var all []joinedMember
	for _, id := range ids {
		all = append(all, joinedMember{id: id, metadata: g.members[id].meta})
	}
	var max time.Duration
	for _, id := range ids {
		m := g.members[id]
		m.synced = false
		resp := joinResponse{memberID: id, leader: g.leader, gen: g.gen}
		if id == g.leader {
			resp.members = all
		}
		m.joinWait <- fgJoin{resp: resp}
		m.joinWait = nil
		g.touch(m)
		max = maxDur(max, m.rebalance)
	}
	gen := g.gen
	g.tSync = time.AfterFunc(max, func() {
		g.mu.Lock()
		defer g.mu.Unlock()
		if g.gen != gen || g.state != "completing" {
			return
		}
		for _, m := range g.members {
			if !m.synced {
				g.remove(m)
			}
		}
		g.rebalance()
	})
}

func (g *fakeGroup) join(ctx context.Context, r joinRequest) (joinResponse, error) {
	g.mu.Lock()
	g.count("join")
	if r.memberID == "" {
		g.nextID++
		id := fmt.Sprintf("m-%03d", g.nextID)
		g.pending[id] = true
		g.mu.Unlock()
		return joinResponse{memberID: id}, kerr.MemberIDRequired
	}
	m := g.members[r.memberID]
	switch {
	case g.pending[r.memberID]:
		delete(g.pending, r.memberID)
		m = &fgMember{id: r.memberID}
		g.members[m.id] = m
	case m == nil:
		g.mu.Unlock()
		return joinResponse{}, kerr.UnknownMemberID
	case (g.state == "stable" && g.leader != m.id || g.state == "completing") && slices.Equal(m.meta, r.metadata):
		resp := joinResponse{memberID: m.id, leader: g.leader, gen: g.gen}
		if m.id == g.leader {
			for _, id := range sortedKeys(g.members) {
				resp.members = append(resp.members, joinedMember{id: id, metadata: g.members[id].meta})
			}
		}
		g.mu.Unlock()
		return resp, nil
	}
	m.meta, m.session, m.rebalance = r.metadata, r.session, r.rebalance
	ch := make(chan fgJoin, 1)
	m.joinWait = ch
	g.touch(m)
	g.rebalance()
	g.mu.Unlock()
	select {
	case res := <-ch:
		return res.resp, res.err
	case <-ctx.Done():
		return joinResponse{}, ctx.Err()
	}
}

func (g *fakeGroup) sync(ctx context.Context, r syncRequest) ([]byte, error) {
	g.mu.Lock()
	g.count("sync")
	m := g.members[r.memberID]
	switch {
	case m == nil:
		g.mu.Unlock()
		return nil, kerr.UnknownMemberID
	case r.gen != g.gen:
		g.mu.Unlock()
		return nil, kerr.IllegalGeneration
	case g.state == "preparing":
		g.mu.Unlock()
		return nil, kerr.RebalanceInProgress
	case g.state == "stable":
		b := m.assigned
		g.touch(m)
		g.mu.Unlock()
		return b, nil
	}
	m.synced = true
	ch := make(chan fgSync, 1)
	m.syncWait = ch
	if r.memberID == g.leader {
		for _, mm := range g.members {
			mm.assigned = r.assignments[mm.id]
		}
		g.state = "stable"
		if g.tSync != nil {
			g.tSync.Stop()
		}
		for _, mm := range g.members {
			if mm.syncWait != nil {
				mm.syncWait <- fgSync{b: mm.assigned}
				mm.syncWait = nil
				g.touch(mm)
			}
		}
	}
	g.mu.Unlock()
	select {
	case res := <-ch:
		return res.b, res.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (g *fakeGroup) heartbeat(_ context.Context, memberID string, gen int32) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.count("heartbeat")
	m := g.members[memberID]
	switch {
	case m == nil:
		return kerr.UnknownMemberID
	case gen != g.gen:
		return kerr.IllegalGeneration
	}
	g.touch(m)
	if g.state == "preparing" {
		return kerr.RebalanceInProgress
	}
	return nil
}

func (g *fakeGroup) leave(_ context.Context, memberID string) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.count("leave")
	m := g.members[memberID]
	if m == nil {
		return kerr.UnknownMemberID
	}
	g.remove(m)
	g.rebalance()
	return nil
}

func (g *fakeGroup) leaderID() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.leader
}

// fakeGroupConn is one member's connection to a fakeGroup; while cut, every
// request waits for its context to end.
type fakeGroupConn struct {
	g    *fakeGroup
	mu   sync.Mutex
	open chan struct{}
	// onSync, when set, runs before each SyncGroup (to kill a leader
	// between its join and its sync).
	onSync func()
	// memberID is the coordinator's id of this connection's member.
	memberID string
}

func (g *fakeGroup) conn() *fakeGroupConn {
	c := &fakeGroupConn{g: g, open: make(chan struct{})}
	close(c.open)
	return c
}

func (c *fakeGroupConn) cut() {
	c.mu.Lock()
	defer c.mu.Unlock()
	select {
	case <-c.open:
		c.open = make(chan struct{})
	default:
	}
}

func (c *fakeGroupConn) heal() {
	c.mu.Lock()
	defer c.mu.Unlock()
	select {
	case <-c.open:
	default:
		close(c.open)
	}
}

func (c *fakeGroupConn) gate(ctx context.Context) error {
	c.mu.Lock()
	open := c.open
	c.mu.Unlock()
	select {
	case <-open:
		return ctx.Err()
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (c *fakeGroupConn) join(ctx context.Context, r joinRequest) (joinResponse, error) {
	if err := c.gate(ctx); err != nil {
		return joinResponse{}, err
	}
	resp, err := c.g.join(ctx, r)
	if err == nil || resp.memberID != "" {
		c.mu.Lock()
		c.memberID = resp.memberID
		c.mu.Unlock()
	}
	if err := c.gate(ctx); err != nil {
		return joinResponse{}, err // the answer is lost on the way back
	}
	return resp, err
}

func (c *fakeGroupConn) sync(ctx context.Context, r syncRequest) ([]byte, error) {
	c.mu.Lock()
	hook := c.onSync
	c.mu.Unlock()
	if hook != nil {
		hook()
	}
	if err := c.gate(ctx); err != nil {
		return nil, err
	}
	b, err := c.g.sync(ctx, r)
	if err := c.gate(ctx); err != nil {
		return nil, err
	}
	return b, err
}

func (c *fakeGroupConn) heartbeat(ctx context.Context, memberID string, gen int32) error {
	if err := c.gate(ctx); err != nil {
		return err
	}
	return c.g.heartbeat(ctx, memberID, gen)
}

func (c *fakeGroupConn) leave(ctx context.Context, memberID string) error {
	if err := c.gate(ctx); err != nil {
		return err
	}
	return c.g.leave(ctx, memberID)
}

// hbTargetID is the coordinator's id of this member, or "".
func (k *Kafka) hbTargetID() string {
	if t := k.hb.Load(); t != nil {
		return t.memberID
	}
	return ""
}
