package reliability

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/restless-stream/ingest/checkpoint"
	"github.com/restless-stream/ingest/cluster"
	"github.com/restless-stream/ingest/internal/testenv"
)

// Several replicas of one cluster (INGEST.md, "Several replicas"), each a
// real process, sharing rate-limited firehoses through the broker: they
// settle to a balanced share, and every fault (kill -9, a rolling restart,
// scaling 2→4→2, a pause of 3 × lease_ttl) ends with every stream owned
// again, within lease_ttl and a margin after a kill or a pause. At the end
// every event up to each stream's checkpoint is in the broker: none lost;
// on JetStream none twice, on Kafka at most one batch per stream and
// failover twice.
//
// Default: 3 replicas × 9 streams at 100 events/s; INGEST_RELIABILITY=full:
// 3 × 30 at 200 events/s.

type replicaSet struct {
	t       *testing.T
	u       *upstream
	dir     string
	cfg     string // the configuration file every replica runs
	names   []string
	fhs     []firehose
	ttl     time.Duration
	batch   int
	cluster string           // cluster.name
	running map[string]*proc // member → process
	all     []*proc          // every process started, for the logs
	load    func(stream string) (string, bool)
	read    func() []landed
}

func newReplicaSet(t *testing.T, sink, ckpt string, ttl time.Duration, dest func(name string) string) *replicaSet {
	t.Helper()
	u := newUpstream(t)
	rs := &replicaSet{t: t, u: u, dir: t.TempDir(), ttl: ttl, batch: 64, running: map[string]*proc{}}
	cfg := daemonCfg{upstream: u.url, checkpoint: "unused", http: true, sink: sink, batch: rs.batch}
	n, rate := scale(9, 30), scale(100.0, 200.0)
	for i := range n {
		name := "rp" + strconv.Itoa(i)
		fh := u.newFirehose(t, "fh_"+name, "", 0, rate, 300)
		rs.names = append(rs.names, name)
		rs.fhs = append(rs.fhs, fh)
		cfg.streams = append(cfg.streams, streamCfg{name: name, streamID: fh.id, dest: dest(name), reconnMax: "1s"})
	}
	y := cfg.yaml()
	y = regexp.MustCompile(`(?m)^checkpoint: .*$`).ReplaceAllString(y, ckpt)
	rs.cluster = fmt.Sprintf("rel-%d", time.Now().UnixNano()%1_000_000_000)
	y += fmt.Sprintf("cluster: {enabled: true, name: %s, lease_ttl: %s}\nshutdown_timeout: 60s\n", rs.cluster, ttl)
	rs.cfg = writeFile(t, rs.dir, "ingest.yaml", y)
	return rs
}

// start runs replica member.
func (rs *replicaSet) start(member string) {
	rs.t.Helper()
	p := start(rs.t, 30*time.Minute, map[string]string{"RESTLESS_API_KEY": apiKey, "INGEST_CLUSTER__MEMBER": member}, "run", "-c", rs.cfg)
	p.name = member
	p.http = p.waitOutput(regexp.MustCompile(`http=http://(127\.0\.0\.1:\d+)`), 30*time.Second)[1]
	rs.running[member] = p
	rs.all = append(rs.all, p)
}

// stop sends SIGTERM to member and waits for its exit 0: its streams are
// handed over.
func (rs *replicaSet) stop(member string) {
	rs.t.Helper()
	p := rs.running[member]
	p.signal(syscall.SIGTERM)
	if code := p.wait(2 * time.Minute); code != 0 {
		rs.t.Fatalf("%s: exit code %d after SIGTERM, want 0", member, code)
	}
	delete(rs.running, member)
}

// settle waits until the running replicas own every stream between them,
// each ⌊S/R⌋ or ⌈S/R⌉, and returns how long that took.
func (rs *replicaSet) settle(timeout time.Duration, what string) time.Duration {
	rs.t.Helper()
	t0 := time.Now()
	s, r := len(rs.names), len(rs.running)
	lo, hi := s/r, (s+r-1)/r
	waitForWhy(rs.t, timeout, what, func() string {
		total := 0
		var shares []string
		for m, p := range rs.running {
			if p.exited() {
				rs.t.Fatalf("%s exited (code %d)", m, p.code)
			}
			mt, err := p.metrics()
			if err != nil {
				return fmt.Sprintf("%s: %v", m, err)
			}
			n := int(mt["ingest_streams_owned"])
			if int(mt["ingest_cluster_members"]) != r {
				return fmt.Sprintf("%s sees %v members, want %d", m, mt["ingest_cluster_members"], r)
			}
			shares = append(shares, fmt.Sprintf("%s:%d", m, n))
			if n < lo || n > hi {
				return fmt.Sprintf("shares %v, want %d or %d each", shares, lo, hi)
			}
			total += n
		}
		if total != s {
			return fmt.Sprintf("shares %v own %d of %d streams", shares, total, s)
		}
		return ""
	})
	return time.Since(t0)
}

// flowing waits until every stream published more events, on whichever
// replica owns it.
func (rs *replicaSet) flowing() {
	rs.t.Helper()
	sum := func() map[string]float64 {
		out := map[string]float64{}
		for _, p := range rs.running {
			mt, err := p.metrics()
			if err != nil {
				continue
			}
			for _, s := range rs.names {
				out[s] += mt.stream("ingest_events_published_total", s)
			}
		}
		return out
	}
	from := sum()
	waitForWhy(rs.t, 60*time.Second, "every stream publishing", func() string {
		now := sum()
		for _, s := range rs.names {
			if now[s] <= from[s] {
				return s + " publishes nothing"
			}
		}
		return ""
	})
}

// logs is every replica's log so far.
func (rs *replicaSet) logs() string {
	var b strings.Builder
	for _, p := range rs.all {
		b.WriteString(p.stderr.String())
	}
	return b.String()
}

// finish stops every replica and counts, per stream, what landed against
// the events up to its checkpoint.
func (rs *replicaSet) finish(faults int, maxDupPerFailover int64) {
	t := rs.t
	for m := range rs.running {
		rs.stop(m)
	}
	logs := rs.logs()
	got := byStream(rs.read())
	var all tally
	var bound int64
	for i, s := range rs.names {
		cursor, ok := rs.load(s)
		if !ok {
			t.Errorf("stream %s: no checkpoint", s)
			continue
		}
		last, err := strconv.ParseInt(cursor, 10, 64)
		if err != nil {
			t.Fatalf("checkpoint of %s: %q", s, cursor)
		}
		fh := rs.fhs[i]
		fh.count = last - fh.start
		for _, r := range got[s] { // published after the checkpoint: expected too
			if id, err := strconv.ParseInt(r.id(), 10, 64); err == nil && id-fh.start > fh.count && id-fh.start < 1<<40 {
				fh.count = id - fh.start
			}
		}
		tl := count(fh.ids(), got[s])
		failovers := int64(strings.Count(logs, fmt.Sprintf(`msg="took stream %s (failover)"`, s)))
		allowed := failovers * maxDupPerFailover
		bound += allowed
		if tl.lost != 0 || tl.outOfOrder != 0 || tl.unexpected != 0 || tl.dup > allowed {
			t.Errorf("stream %s: offered %d, in broker %d: %d lost (first %s), %d duplicated (%d failovers allow %d), %d out of order, %d unexpected",
				s, tl.sent, tl.inBroker, tl.lost, tl.firstLost, tl.dup, failovers, allowed, tl.outOfOrder, tl.unexpected)
		}
		all.add(tl)
	}
	handovers := strings.Count(logs, `msg="took stream `)
	t.Logf("%d streams, %d takeovers: offered %d, in broker %d, lost %d, duplicated %d (bound %d)", len(rs.names), handovers, all.sent, all.inBroker, all.lost, all.dup, bound)
	b := "0 lost, 0 duplicated"
	if maxDupPerFailover > 0 {
		b = fmt.Sprintf("0 lost, ≤ %d duplicated (one batch per stream and failover)", bound)
	}
	record(t, Row{Scenario: t.Name(), Runs: faults, Sent: all.sent, InBroker: all.inBroker, Lost: all.lost, Duplicated: all.dup, Bound: b})
	if strings.Contains(logs, "level=ERROR") {
		for _, l := range strings.Split(logs, "\n") {
			if strings.Contains(l, "level=ERROR") {
				t.Errorf("a replica logged an error: %s", l)
				break
			}
		}
	}
}

// scenarios runs Settle, Kill -9, RollingRestart, Scale 2→4→2 and Pause,
// and returns how many faults it injected.
func (rs *replicaSet) scenarios() int {
	t := rs.t
	faults := 0
	margin := rs.ttl + 5*time.Second

	// Settle: three replicas, each ⌊S/3⌋ or ⌈S/3⌉.
	for _, m := range []string{"r1", "r2", "r3"} {
		rs.start(m)
	}
	t.Logf("settle: %v", rs.settle(2*time.Minute, "three replicas settling"))
	rs.flowing()

	// Kill -9: r3's streams are owned again within lease_ttl + 5s.
	rs.running["r3"].kill()
	delete(rs.running, "r3")
	faults++
	if d := rs.settle(margin+30*time.Second, "r3's streams taken over after its kill"); d > margin {
		t.Errorf("kill -9: the streams were owned again after %v, want within lease_ttl + 5s (%v)", d, margin)
	} else {
		t.Logf("kill -9: owned again after %v", d)
	}
	rs.flowing()
	rs.start("r3")
	rs.settle(2*time.Minute, "r3 back")

	// RollingRestart: each replica in turn stops (SIGTERM) and starts again.
	for _, m := range []string{"r1", "r2", "r3"} {
		rs.stop(m)
		faults++
		rs.settle(time.Minute, "handover while "+m+" restarts")
		rs.start(m)
		rs.settle(time.Minute, m+" back after its restart")
	}
	rs.flowing()

	// Scale 2→4→2.
	rs.stop("r3")
	rs.settle(time.Minute, "two replicas")
	rs.start("r3")
	rs.start("r4")
	rs.settle(2*time.Minute, "four replicas")
	rs.flowing()
	rs.stop("r3")
	rs.stop("r4")
	faults += 4
	rs.settle(time.Minute, "two replicas again")
	rs.flowing()

	// Pause r2 for 3 × lease_ttl: r1 takes everything within lease_ttl + 5s;
	// resumed, r2 learns it lost its streams and gets its share back.
	p := rs.running["r2"]
	p.signal(syscall.SIGSTOP)
	paused := time.Now()
	delete(rs.running, "r2")
	faults++
	if d := rs.settle(margin+30*time.Second, "r2's streams taken over during its pause"); d > margin {
		t.Errorf("pause: the streams were owned again after %v, want within lease_ttl + 5s (%v)", d, margin)
	}
	time.Sleep(time.Until(paused.Add(3 * rs.ttl)))
	p.signal(syscall.SIGCONT)
	rs.running["r2"] = p
	p.waitOutput(regexp.MustCompile(`msg="lost stream `), 30*time.Second)
	rs.settle(2*time.Minute, "r2 back after its pause")
	rs.flowing()
	return faults
}

// TestReplicasJetStream: the scenarios on the shared JetStream server.
func TestReplicasJetStream(t *testing.T) {
	begin(t)
	url := testenv.NATS(t)
	stream, base := jsStreamName(t, url)
	bucket := "rel_ckpt_" + strings.ToLower(stream)
	rs := newReplicaSet(t,
		fmt.Sprintf("type: nats\n  nats: {url: %q, stream: %s, base_subject: %q, duplicate_window: 10m}", url, stream, base+".>"),
		fmt.Sprintf("checkpoint: {type: nats_kv, nats_kv_bucket: %s}", bucket),
		2*time.Second, func(name string) string { return base + "." + name })
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	clusterName := rs.cluster
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = js.DeleteKeyValue(ctx, bucket)
		_ = js.DeleteKeyValue(ctx, cluster.Bucket(clusterName))
	})
	rs.read = func() []landed { return readJetStream(t, url, stream) }
	rs.load = func(s string) (string, bool) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		st, err := checkpoint.NewNATSKV(ctx, js, bucket)
		if err != nil {
			t.Fatal(err)
		}
		cur, ok, err := st.Load(ctx, s)
		if err != nil {
			t.Fatal(err)
		}
		return cur, ok
	}
	faults := rs.scenarios()
	rs.finish(faults, 0)
}

// TestReplicasKafka: the scenarios on kfake, through its group
// coordinator, with checkpoints in a compacted topic.
func TestReplicasKafka(t *testing.T) {
	begin(t)
	kc, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(kc.Close)
	addr := kc.ListenAddrs()[0]
	rs := newReplicaSet(t,
		fmt.Sprintf("type: kafka\n  kafka: {brokers: [%q], create_topics: true, partitions: 3}", addr),
		"checkpoint: {type: kafka, kafka_topic: rel_checkpoints}",
		6*time.Second, func(name string) string { return "restless." + name })
	topics := make([]string, len(rs.names))
	for i, s := range rs.names {
		topics[i] = "restless." + s
	}
	rs.read = func() []landed { return readKafka(t, []string{addr}, topics) }
	// The store that reads the checkpoints back tails the topic while the
	// replicas run, as theirs do: reading it whole at the end is slow on
	// kfake, which does not compact.
	tr := &kafka.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	store, err := checkpoint.NewKafka(ctx, checkpoint.KafkaConfig{Client: &kafka.Client{Addr: kafka.TCP(addr), Transport: tr, Timeout: 10 * time.Second}, Topic: "rel_checkpoints"})
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	rs.load = func(s string) (string, bool) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		cur, ok, err := store.Load(ctx, s)
		if err != nil {
			t.Fatal(err)
		}
		return cur, ok
	}
	faults := rs.scenarios()
	rs.finish(faults, int64(rs.batch))
}
