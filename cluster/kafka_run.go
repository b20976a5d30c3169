package cluster

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
)

// kafkaRun is the state of one Run of a Kafka coordinator. Only the Run
// goroutine touches it.
type kafkaRun struct {
	k *Kafka

	memberID   string
	gen        int32 // of the last join
	appliedGen int32 // of the last assignment applied
	m          *membership
	own        map[string]*kheld
	group      []assignedMember // the group as the last assignment showed it
	joined     bool

	desired  []string
	desiredV int
	leaving  bool

	// What the last JoinGroup told the leader; a difference means rejoin.
	joinedDesiredV int
	joinedLeaving  bool
	released       bool // a stream was released since the last join
	rejoin         bool // the coordinator is rebalancing, or the membership ended

	backoff time.Duration
}

type kheld struct {
	lease    *Lease
	revoking bool
	reason   Reason
}

// fatal are the coordinator's answers that no retry can fix.
var fatal = []struct {
	err  *kerr.Error
	hint string
}{
	{kerr.InconsistentGroupProtocol, "the group is used by other clients with another protocol type; choose another cluster.name"},
	{kerr.InvalidSessionTimeout, "cluster.lease_ttl is outside the broker's group.min.session.timeout.ms and group.max.session.timeout.ms"},
	{kerr.GroupAuthorizationFailed, "the credentials may not use this group"},
	{kerr.InvalidGroupID, "the broker refuses the group id"},
	{kerr.GroupMaxSizeReached, "the group has as many members as the broker's group.max.size allows"},
}

func (r *kafkaRun) fatalErr(err error) error {
	for _, f := range fatal {
		if errors.Is(err, f.err) {
			return fmt.Errorf("cluster: kafka: group %q: %s: %w", Group(r.k.cfg.Name), f.hint, err)
		}
	}
	return nil
}

func (r *kafkaRun) loop(ctx context.Context) error {
	r.inputs()
	for ctx.Err() == nil {
		if r.leaving && len(r.own) == 0 && r.memberID == "" {
			return nil // not in the group: nothing to hand over
		}
		if r.leaving && len(r.own) == 0 && r.joinedLeaving && r.memberID != "" && !r.rejoin {
			lctx, cancel := context.WithTimeout(ctx, r.k.cfg.Heartbeat*4)
			_ = r.k.api.leave(lctx, r.memberID) // the session expires anyway
			cancel()
			return nil
		}
		if r.needJoin() {
			ok, err := r.rebalance(ctx)
			if err != nil {
				return err
			}
			if ok {
				r.backoff = 0
				continue
			}
			r.sleep(ctx)
			continue
		}
		select {
		case <-ctx.Done():
		case <-r.k.wake:
			r.inputs()
		}
	}
	return nil
}

// sleep waits before retrying a failed join, doubling up to the heartbeat
// interval times four.
func (r *kafkaRun) sleep(ctx context.Context) {
	if r.backoff == 0 {
		r.backoff = r.k.cfg.Heartbeat / 4
	} else {
		r.backoff = min(2*r.backoff, 4*r.k.cfg.Heartbeat)
	}
	t := time.NewTimer(r.backoff)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
	r.inputs()
}

// needJoin reports whether this member must (re)join: never joined, the
// coordinator is rebalancing, the membership ended, the stream set or the
// leaving flag changed since the last join, or every revoked stream is now
// released and the leader can give them out.
func (r *kafkaRun) needJoin() bool {
	if r.m == nil || r.rejoin || r.desiredV != r.joinedDesiredV {
		return true
	}
	revoking := false
	for _, h := range r.own {
		revoking = revoking || h.revoking
	}
	if r.leaving != r.joinedLeaving {
		return !revoking
	}
	return r.released && !revoking
}

// inputs applies what the consumer and the heartbeat goroutine reported.
func (r *kafkaRun) inputs() {
	k := r.k
	k.mu.Lock()
	desired, desiredV, leaving := k.desired, k.desiredV, k.leaving
	releases := k.releases
	k.releases = nil
	sig := k.hbSignal
	k.hbSignal = hbResult{}
	k.mu.Unlock()

	r.desired, r.desiredV = desired, desiredV
	if leaving && !r.leaving {
		r.leaving = true
		r.revokeAll()
	}
	for _, l := range releases {
		if h := r.own[l.stream]; h != nil && h.lease == l {
			delete(r.own, l.stream)
			r.m.remove(l)
			l.end(ErrReleased)
			r.released = true
		}
	}
	if sig.err != nil && sig.memberID == r.memberID && sig.gen == r.gen {
		switch {
		case errors.Is(sig.err, kerr.RebalanceInProgress):
			r.rejoin = true
		default:
			// The coordinator no longer knows this member, or moved on to
			// a generation without it.
			r.lose(ErrFenced, ReasonFenced)
			if errors.Is(sig.err, kerr.UnknownMemberID) {
				r.memberID = ""
			}
		}
	}
	if r.m != nil && r.m.isDead() {
		r.lose(ErrExpired, ReasonExpired)
	}
	r.publishStatus()
}

// revokeAll revokes every held stream for a clean leave.
func (r *kafkaRun) revokeAll() {
	var evs []Event
	for _, s := range sortedKeys(r.own) {
		if h := r.own[s]; !h.revoking {
			h.revoking, h.reason = true, ReasonShutdown
			evs = append(evs, Event{Kind: Revoked, Lease: h.lease, Reason: ReasonShutdown})
		}
	}
	r.k.q.push(evs...)
}

// lose ends the membership and every lease under it.
func (r *kafkaRun) lose(cause error, reason Reason) {
	if r.m != nil {
		r.m.kill(r.k.q, cause, reason)
	}
	for s, h := range r.own {
		h.lease.end(cause)
		delete(r.own, s)
	}
	r.m = nil
	r.k.hb.Store(nil)
	r.joined = false
	r.rejoin = true
}

// endAll ends every lease when Run returns.
func (r *kafkaRun) endAll(cause error, reason Reason) {
	r.lose(cause, reason)
	r.k.hb.Store(nil)
}

// rebalance joins and syncs once. It reports false, nil when it should be
// tried again after a pause, and an error when the group cannot be joined
// at all.
func (r *kafkaRun) rebalance(ctx context.Context) (bool, error) {
	k := r.k
	meta := joinMeta{
		Member: k.cfg.Member, Session: k.session,
		Streams: r.desired, Owned: sortedKeys(r.own), Gen: r.appliedGen, Leaving: r.leaving,
	}
	if r.leaving {
		meta.Streams = nil
	}
	r.joinedDesiredV, r.joinedLeaving = r.desiredV, r.leaving
	r.released, r.rejoin = false, false

	wait := k.cfg.RebalanceTimeout + k.cfg.LeaseTTL
	sent := time.Now()
	jctx, cancel := context.WithTimeout(ctx, wait)
	jr, err := k.api.join(jctx, joinRequest{memberID: r.memberID, session: k.cfg.LeaseTTL, rebalance: k.cfg.RebalanceTimeout, metadata: encodeWire(meta)})
	cancel()
	switch {
	case errors.Is(err, kerr.MemberIDRequired):
		r.memberID = jr.memberID
		r.rejoin = true
		return true, nil
	case errors.Is(err, kerr.UnknownMemberID), errors.Is(err, kerr.IllegalGeneration), errors.Is(err, kerr.FencedInstanceID):
		r.lose(ErrFenced, ReasonFenced)
		r.memberID = ""
		return true, nil
	case err != nil:
		r.rejoin = true
		return false, r.fatalErr(err)
	}
	r.memberID, r.gen = jr.memberID, jr.gen
	if r.m == nil || r.m.isDead() {
		r.m = newMembership(k, sent.Add(validFor(k.cfg.LeaseTTL)))
	} else {
		r.m.dl.extend(sent.Add(validFor(k.cfg.LeaseTTL)))
	}
	k.hb.Store(&hbTarget{memberID: r.memberID, gen: r.gen, m: r.m})

	var assigns map[string][]byte
	if jr.leader == r.memberID {
		assigns = leaderAssign(jr.gen, jr.members, r.group)
	}
	sent = time.Now()
	sctx, cancel := context.WithTimeout(ctx, wait)
	payload, err := k.api.sync(sctx, syncRequest{memberID: r.memberID, gen: r.gen, assignments: assigns})
	cancel()
	switch {
	case errors.Is(err, kerr.RebalanceInProgress), errors.Is(err, kerr.IllegalGeneration):
		r.rejoin = true
		return true, nil
	case errors.Is(err, kerr.UnknownMemberID), errors.Is(err, kerr.FencedInstanceID):
		r.lose(ErrFenced, ReasonFenced)
		r.memberID = ""
		return true, nil
	case err != nil:
		r.rejoin = true
		return false, r.fatalErr(err)
	}
	a, err := decodeAssignment(payload)
	if err != nil || a.Gen != r.gen {
		// An assignment this member cannot read changes nothing; ask
		// again.
		r.rejoin = true
		return false, nil
	}
	if !r.m.dl.extend(sent.Add(validFor(k.cfg.LeaseTTL))) {
		r.lose(ErrExpired, ReasonExpired)
		return true, nil
	}
	r.apply(a)
	r.inputs()
	return true, nil
}

// apply starts the streams the assignment gives this member and revokes the
// ones it no longer does.
func (r *kafkaRun) apply(a assignment) {
	k := r.k
	r.appliedGen = a.Gen
	r.group = a.Members
	r.joined = true
	var evs []Event
	mine := make(map[string]bool, len(a.Streams))
	for _, s := range a.Streams {
		mine[s] = true
		if r.own[s] != nil {
			continue
		}
		l := newLease(context.Background(), s, Token{Member: k.cfg.Member, Epoch: uint64(a.Gen)}, k.releaseLease)
		if !r.m.add(l) {
			break // the membership just ended; inputs cleans up
		}
		l.dl.Store(r.m.dl)
		r.own[s] = &kheld{lease: l}
		reason := a.Reasons[s]
		if reason == "" {
			reason = ReasonNew
		}
		evs = append(evs, Event{Kind: Assigned, Lease: l, Reason: reason})
	}
	wanted := make(map[string]bool, len(r.desired))
	for _, s := range r.desired {
		wanted[s] = true
	}
	for _, s := range sortedKeys(r.own) {
		h := r.own[s]
		if mine[s] || h.revoking {
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
		evs = append(evs, Event{Kind: Revoked, Lease: h.lease, Reason: h.reason})
	}
	k.q.push(evs...)
}

func (r *kafkaRun) publishStatus() {
	st := Status{Member: r.k.cfg.Member, Joined: r.joined && r.m != nil, Owned: sortedKeys(r.own)}
	for _, m := range r.group {
		st.Members = append(st.Members, MemberStatus{ID: m.Member, Streams: slices.Clone(m.Streams), Leaving: m.Leaving})
	}
	r.k.setStatus(st)
}
