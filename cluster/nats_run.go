package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"
)

// natsRun is the state of one Run of a NATS coordinator. Only the Run
// goroutine touches it.
type natsRun struct {
	n       *NATS
	self    string
	session string
	ttl     time.Duration
	hb      time.Duration
	retry   time.Duration

	desired  []string
	desiredV int
	leaving  bool

	members map[string]*peer
	leases  map[string]*leaseView
	own     map[string]*held

	watchCh     <-chan kvEntry
	watchCancel context.CancelFunc
	ready       bool // the watch delivered its initial values
	joined      bool
	dirty       bool

	memberRev   uint64    // revision of our last member write
	unseenSince time.Time // first successful member write the watch has not shown yet
	conflict    bool
	nextRetry   time.Time
}

// peer is another member as the bucket shows it.
type peer struct {
	raw     []byte // the value as read, to skip decoding a renewal
	session string
	streams []string
	leaving bool
	seen    time.Time // local time of its last write, estimated for initial values
}

// leaseView is one stream's lease as the bucket shows it.
type leaseView struct {
	present bool
	rev     uint64
	seen    time.Time
	raw     []byte // the value as read, to skip decoding a renewal
	v       leaseValue
	foreign bool // the value could not be read: treat as held by nobody we know
	// lastHeldBy is the holder (member "/" session) last seen holding it.
	lastHeldBy string
}

// held is a lease this member holds.
type held struct {
	lease    *Lease
	rev      uint64
	dl       *deadline
	revoking bool
	reason   Reason // why it is being revoked
	release  bool   // the consumer released it; the write is pending
}

func newNATSRun(n *NATS) *natsRun {
	retry := min(max(n.cfg.LeaseTTL/20, 50*time.Millisecond), 500*time.Millisecond)
	return &natsRun{
		n:       n,
		self:    n.cfg.Member,
		session: n.session,
		ttl:     n.cfg.LeaseTTL,
		hb:      n.cfg.Heartbeat,
		retry:   retry,
		members: make(map[string]*peer),
		leases:  make(map[string]*leaseView),
		own:     make(map[string]*held),
	}
}

func (r *natsRun) loop(ctx context.Context) error {
	tick := time.NewTicker(r.hb)
	defer tick.Stop()
	retry := time.NewTimer(time.Hour)
	defer retry.Stop()

	r.inputs(ctx)
	r.startWatch(ctx)
	r.heartbeat(ctx)
	for {
		if r.conflict {
			return fmt.Errorf("cluster: nats: member %q: %w", r.self, ErrMemberConflict)
		}
		if r.leaving && len(r.own) == 0 {
			r.leave(ctx)
			return nil
		}
		if r.ready && r.memberRev != 0 && r.dirty {
			r.dirty = false
			r.reconcile(ctx)
		}
		if !r.nextRetry.IsZero() {
			retry.Reset(time.Until(r.nextRetry))
		}
		select {
		case <-ctx.Done():
			return nil
		case e, ok := <-r.watchCh:
			if !ok {
				r.watchCh = nil
				r.ready = false
				continue
			}
			r.apply(e)
		case <-tick.C:
			if r.watchCh == nil || r.watchStale() {
				r.stopWatch()
				r.startWatch(ctx)
			}
			r.heartbeat(ctx)
			r.dirty = true
		case <-r.n.wake:
			r.inputs(ctx)
		case <-retry.C:
			r.nextRetry = time.Time{}
			r.dirty = true
		}
	}
}

func (r *natsRun) op(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, r.hb)
}

func (r *natsRun) startWatch(ctx context.Context) {
	wctx, cancel := context.WithCancel(ctx)
	ch, err := r.n.kv.Watch(wctx)
	if err != nil {
		cancel()
		return // tried again at the next heartbeat
	}
	r.watchCh, r.watchCancel = ch, cancel
	r.ready = false
	r.unseenSince = time.Time{}
}

func (r *natsRun) stopWatch() {
	if r.watchCancel != nil {
		r.watchCancel()
		r.watchCancel = nil
	}
	r.watchCh = nil
	r.ready = false
}

// watchStale reports a watch that has not shown our own member writes for a
// whole TTL: it stopped delivering without closing.
func (r *natsRun) watchStale() bool {
	return !r.unseenSince.IsZero() && time.Since(r.unseenSince) > r.ttl
}

// inputs applies what the consumer asked for since the last call.
func (r *natsRun) inputs(ctx context.Context) {
	n := r.n
	n.mu.Lock()
	desired, desiredV, leaving := n.desired, n.desiredV, n.leaving
	releases, expired := n.releases, n.expired
	n.releases, n.expired = nil, nil
	n.mu.Unlock()

	announce := false
	if desiredV != r.desiredV {
		r.desired, r.desiredV = desired, desiredV
		announce = true
	}
	if leaving && !r.leaving {
		r.leaving = true
		announce = true
	}
	if announce && r.memberRev != 0 {
		r.putMember(ctx)
	}
	for _, l := range expired {
		if h := r.own[l.stream]; h != nil && h.lease == l {
			r.drop(l.stream, h, ErrExpired, ReasonExpired)
		}
	}
	for _, l := range releases {
		if h := r.own[l.stream]; h != nil && h.lease == l {
			h.release = true
			r.release(ctx, l.stream, h)
		}
	}
	r.dirty = true
}

// apply takes one watched change into the view.
func (r *natsRun) apply(e kvEntry) {
	now := time.Now()
	if e.initDone {
		r.ready = true
		r.dirty = true
		if r.memberRev != 0 {
			r.joined = true
		}
		return
	}
	seen := now
	if !r.ready {
		// An initial value may be old: count its age from the server's
		// timestamp, within [0, TTL].
		seen = now.Add(-min(max(now.Sub(e.created), 0), r.ttl))
	}
	prefix, name, ok := splitKey(e.key)
	if !ok {
		return
	}
	switch prefix {
	case memberPrefix:
		if name == r.self {
			r.applySelf(e)
			return
		}
		if e.deleted {
			if _, ok := r.members[name]; ok {
				delete(r.members, name)
				r.dirty = true
			}
			return
		}
		if p := r.members[name]; p != nil && bytes.Equal(p.raw, e.value) {
			if now.Sub(p.seen) >= r.ttl {
				r.dirty = true // back from the dead
			}
			p.seen = seen // a renewal
			return
		}
		v, err := decodeMember(e.value)
		if err != nil {
			// A member whose key cannot be read is not a member.
			if _, ok := r.members[name]; ok {
				delete(r.members, name)
				r.dirty = true
			}
			return
		}
		p := r.members[name]
		if p == nil || p.session != v.Session || p.leaving != v.Leaving || !slices.Equal(p.streams, v.Streams) || now.Sub(p.seen) >= r.ttl {
			r.dirty = true
		}
		r.members[name] = &peer{raw: e.value, session: v.Session, streams: v.Streams, leaving: v.Leaving, seen: seen}
	case leasePrefix:
		lv := r.leases[name]
		if lv == nil {
			lv = &leaseView{}
			r.leases[name] = lv
		}
		if h := r.own[name]; h != nil && e.rev <= h.rev {
			return // an echo of our own earlier write
		}
		if lv.present && !e.deleted && bytes.Equal(lv.raw, e.value) {
			lv.rev, lv.seen = e.rev, seen // a renewal
			return
		}
		before := *lv
		lv.rev, lv.seen, lv.raw = e.rev, seen, e.value
		if e.deleted {
			lv.present = false
		} else if v, err := decodeLease(e.value); err != nil {
			lv.present, lv.foreign, lv.v = true, true, leaseValue{}
		} else {
			lv.present, lv.foreign, lv.v = true, false, v
			if v.State == stateHeld {
				lv.lastHeldBy = v.Member + "/" + v.Session
			} else {
				lv.lastHeldBy = ""
			}
		}
		if before.present != lv.present || before.foreign != lv.foreign || before.v != lv.v {
			r.dirty = true
		}
	}
}

func (r *natsRun) applySelf(e kvEntry) {
	if e.deleted {
		return
	}
	v, err := decodeMember(e.value)
	if err == nil && v.Session == r.session {
		if e.rev >= r.memberRev {
			r.unseenSince = time.Time{}
		}
		return
	}
	if r.memberRev != 0 && e.rev > r.memberRev {
		// Someone else wrote our member key after we did: another live
		// replica with our id.
		r.conflict = true
	}
}

// renewers bounds the lease renewals in flight at once: a sweep takes
// about len(own)/renewers round trips, not len(own).
const renewers = 16

// heartbeat renews the member key and every lease held.
func (r *natsRun) heartbeat(ctx context.Context) {
	if !r.putMember(ctx) {
		return // the server is unreachable; the leases would fail too
	}
	var renew []string
	for _, s := range sortedKeys(r.own) {
		h := r.own[s]
		if !h.release && h.lease.Err() != nil {
			// Expired on our clock: never renew a lease the consumer was
			// told is lost; the key expires on the server.
			r.drop(s, h, ErrExpired, ReasonExpired)
			continue
		}
		if h.release {
			if !r.release(ctx, s, h) {
				return
			}
			continue
		}
		renew = append(renew, s)
	}
	type result struct {
		sent time.Time
		rev  uint64
		err  error
	}
	results := make([]result, len(renew))
	heldValue := encodeLease(leaseValue{Member: r.self, Session: r.session, State: stateHeld})
	sctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	next := make(chan int)
	for range min(renewers, len(renew)) {
		wg.Go(func() {
			for i := range next {
				sent := time.Now()
				octx, cancel := r.op(sctx)
				rev, err := r.n.kv.Update(octx, leasePrefix+renew[i], heldValue, r.own[renew[i]].rev)
				cancel()
				results[i] = result{sent, rev, err}
				if err != nil && !errors.Is(err, errConflict) {
					stop() // the server is in trouble: stop the sweep
				}
			}
		})
	}
	for i := range renew {
		if sctx.Err() != nil {
			results[i].err = sctx.Err()
			continue
		}
		next <- i
	}
	close(next)
	wg.Wait()
	stop()
	for i, s := range renew {
		h, res := r.own[s], results[i]
		switch {
		case res.err == nil:
			h.rev = res.rev
			h.dl.extend(res.sent.Add(validFor(r.ttl)))
		case errors.Is(res.err, errConflict):
			r.drop(s, h, ErrFenced, ReasonFenced)
		}
		// Any other error: try again at the next heartbeat; the deadline
		// guards the lease.
	}
	r.forgetStale()
}

func (r *natsRun) putMember(ctx context.Context) bool {
	v := encodeMember(memberValue{Session: r.session, Streams: r.desired, Leaving: r.leaving})
	octx, cancel := r.op(ctx)
	rev, err := r.n.kv.Put(octx, memberPrefix+r.self, v)
	cancel()
	if err != nil {
		return false
	}
	r.memberRev = rev
	if r.unseenSince.IsZero() {
		r.unseenSince = time.Now()
	}
	if !r.joined && r.ready {
		r.joined = true
	}
	return true
}

// forgetStale drops views of keys that expired long ago and that nobody
// runs, so that the view stays as large as the bucket.
func (r *natsRun) forgetStale() {
	now := time.Now()
	for id, p := range r.members {
		if now.Sub(p.seen) > 3*r.ttl {
			delete(r.members, id)
		}
	}
	for s, lv := range r.leases {
		if _, mine := r.own[s]; !mine && now.Sub(lv.seen) > 3*r.ttl {
			delete(r.leases, s)
		}
	}
}

// reconcile computes the target assignment and moves this member's leases
// towards it: revoke what goes elsewhere, take what is ours and free.
func (r *natsRun) reconcile(ctx context.Context) {
	now := time.Now()
	alive := map[string]string{r.self: r.session}
	var ms []Member
	for id, p := range r.members {
		if now.Sub(p.seen) >= r.ttl {
			continue
		}
		alive[id] = p.session
		r.retryAt(p.seen.Add(r.ttl)) // look again when it would expire
		if !p.leaving {
			ms = append(ms, Member{ID: id, Streams: p.streams})
		}
	}
	if !r.leaving {
		ms = append(ms, Member{ID: r.self, Streams: r.desired})
	}
	owners := make(map[string]string, len(r.leases))
	for s, lv := range r.leases {
		if lv.present && !lv.foreign && lv.v.State == stateHeld && lv.v.Member != r.self && alive[lv.v.Member] == lv.v.Session {
			owners[s] = lv.v.Member
		}
	}
	for s := range r.own {
		owners[s] = r.self
	}
	target := Assign(ms, owners)

	wanted := make(map[string]bool, len(r.desired))
	for _, s := range r.desired {
		wanted[s] = true
	}
	var revoked []Event
	for _, s := range sortedKeys(r.own) {
		h := r.own[s]
		if h.revoking || h.release || target[s] == r.self {
			continue
		}
		h.revoking = true
		switch {
		case r.leaving:
			h.reason = ReasonShutdown
		case !wanted[s]:
			h.reason = ReasonRemoved
		default:
			h.reason = ReasonRebalance
		}
		revoked = append(revoked, Event{Kind: Revoked, Lease: h.lease, Reason: h.reason})
	}
	r.n.q.push(revoked...)
	for _, s := range sortedKeys(target) {
		if target[s] == r.self && r.own[s] == nil {
			r.take(ctx, s, now, alive)
		}
	}
	r.publishStatus(alive)
}

// take tries to acquire stream s's lease, which the target gives this member.
func (r *natsRun) take(ctx context.Context, s string, now time.Time, alive map[string]string) {
	lv := r.leases[s]
	value := encodeLease(leaseValue{Member: r.self, Session: r.session, State: stateHeld})
	reason := ReasonNew
	var (
		rev  uint64
		err  error
		sent = time.Now()
	)
	octx, cancel := r.op(ctx)
	defer cancel()
	switch {
	case lv == nil || !lv.present:
		if lv != nil && lv.lastHeldBy != "" && lv.lastHeldBy != r.self+"/"+r.session {
			reason = ReasonFailover
		}
		rev, err = r.n.kv.Create(octx, leasePrefix+s, value)
	case !lv.foreign && lv.v.State == stateReleased:
		reason = lv.v.Reason
		if !reason.Handover() {
			reason = ReasonRebalance
		}
		rev, err = r.n.kv.Update(octx, leasePrefix+s, value, lv.rev)
	default:
		// Held. A live holder (another member, or another session of ours
		// that is not us) gives it up itself; otherwise the key expires a
		// TTL after its holder's last renewal.
		if !lv.foreign && lv.v.Member != r.self && alive[lv.v.Member] == lv.v.Session {
			return
		}
		if exp := lv.seen.Add(r.ttl); now.Before(exp) {
			r.retryAt(exp)
			return
		}
		reason = ReasonFailover
		rev, err = r.n.kv.Create(octx, leasePrefix+s, value)
	}
	if err != nil {
		// A conflict: someone wrote the key since our view of it, or it
		// has not expired yet. The watch brings the news; look again soon.
		r.retryAt(time.Now().Add(r.retry))
		return
	}
	l := newLease(context.Background(), s, Token{Member: r.self, Epoch: rev}, r.n.releaseLease)
	h := &held{lease: l, rev: rev}
	h.dl = startDeadline(sent.Add(validFor(r.ttl)), func() {
		if r.n.q.lose(l, ErrExpired, ReasonExpired) {
			r.n.leaseExpired(l)
		}
	})
	l.dl.Store(h.dl)
	r.own[s] = h
	if lv == nil {
		lv = &leaseView{}
		r.leases[s] = lv
	}
	*lv = leaseView{present: true, rev: rev, seen: time.Now(), lastHeldBy: r.self + "/" + r.session,
		v: leaseValue{V: 1, Member: r.self, Session: r.session, State: stateHeld}}
	r.n.q.push(Event{Kind: Assigned, Lease: l, Reason: reason})
}

func (r *natsRun) retryAt(t time.Time) {
	if r.nextRetry.IsZero() || t.Before(r.nextRetry) {
		r.nextRetry = t
	}
}

// release writes a released lease for stream s; it reports false when the
// server could not be reached (the write is retried at the next heartbeat).
func (r *natsRun) release(ctx context.Context, s string, h *held) bool {
	reason := h.reason
	if reason == "" {
		reason = ReasonRebalance
	}
	value := encodeLease(leaseValue{Member: r.self, Session: r.session, State: stateReleased, Reason: reason})
	octx, cancel := r.op(ctx)
	rev, err := r.n.kv.Update(octx, leasePrefix+s, value, h.rev)
	cancel()
	switch {
	case err == nil:
		delete(r.own, s)
		h.dl.stop()
		h.lease.end(ErrReleased)
		r.leases[s] = &leaseView{present: true, rev: rev, seen: time.Now(),
			v: leaseValue{V: 1, Member: r.self, Session: r.session, State: stateReleased, Reason: reason}}
		r.dirty = true
		return true
	case errors.Is(err, errConflict):
		// Lost before the release: the consumer already stopped the lane.
		delete(r.own, s)
		h.dl.stop()
		h.lease.end(ErrFenced)
		r.dirty = true
		return true
	}
	return false
}

// drop forgets a lease that is no longer ours and, unless it ended already
// (expired, or released by the consumer), tells the consumer.
func (r *natsRun) drop(s string, h *held, cause error, reason Reason) {
	delete(r.own, s)
	h.dl.stop()
	if h.release {
		h.lease.end(cause)
	} else {
		r.n.q.lose(h.lease, cause, reason)
	}
	r.dirty = true
}

// endAll ends every lease still held, when Run returns.
func (r *natsRun) endAll(cause error, reason Reason) {
	for _, s := range sortedKeys(r.own) {
		r.drop(s, r.own[s], cause, reason)
	}
}

// leave deletes the member key once every lease is released.
func (r *natsRun) leave(ctx context.Context) {
	octx, cancel := r.op(ctx)
	_ = r.n.kv.Delete(octx, memberPrefix+r.self) // the key expires anyway
	cancel()
}

func (r *natsRun) publishStatus(alive map[string]string) {
	streams := map[string][]string{}
	for s, lv := range r.leases {
		if lv.present && !lv.foreign && lv.v.State == stateHeld && lv.v.Member != r.self && alive[lv.v.Member] == lv.v.Session {
			streams[lv.v.Member] = append(streams[lv.v.Member], s)
		}
	}
	own := sortedKeys(r.own)
	streams[r.self] = own
	st := Status{Member: r.self, Joined: r.joined, Owned: own}
	for _, id := range sortedKeys(alive) {
		ms := MemberStatus{ID: id, Streams: streams[id]}
		slices.Sort(ms.Streams)
		if p := r.members[id]; p != nil && id != r.self {
			ms.Leaving = p.leaving
		} else if id == r.self {
			ms.Leaving = r.leaving
		}
		st.Members = append(st.Members, ms)
	}
	r.n.setStatus(st)
}
