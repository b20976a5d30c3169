package cluster

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// NATSConfig configures a [NATS] coordinator.
type NATSConfig struct {
	// Name is cluster.name: replicas with the same name share their streams.
	// The bucket is "restless_ingest_" + Name. Required, [a-z0-9_-]{1,64}.
	Name string
	// Member is this replica's id (cluster.member), unique in the cluster.
	// Required; see [ValidateMember] and [DefaultMember].
	Member string
	// LeaseTTL is how long a silent member keeps its streams: the bucket's
	// TTL (MaxAge). Every replica must use the same value. Default 10s;
	// between 1s and 10m.
	LeaseTTL time.Duration
	// Heartbeat is how often the member key and every lease are renewed.
	// Default LeaseTTL/3; at most LeaseTTL/2.
	Heartbeat time.Duration
	// Replicas is the bucket's replica count when this member creates it.
	// Default 1.
	Replicas int
}

func (c *NATSConfig) check() error {
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
		c.Heartbeat = ttl / 3
	}
	if c.Heartbeat <= 0 || c.Heartbeat > ttl/2 {
		return fmt.Errorf("cluster: heartbeat %v must be positive and at most half the lease TTL %v", c.Heartbeat, ttl)
	}
	if c.Replicas == 0 {
		c.Replicas = 1
	}
	if c.Replicas < 1 || c.Replicas > 5 {
		return fmt.Errorf("cluster: bucket replicas %d is outside [1, 5]", c.Replicas)
	}
	return nil
}

// Bucket is the coordination bucket's name for cluster name.
func Bucket(name string) string { return defaultPrefix + name }

// NATS coordinates replicas through a JetStream key-value bucket. It needs
// only what nats-server 2.9 offers: a bucket TTL and compare-and-set by
// revision (no per-key TTL).
//
// Keys: "m.<member>" holds a member's session, stream set and leaving flag,
// rewritten every heartbeat; "s.<stream>" is the stream's lease, held by one
// member and session, rewritten by its holder every heartbeat with
// compare-and-set on its revision. A key that is not rewritten vanishes after
// the TTL. Every member watches the bucket, computes [Assign] over the live
// members it sees and the current holders, gives up (Revoked, then released
// by writing the lease as "released") what the target moves away, and takes
// what the target gives it once the lease is released or gone: by
// compare-and-set, so two members can never hold a lease at once. A member
// stops using a lease when it could not renew it within 95% of the TTL
// after it sent its last successful renewal, which is before the server lets
// anybody else take it.
type NATS struct {
	cfg     NATSConfig
	kv      kvBackend
	closeKV func()
	session string
	q       *queue
	wake    wakeup
	left    chan struct{}

	mu       sync.Mutex
	desired  []string
	desiredV int
	releases []*Lease
	expired  []*Lease
	leaving  bool
	started  bool

	statusMu sync.Mutex
	status   Status
}

var _ Coordinator = (*NATS)(nil)

// NewNATS opens (or creates) the cluster's bucket through js and returns a
// coordinator for this member. Call Run to join.
func NewNATS(ctx context.Context, js jetstream.JetStream, cfg NATSConfig) (*NATS, error) {
	if js == nil {
		return nil, errors.New("cluster: nats: no JetStream context")
	}
	if err := cfg.check(); err != nil {
		return nil, err
	}
	kv, err := openBucket(ctx, js, Bucket(cfg.Name), cfg.LeaseTTL, cfg.Replicas)
	if err != nil {
		return nil, err
	}
	b := &jsKV{kv: kv}
	return newNATS(b, b.wait, cfg), nil
}

func newNATS(kv kvBackend, closeKV func(), cfg NATSConfig) *NATS {
	if closeKV == nil {
		closeKV = func() {}
	}
	return &NATS{
		cfg:     cfg,
		kv:      kv,
		closeKV: closeKV,
		session: randomHex(8),
		q:       newQueue(),
		wake:    make(wakeup, 1),
		left:    make(chan struct{}),
		status:  Status{Member: cfg.Member},
	}
}

// SetStreams replaces the streams this member can run.
func (n *NATS) SetStreams(streams []string) error {
	norm, err := normalizeStreams(streams)
	if err != nil {
		return err
	}
	n.mu.Lock()
	if !slices.Equal(norm, n.desired) {
		n.desired = norm
		n.desiredV++
	}
	n.mu.Unlock()
	n.wake.ring()
	return nil
}

// Events delivers this member's assignment changes.
func (n *NATS) Events() <-chan Event { return n.q.out }

// Leave hands this member's streams over and leaves the cluster.
func (n *NATS) Leave(ctx context.Context) error {
	n.mu.Lock()
	n.leaving = true
	started := n.started
	n.mu.Unlock()
	if !started {
		return nil
	}
	n.wake.ring()
	select {
	case <-n.left:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Status is this member's view of the cluster.
func (n *NATS) Status() Status {
	n.statusMu.Lock()
	defer n.statusMu.Unlock()
	s := n.status
	s.Members = slices.Clone(s.Members)
	s.Owned = slices.Clone(s.Owned)
	return s
}

func (n *NATS) setStatus(s Status) {
	n.statusMu.Lock()
	n.status = s
	n.statusMu.Unlock()
}

func (n *NATS) releaseLease(l *Lease) {
	n.mu.Lock()
	n.releases = append(n.releases, l)
	n.mu.Unlock()
	n.wake.ring()
}

func (n *NATS) leaseExpired(l *Lease) {
	n.mu.Lock()
	n.expired = append(n.expired, l)
	n.mu.Unlock()
	n.wake.ring()
}

// Run joins the cluster and coordinates until ctx is done or Leave completed.
func (n *NATS) Run(ctx context.Context) error {
	n.mu.Lock()
	if n.started {
		n.mu.Unlock()
		return errors.New("cluster: nats: Run called twice")
	}
	n.started = true
	n.mu.Unlock()
	defer close(n.left)

	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() { n.q.forward(stop) })
	r := newNATSRun(n)
	err := r.loop(ctx)
	r.stopWatch()
	n.closeKV()
	r.endAll(ErrStopped, ReasonStopped)
	n.setStatus(Status{Member: n.cfg.Member})
	close(stop)
	wg.Wait()
	return err
}
