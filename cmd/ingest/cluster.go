package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/restless-stream/ingest"
	"github.com/restless-stream/ingest/checkpoint"
	"github.com/restless-stream/ingest/cluster"
	"github.com/restless-stream/ingest/pipeline"
	kafkasink "github.com/restless-stream/ingest/sink/kafka"
)

// Cluster mode (INGEST.md, "Several replicas"). The replicas of one
// cluster.name share the configured and discovered streams through the
// broker they publish to: the cluster package's coordinator says which
// streams this replica owns, each with a lease, and the daemon runs a lane
// for exactly those.
//
//   - Assigned: the stream's checkpoint is claimed (the fenced store: a save
//     of an older owner can no longer win) and its lane starts, resuming from
//     the claimed cursor.
//   - Revoked: the lane stops reading, writes what it holds, saves its
//     checkpoint (the stream set's drain), and then the lease is released:
//     only then may the new owner start.
//   - Lost, or the lease's context ending by itself (not renewed in time):
//     the lane is aborted at once; it publishes and saves nothing more.
//
// Every record the sink writes and every checkpoint saved is checked
// against the stream's lease first, so a replica that was paused past its
// lease stops at its next write or save, before the lease would let anyone
// else start; the broker's fences (the checkpoint claim's epoch, the Kafka
// generation) cover a write already under way.

// errNotOwner fails a write or a save of a stream this replica holds no
// valid lease on.
var errNotOwner = errors.New("this replica no longer owns the stream")

// claimRetry paces the attempts to claim an assigned stream's checkpoint
// while the broker does not answer; they go on until the lease ends.
const claimRetry = time.Second

// clusterMode is the daemon's side of cluster mode.
type clusterMode struct {
	d      *daemon
	log    *slog.Logger
	member string

	coord   cluster.Coordinator
	claimer checkpoint.Claimer // the store every replica reads
	fenced  *checkpoint.Fenced // saves through the claims of the streams owned
	// closeKafka closes the Kafka coordinator's client; nil with NATS.
	closeKafka func()

	kick chan struct{} // the owned set changed: apply the stream set again

	mu      sync.Mutex
	owned   map[string]*ownedStream
	desired []string // the streams last given to SetStreams

	handovers *prometheus.CounterVec

	runErr chan error // Run's result, once
}

// ownedStream is one stream this replica holds a lease on.
type ownedStream struct {
	lease   *cluster.Lease
	claim   *checkpoint.Claim
	revoked cluster.Reason // "" until Revoked: then draining, to release
}

func newClusterMode(d *daemon) *clusterMode {
	member := d.cfg.Cluster.Member
	if member == "" {
		member = cluster.DefaultMember()
	}
	c := &clusterMode{
		d: d, log: d.log, member: member,
		fenced: checkpoint.NewFenced(),
		kick:   make(chan struct{}, 1),
		owned:  map[string]*ownedStream{},
		runErr: make(chan error, 1),
		handovers: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: metricsNamespace, Name: "stream_handovers_total",
			Help: "Streams this replica took over from another, by reason (rebalance, failover, shutdown).",
		}, []string{"reason"}),
	}
	for _, r := range []cluster.Reason{cluster.ReasonRebalance, cluster.ReasonFailover, cluster.ReasonShutdown} {
		c.handovers.WithLabelValues(string(r))
	}
	reg := d.metrics.Registry
	reg.MustRegister(c.handovers)
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: metricsNamespace, Name: "cluster_members",
		Help: "Live members of the cluster, as this replica sees them.",
	}, func() float64 {
		if c.coord == nil {
			return 0
		}
		return float64(len(c.coord.Status().Members))
	}))
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: metricsNamespace, Name: "streams_owned",
		Help: "Streams this replica holds a lease on.",
	}, func() float64 {
		c.mu.Lock()
		defer c.mu.Unlock()
		return float64(len(c.owned))
	}))
	return c
}

// open creates the claimable checkpoint store and the coordinator on the
// sink's own broker connection, and returns the store the pipeline uses.
func (c *clusterMode) open(ctx context.Context) (checkpoint.Store, error) {
	cc := c.d.cfg.Cluster
	c.fenced = checkpoint.NewFenced() // a retried start opens again
	switch c.d.cfg.Sink.Type {
	case "nats":
		js := c.d.natsJetStream()
		if js == nil {
			return nil, &ConfigError{Errs: []FieldError{{Path: "cluster.enabled", Msg: "cluster mode needs sink.type nats with sink.nats.jetstream true"}}}
		}
		st, err := checkpoint.NewNATSKV(ctx, js, c.d.cfg.Checkpoint.NATSKVBucket)
		if err != nil {
			return nil, fmt.Errorf("checkpoint.nats_kv_bucket: %w", err)
		}
		coord, err := cluster.NewNATS(ctx, js, cluster.NATSConfig{Name: cc.Name, Member: c.member, LeaseTTL: cc.LeaseTTL.D(), Replicas: c.d.cfg.Sink.NATS.Replicas})
		if err != nil {
			_ = st.Close()
			return nil, fmt.Errorf("cluster: the coordination bucket %s: %w", cluster.Bucket(cc.Name), err)
		}
		c.claimer, c.coord = st, coord
	case "kafka":
		ks, ok := c.d.rawSink.(*kafkasink.Sink)
		if !ok {
			return nil, &ConfigError{Errs: []FieldError{{Path: "cluster.enabled", Msg: "cluster mode with checkpoint.type kafka needs sink.type kafka"}}}
		}
		st, err := checkpoint.NewKafka(ctx, checkpoint.KafkaConfig{Client: ks.Client(), Topic: c.d.cfg.Checkpoint.KafkaTopic})
		if err != nil {
			return nil, fmt.Errorf("checkpoint.kafka_topic: %w", err)
		}
		k := c.d.cfg.Sink.Kafka
		coord, closeClient, err := cluster.DialKafka(cluster.KafkaDial{
			Brokers: k.Brokers, TLS: ks.TLSConfig(), ClientID: "restless-ingest-" + c.member,
			SASLMechanism: k.SASL.Mechanism, SASLUser: k.SASL.Username, SASLPassword: k.SASL.Password.Reveal(),
		}, cluster.KafkaConfig{Name: cc.Name, Member: c.member, LeaseTTL: cc.LeaseTTL.D()})
		if err != nil {
			_ = st.Close()
			return nil, err
		}
		c.claimer, c.coord, c.closeKafka = st, coord, closeClient
	default:
		return nil, &ConfigError{Errs: []FieldError{{Path: "cluster.enabled", Msg: "cluster mode needs sink.type nats or kafka"}}}
	}
	c.d.ready.SetJoined(func() bool { return c.coord.Status().Joined })
	c.d.status.SetOthers(c.others)
	names := make([]string, len(c.d.cfg.Streams))
	for i, s := range c.d.cfg.Streams {
		names[i] = s.Name
	}
	if err := c.setStreams(names); err != nil {
		return nil, err
	}
	return clusterStore{c}, nil
}

// setStreams gives the coordinator the streams this replica can run: the
// configured and discovered ones.
func (c *clusterMode) setStreams(names []string) error {
	names = slices.Clone(names)
	slices.Sort(names)
	c.mu.Lock()
	same := slices.Equal(c.desired, names)
	c.desired = names
	c.mu.Unlock()
	if same && names != nil {
		return nil
	}
	if err := c.coord.SetStreams(names); err != nil {
		return fmt.Errorf("cluster: %w", err)
	}
	return nil
}

// start runs the coordinator, the event handler and the applier until ctx
// ends; Run's result arrives on c.runErr. wg counts the goroutines.
func (c *clusterMode) start(ctx context.Context, wg *sync.WaitGroup) {
	wg.Go(func() {
		err := c.coord.Run(ctx)
		if err == nil && ctx.Err() == nil {
			err = errors.New("cluster: the coordinator stopped")
		}
		c.runErr <- err
	})
	wg.Go(func() { c.events(ctx) })
	wg.Go(func() { c.applier(ctx) })
	c.log.Info("joining the cluster", "cluster", c.d.cfg.Cluster.Name, "member", c.member, "lease_ttl", c.d.cfg.Cluster.LeaseTTL)
}

// events handles the coordinator's events until it closes them.
func (c *clusterMode) events(ctx context.Context) {
	for ev := range c.coord.Events() {
		switch ev.Kind {
		case cluster.Assigned:
			c.assigned(ctx, ev)
		case cluster.Revoked:
			c.mu.Lock()
			o := c.owned[ev.Stream()]
			if o != nil && o.lease == ev.Lease {
				o.revoked = ev.Reason
			}
			c.mu.Unlock()
			if o == nil || o.lease != ev.Lease {
				// Never started (its claim failed): nothing to drain.
				ev.Lease.Release()
				continue
			}
			c.log.Info(fmt.Sprintf("handing stream %s over (%s)", ev.Stream(), ev.Reason), "stream", ev.Stream(), "reason", string(ev.Reason))
			c.ring()
		case cluster.Lost:
			c.abort(ev.Lease, string(ev.Reason))
		}
	}
}

// assigned claims the stream's checkpoint under the lease and starts its
// lane.
func (c *clusterMode) assigned(ctx context.Context, ev cluster.Event) {
	l, s := ev.Lease, ev.Stream()
	var claim *checkpoint.Claim
	for {
		var err error
		claim, err = c.claimer.Claim(l.Context(), s, l.Token().String())
		if err == nil {
			break
		}
		if l.Err() != nil || ctx.Err() != nil {
			return // lost meanwhile: its Lost event follows
		}
		c.log.Warn("claiming the stream's checkpoint failed; retrying", "stream", s, "err", err)
		t := time.NewTimer(claimRetry)
		select {
		case <-t.C:
		case <-l.Context().Done():
			t.Stop()
			return
		}
	}
	c.fenced.Add(claim)
	c.mu.Lock()
	c.owned[s] = &ownedStream{lease: l, claim: claim}
	c.mu.Unlock()
	if ev.Reason.Handover() {
		c.handovers.WithLabelValues(string(ev.Reason)).Inc()
	}
	attrs := []any{"stream", s, "reason", string(ev.Reason), "token", l.Token().String(), "checkpoint_epoch", claim.Epoch()}
	if cur, ok, _ := claim.Load(ctx, s); ok {
		attrs = append(attrs, "resume_from", cur)
	} else {
		attrs = append(attrs, "resume_from", "none (live or since)")
	}
	c.log.Info(fmt.Sprintf("took stream %s (%s)", s, ev.Reason), attrs...)
	// The lease's own clock: when it ends without a release (not renewed in
	// time, fenced, the coordinator stopped), the lane stops at once, even
	// before the Lost event is handled.
	go func() {
		<-l.Context().Done()
		if !errors.Is(context.Cause(l.Context()), cluster.ErrReleased) {
			c.abort(l, causeWord(context.Cause(l.Context())))
		}
	}()
	c.ring()
}

// causeWord names why a lease ended, for the log.
func causeWord(err error) string {
	switch {
	case errors.Is(err, cluster.ErrExpired):
		return string(cluster.ReasonExpired)
	case errors.Is(err, cluster.ErrFenced):
		return string(cluster.ReasonFenced)
	case errors.Is(err, cluster.ErrStopped):
		return string(cluster.ReasonStopped)
	}
	return fmt.Sprint(err)
}

// abort ends the lane of a stream whose lease l ended without a handover:
// no write starts and no checkpoint is saved once it is called.
func (c *clusterMode) abort(l *cluster.Lease, why string) {
	s := l.Stream()
	c.mu.Lock()
	o := c.owned[s]
	mine := o != nil && o.lease == l
	if mine {
		delete(c.owned, s)
	}
	c.mu.Unlock()
	if !mine {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), stopTimeout)
	defer cancel()
	if err := c.d.pipe.Stop(ctx, s, pipeline.Abort); err != nil && !errors.Is(err, pipeline.ErrUnknownStream) {
		c.log.Debug("aborted stream's lane", "stream", s, "err", err)
	}
	c.fenced.Remove(o.claim)
	c.log.Warn(fmt.Sprintf("lost stream %s", s), "stream", s, "reason", why,
		"note", "stopped at once: what was read and not checkpointed is read again by the new owner")
	c.ring()
}

// ring asks the applier to apply the stream set again.
func (c *clusterMode) ring() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// applier applies the stream set whenever the owned set changes, and
// releases each revoked stream once its lane has drained and stopped.
func (c *clusterMode) applier(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.kick:
		}
		c.d.set.apply(ctx)
		running := map[string]bool{}
		for _, st := range c.d.pipe.Status() {
			running[st.Name] = true
		}
		var done []*ownedStream
		c.mu.Lock()
		for s, o := range c.owned {
			if o.revoked != "" && !running[s] {
				delete(c.owned, s)
				done = append(done, o)
			}
		}
		c.mu.Unlock()
		for _, o := range done {
			cur := o.claimCursor()
			c.fenced.Remove(o.claim)
			o.lease.Release()
			c.log.Info(fmt.Sprintf("released stream %s (%s)", o.lease.Stream(), o.revoked), "stream", o.lease.Stream(), "reason", string(o.revoked), "checkpoint", cur)
		}
	}
}

func (o *ownedStream) claimCursor() string {
	cur, _, _ := o.claim.Load(context.Background(), o.claim.Stream())
	return cur
}

// owns is the stream set's ownership filter: the streams held and not
// being handed over.
func (c *clusterMode) owns(name string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	o := c.owned[name]
	return o != nil && o.revoked == "" && o.lease.Valid()
}

// valid reports whether this replica may still write and save stream: its
// lease is valid (a stream being handed over drains under it).
func (c *clusterMode) valid(stream string) bool {
	c.mu.Lock()
	o := c.owned[stream]
	c.mu.Unlock()
	return o != nil && o.lease.Valid()
}

// leave hands every stream over and leaves the cluster, within ctx.
func (c *clusterMode) leave(ctx context.Context) error {
	c.log.Info("leaving the cluster: handing every stream over", "member", c.member)
	if err := c.coord.Leave(ctx); err != nil {
		return fmt.Errorf("cluster: leave: %w", err)
	}
	c.log.Info("left the cluster", "member", c.member)
	return nil
}

// others lists the streams the cluster knows that another member reads, or
// nobody yet, for /v1/streams.
func (c *clusterMode) others() []StreamStatus {
	st := c.coord.Status()
	var out []StreamStatus
	seen := map[string]bool{}
	for _, m := range st.Members {
		if m.ID == c.member {
			continue
		}
		for _, s := range m.Streams {
			seen[s] = true
			out = append(out, StreamStatus{Name: s, Owner: m.ID, State: streamNotOwned})
		}
	}
	c.mu.Lock()
	desired := c.desired
	c.mu.Unlock()
	for _, s := range desired {
		if !seen[s] && !slices.Contains(st.Owned, s) {
			out = append(out, StreamStatus{Name: s, State: streamNotOwned})
		}
	}
	return out
}

// close ends what open created but the pipeline's store does not close.
func (c *clusterMode) close() {
	if c.closeKafka != nil {
		c.closeKafka()
		c.closeKafka = nil
	}
}

// clusterStore is the pipeline's checkpoint store in cluster mode: each
// stream through its claim, and only while its lease is valid.
type clusterStore struct{ c *clusterMode }

func (s clusterStore) Load(ctx context.Context, stream string) (string, bool, error) {
	if !s.c.valid(stream) {
		return "", false, fmt.Errorf("checkpoint of stream %s: %w", stream, errNotOwner)
	}
	return s.c.fenced.Load(ctx, stream)
}

func (s clusterStore) Save(ctx context.Context, stream, cursor string) error {
	if !s.c.valid(stream) {
		return fmt.Errorf("checkpoint of stream %s: %w", stream, errNotOwner)
	}
	return s.c.fenced.Save(ctx, stream, cursor)
}

func (s clusterStore) Close() error {
	err := s.c.fenced.Close()
	if s.c.claimer != nil {
		err = errors.Join(err, s.c.claimer.Close())
	}
	return err
}

// fencedSink refuses the records of a stream this replica no longer owns,
// before they reach the broker.
type fencedSink struct {
	sink
	c *clusterMode
}

func (f fencedSink) Write(ctx context.Context, recs []ingest.Record) error {
	for i := range recs {
		if s, ok := recs[i].Header(pipeline.HeaderStream); ok && !f.c.valid(s) {
			return fmt.Errorf("stream %s: %w", s, errNotOwner)
		}
	}
	return f.sink.Write(ctx, recs)
}
