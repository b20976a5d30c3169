package cluster

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// KafkaConfig configures a [Kafka] coordinator.
type KafkaConfig struct {
	// Name is cluster.name: replicas with the same name share their streams.
	// The group is "restless-ingest-" + Name. Required, [a-z0-9_-]{1,64}.
	Name string
	// Member is this replica's id (cluster.member). Required; see
	// [ValidateMember] and [DefaultMember].
	Member string
	// LeaseTTL is how long a silent member keeps its streams: the group
	// session timeout. Default 10s. The broker only accepts values between
	// its group.min.session.timeout.ms (6s by default) and
	// group.max.session.timeout.ms.
	LeaseTTL time.Duration
	// Heartbeat is how often the member heartbeats. A rebalance reaches the
	// other members at their next heartbeat, so it bounds the handover
	// time: a handover takes one or two heartbeats. Default
	// min(LeaseTTL/3, 250ms); at most LeaseTTL/3.
	Heartbeat time.Duration
	// RebalanceTimeout is how long the coordinator waits for every member
	// to rejoin during a rebalance before it drops the missing ones. Default
	// LeaseTTL; it may not be shorter, so that a member is never dropped
	// before its own lease clock has expired.
	RebalanceTimeout time.Duration
}

func (c *KafkaConfig) check() error {
	if err := ValidateName(c.Name); err != nil {
		return err
	}
	if err := ValidateMember(c.Member); err != nil {
		return err
	}
	ttl, err := checkTTL(c.LeaseTTL)
	if err != nil {
		return err
	}
	c.LeaseTTL = ttl
	if c.Heartbeat == 0 {
		c.Heartbeat = min(ttl/3, 250*time.Millisecond)
	}
	if c.Heartbeat <= 0 || c.Heartbeat > ttl/3 {
		return fmt.Errorf("cluster: heartbeat %v must be positive and at most a third of the lease TTL %v", c.Heartbeat, ttl)
	}
	if c.RebalanceTimeout == 0 {
		c.RebalanceTimeout = ttl
	}
	if c.RebalanceTimeout < ttl || c.RebalanceTimeout > maxLeaseTTL {
		return fmt.Errorf("cluster: rebalance timeout %v must be between the lease TTL %v and %v", c.RebalanceTimeout, ttl, maxLeaseTTL)
	}
	return nil
}

// Group is the consumer group id the Kafka coordinator uses for cluster
// name.
func Group(name string) string { return "restless-ingest-" + name }

// Kafka coordinates replicas through the broker's group coordinator, as
// Kafka Connect's distributed workers do: the replicas are the members of
// the group restless-ingest-<name> (protocol type "restless-ingest"). Each
// member reports in its JoinGroup metadata the streams it can run and the
// streams it holds; the leader computes [Assign] and hands out assignments
// in SyncGroup. Moves are incremental and cooperative (KIP-415): the leader
// first only revokes a stream from its holder, which keeps running it until
// it has drained, saved and released it and then rejoins; the follow-up
// rebalance gives the stream to its new owner. The generation fences a
// member the coordinator dropped: its heartbeats fail, and its own clock
// ends its leases 95% of a session timeout after its last confirmed
// heartbeat, which is before the coordinator can have dropped it.
type Kafka struct {
	cfg     KafkaConfig
	api     groupAPI
	session string
	q       *queue
	wake    wakeup
	left    chan struct{}
	hb      atomic.Pointer[hbTarget]

	mu       sync.Mutex
	desired  []string
	desiredV int
	releases []*Lease
	leaving  bool
	started  bool
	hbSignal hbResult

	statusMu sync.Mutex
	status   Status
}

var _ Coordinator = (*Kafka)(nil)

// NewKafka returns a coordinator for this member that talks to the cluster
// through client, a franz-go client with the seed brokers and any TLS or
// SASL settings; it needs no consumer or producer options. The coordinator
// does not close the client. Call Run to join.
func NewKafka(client *kgo.Client, cfg KafkaConfig) (*Kafka, error) {
	if client == nil {
		return nil, errors.New("cluster: kafka: no client")
	}
	if err := cfg.check(); err != nil {
		return nil, err
	}
	return newKafka(&kgoGroup{cl: client, group: Group(cfg.Name)}, cfg), nil
}

func newKafka(api groupAPI, cfg KafkaConfig) *Kafka {
	return &Kafka{
		cfg:     cfg,
		api:     api,
		session: randomHex(8),
		q:       newQueue(),
		wake:    make(wakeup, 1),
		left:    make(chan struct{}),
		status:  Status{Member: cfg.Member},
	}
}

// SetStreams replaces the streams this member can run; a change triggers a
// rebalance.
func (k *Kafka) SetStreams(streams []string) error {
	norm, err := normalizeStreams(streams)
	if err != nil {
		return err
	}
	k.mu.Lock()
	if !slices.Equal(norm, k.desired) {
		k.desired = norm
		k.desiredV++
	}
	k.mu.Unlock()
	k.wake.ring()
	return nil
}

// Events delivers this member's assignment changes.
func (k *Kafka) Events() <-chan Event { return k.q.out }

// Leave hands this member's streams over and leaves the group.
func (k *Kafka) Leave(ctx context.Context) error {
	k.mu.Lock()
	k.leaving = true
	started := k.started
	k.mu.Unlock()
	if !started {
		return nil
	}
	k.wake.ring()
	select {
	case <-k.left:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Status is this member's view of the group.
func (k *Kafka) Status() Status {
	k.statusMu.Lock()
	defer k.statusMu.Unlock()
	s := k.status
	s.Members = slices.Clone(s.Members)
	s.Owned = slices.Clone(s.Owned)
	return s
}

func (k *Kafka) setStatus(s Status) {
	k.statusMu.Lock()
	k.status = s
	k.statusMu.Unlock()
}

func (k *Kafka) releaseLease(l *Lease) {
	k.mu.Lock()
	k.releases = append(k.releases, l)
	k.mu.Unlock()
	k.wake.ring()
}

// Run joins the group and coordinates until ctx is done or Leave completed.
func (k *Kafka) Run(ctx context.Context) error {
	k.mu.Lock()
	if k.started {
		k.mu.Unlock()
		return errors.New("cluster: kafka: Run called twice")
	}
	k.started = true
	k.mu.Unlock()
	defer close(k.left)

	stop := make(chan struct{})
	hctx, stopHB := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { k.q.forward(stop) })
	wg.Go(func() { k.heartbeats(hctx) })
	r := &kafkaRun{k: k, own: map[string]*kheld{}}
	err := r.loop(ctx)
	stopHB()
	r.endAll(ErrStopped, ReasonStopped)
	k.setStatus(Status{Member: k.cfg.Member})
	close(stop)
	wg.Wait()
	return err
}

// membership is one stretch of this member's group membership. Its leases
// end together: when its deadline passes without a confirmed heartbeat, or
// when the coordinator says the member is gone.
type membership struct {
	mu     sync.Mutex
	dead   bool
	leases map[*Lease]struct{}
	dl     *deadline
}

func newMembership(k *Kafka, at time.Time) *membership {
	m := &membership{leases: map[*Lease]struct{}{}}
	m.dl = startDeadline(at, func() {
		if m.kill(k.q, ErrExpired, ReasonExpired) {
			k.wake.ring()
		}
	})
	return m
}

// add registers a lease; false once the membership is over.
func (m *membership) add(l *Lease) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.dead {
		return false
	}
	m.leases[l] = struct{}{}
	return true
}

func (m *membership) remove(l *Lease) {
	m.mu.Lock()
	delete(m.leases, l)
	m.mu.Unlock()
}

func (m *membership) isDead() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.dead
}

// kill ends the membership and every lease under it, telling the consumer;
// it reports whether the membership was alive.
func (m *membership) kill(q *queue, cause error, reason Reason) bool {
	m.mu.Lock()
	if m.dead {
		m.mu.Unlock()
		return false
	}
	m.dead = true
	leases := make([]*Lease, 0, len(m.leases))
	for l := range m.leases {
		leases = append(leases, l)
	}
	m.leases = nil
	m.mu.Unlock()
	m.dl.stop()
	slices.SortFunc(leases, func(a, b *Lease) int { return cmp.Compare(a.stream, b.stream) })
	for _, l := range leases {
		q.lose(l, cause, reason)
	}
	return true
}

// hbTarget is what the heartbeat goroutine heartbeats for.
type hbTarget struct {
	memberID string
	gen      int32
	m        *membership
}

// hbResult is the last heartbeat outcome the loop must act on.
type hbResult struct {
	memberID string
	gen      int32
	err      error
}

// heartbeats heartbeats every Heartbeat for the current membership. A
// confirmed heartbeat (no error, or a rebalance in progress) pushes the
// membership's deadline to 95% of a session timeout after it was sent; the
// coordinator counts the session from when it received it, which is later.
func (k *Kafka) heartbeats(ctx context.Context) {
	t := time.NewTicker(k.cfg.Heartbeat)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		tgt := k.hb.Load()
		if tgt == nil {
			continue
		}
		sent := time.Now()
		hctx, cancel := context.WithTimeout(ctx, min(2*k.cfg.Heartbeat, k.cfg.LeaseTTL/2))
		err := k.api.heartbeat(hctx, tgt.memberID, tgt.gen)
		cancel()
		switch {
		case err == nil:
			tgt.m.dl.extend(sent.Add(validFor(k.cfg.LeaseTTL)))
			continue
		case errors.Is(err, kerr.RebalanceInProgress):
			tgt.m.dl.extend(sent.Add(validFor(k.cfg.LeaseTTL)))
		case errors.Is(err, kerr.UnknownMemberID), errors.Is(err, kerr.IllegalGeneration), errors.Is(err, kerr.FencedInstanceID):
		default:
			continue // unreachable broker: the deadline decides
		}
		k.mu.Lock()
		k.hbSignal = hbResult{memberID: tgt.memberID, gen: tgt.gen, err: err}
		k.mu.Unlock()
		k.wake.ring()
	}
}
