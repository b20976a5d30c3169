package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/restless-stream/ingest/checkpoint"
	"github.com/restless-stream/ingest/cluster"
	"github.com/restless-stream/ingest/emulator"
	"github.com/restless-stream/ingest/internal/testenv"
	"github.com/restless-stream/ingest/pipeline"
)

// clusterRig is a set of replicas of one cluster reading rate-limited
// firehoses into one JetStream stream of the shared server, with
// checkpoints in a nats_kv bucket. Every name is unique to the test.
type clusterRig struct {
	t       *testing.T
	em      *emulator.Emulator
	dir     string
	js      jetstream.JetStream
	jsName  string // the JetStream stream
	subject string // its subjects' prefix
	bucket  string // the checkpoints
	name    string // cluster.name
	ttl     time.Duration
	streams []string
	starts  map[string]int64 // stream → the event id before its first
}

func newClusterRig(t *testing.T, streams int, ttl time.Duration) *clusterRig {
	t.Helper()
	url := testenv.NATS(t)
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	r := &clusterRig{
		t: t, em: newTestEmulator(t), dir: t.TempDir(), js: js, ttl: ttl,
		jsName: uniqueName("CLU"), bucket: uniqueName("clu_ckpt_"), name: uniqueName("clu-"),
		starts: map[string]int64{},
	}
	r.subject = strings.ToLower(r.jsName)
	t.Cleanup(nc.Close) // registered first: runs after the deletions
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = js.DeleteStream(ctx, r.jsName)
		_ = js.DeleteKeyValue(ctx, r.bucket)
		_ = js.DeleteKeyValue(ctx, cluster.Bucket(r.name))
	})
	for i := range streams {
		name := fmt.Sprintf("s%d", i)
		start := int64(i+1) * 1_000_000
		if _, err := r.em.CreateFirehose(emulator.FirehoseConfig{ID: "fh_" + name, EventBytes: 300, Rate: 100, StartID: start}); err != nil {
			t.Fatal(err)
		}
		r.streams = append(r.streams, name)
		r.starts[name] = start
	}
	return r
}

// config is member's configuration file.
func (r *clusterRig) config(member string) string {
	r.t.Helper()
	var b strings.Builder
	for _, s := range r.streams {
		fmt.Fprintf(&b, "  - {name: %s, stream_id: fh_%s, destination: %s.%s, reconnect: {initial: 100ms, max: 1s}}\n", s, s, r.subject, s)
	}
	dir := filepath.Join(r.dir, member)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		r.t.Fatal(err)
	}
	return writeConfig(r.t, dir, fmt.Sprintf(`
restless: {base_url: %[1]s, stream_base_url: %[1]s}
streams:
%[2]s
sink: {type: nats, nats: {url: nats://127.0.0.1:4222, stream: %[3]s, base_subject: "%[4]s.>", duplicate_window: 10m}}
checkpoint: {type: nats_kv, nats_kv_bucket: %[5]s}
cluster: {enabled: true, name: %[6]s, member: %[7]s, lease_ttl: %[8]s}
http: {addr: "127.0.0.1:0"}
shutdown_timeout: 20s
log: {level: info}
`, r.em.URL(), b.String(), r.jsName, r.subject, r.bucket, r.name, member, r.ttl))
}

// replica is one running member.
type replica struct {
	*proc
	member string
	http   string
}

func (r *clusterRig) start(member string) *replica {
	r.t.Helper()
	p := startIngest(r.t, map[string]string{"RESTLESS_API_KEY": testAPIKey}, []string{testAPIKey}, "run", "-c", r.config(member))
	addr := p.waitOutput(regexp.MustCompile(`http=http://(127\.0\.0\.1:\d+)`), 30*time.Second)[1]
	return &replica{proc: p, member: member, http: addr}
}

// metric returns one series of the replica's /metrics, -1 when absent or
// unreachable.
func (rp *replica) metric(series string) float64 {
	resp, err := http.Get("http://" + rp.http + "/metrics")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				return -1
			}
			return f
		}
	}
	return -1
}

func (rp *replica) owned() int { return int(rp.metric("ingest_streams_owned")) }

// waitOwned waits until each replica owns want[i] streams.
func waitOwned(t *testing.T, timeout time.Duration, reps []*replica, want ...int) {
	t.Helper()
	waitUntil(t, timeout, fmt.Sprintf("replicas owning %v streams", want), func() bool {
		for i, rp := range reps {
			if rp.owned() != want[i] {
				return false
			}
		}
		return true
	})
}

// records reads the JetStream stream: the event ids per stream, in the
// order the stream stored them.
func (r *clusterRig) records() map[string][]int64 {
	r.t.Helper()
	ctx := ctxT(r.t, 60*time.Second)
	cons, err := r.js.OrderedConsumer(ctx, r.jsName, jetstream.OrderedConsumerConfig{})
	if err != nil {
		r.t.Fatal(err)
	}
	out := map[string][]int64{}
	for {
		batch, err := cons.Fetch(2000, jetstream.FetchMaxWait(time.Second))
		if err != nil {
			r.t.Fatal(err)
		}
		n := 0
		for m := range batch.Messages() {
			n++
			id, err := strconv.ParseInt(m.Headers().Get(pipeline.HeaderEventID), 10, 64)
			if err != nil {
				r.t.Fatalf("record at %s: event id %q", m.Subject(), m.Headers().Get(pipeline.HeaderEventID))
			}
			s := m.Headers().Get(pipeline.HeaderStream)
			out[s] = append(out[s], id)
		}
		if n == 0 {
			return out
		}
	}
}

// checkExactlyOnce checks every stream's records in the JetStream stream:
// its events from the first on, each once, in order.
func (r *clusterRig) checkExactlyOnce(got map[string][]int64) {
	r.t.Helper()
	for _, s := range r.streams {
		ids := got[s]
		if len(ids) == 0 {
			r.t.Errorf("stream %s: no record", s)
			continue
		}
		if ids[0] != r.starts[s]+1 {
			r.t.Errorf("stream %s: first record is event %d, want %d", s, ids[0], r.starts[s]+1)
		}
		for i := 1; i < len(ids); i++ {
			if ids[i] != ids[i-1]+1 {
				r.t.Errorf("stream %s: event %d follows %d (record %d of %d): a gap, a repeat or a reorder", s, ids[i], ids[i-1], i, len(ids))
				break
			}
		}
	}
}

// checkpoints reads every stream's stored checkpoint as a number, 0 for none.
func (r *clusterRig) checkpoints() map[string]int64 {
	r.t.Helper()
	st, err := checkpoint.NewNATSKV(ctxT(r.t, 10*time.Second), r.js, r.bucket)
	if err != nil {
		r.t.Fatal(err)
	}
	out := map[string]int64{}
	for _, s := range r.streams {
		cur, ok, err := st.Load(ctxT(r.t, 10*time.Second), s)
		if err != nil {
			r.t.Fatal(err)
		}
		if ok {
			out[s], _ = strconv.ParseInt(cur, 10, 64)
		}
	}
	return out
}

// TestClusterNATSBalanceAndHandover: two replicas share four streams two
// and two; a SIGTERM hands the leaving replica's streams over, and the
// JetStream stream holds every event of every stream once, in order.
func TestClusterNATSBalanceAndHandover(t *testing.T) {
	r := newClusterRig(t, 4, 3*time.Second)
	a := r.start("replica-a")
	waitOwned(t, 20*time.Second, []*replica{a}, 4)
	if v := a.metric("ingest_cluster_members"); v != 1 {
		t.Errorf("ingest_cluster_members = %v with one replica", v)
	}
	time.Sleep(time.Second) // let the streams publish
	b := r.start("replica-b")
	waitOwned(t, 30*time.Second, []*replica{a, b}, 2, 2)
	for _, rp := range []*replica{a, b} {
		if v := rp.metric("ingest_cluster_members"); v != 2 {
			t.Errorf("%s: ingest_cluster_members = %v, want 2", rp.member, v)
		}
		resp, err := http.Get("http://" + rp.http + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("%s: /readyz %d", rp.member, resp.StatusCode)
		}
	}
	if c := strings.Count(b.stderr.String(), `msg="took stream `); c != 2 {
		t.Errorf("replica-b took %d streams, want 2", c)
	}
	if c := strings.Count(a.stderr.String(), `msg="released stream `); c != 2 {
		t.Errorf("replica-a released %d streams, want 2", c)
	}
	if got := b.metric(`ingest_stream_handovers_total{reason="rebalance"}`); got != 2 {
		t.Errorf(`replica-b ingest_stream_handovers_total{reason="rebalance"} = %v, want 2`, got)
	}
	statusOwners(t, a, map[string]int{"replica-a": 2, "replica-b": 2})
	// /v1/streams lists every stream with its owner; those of the other
	// replica as not_owned.
	resp, err := http.Get("http://" + a.http + "/v1/streams")
	if err != nil {
		t.Fatal(err)
	}
	var sts []StreamStatus
	err = json.NewDecoder(resp.Body).Decode(&sts)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if len(sts) != len(r.streams) {
		t.Errorf("/v1/streams lists %d streams, want %d: %+v", len(sts), len(r.streams), sts)
	}
	for _, st := range sts {
		switch {
		case st.Owner == "replica-a" && st.State == streamNotOwned, st.Owner == "replica-b" && st.State != streamNotOwned, st.Owner != "replica-a" && st.Owner != "replica-b":
			t.Errorf("/v1/streams of replica-a: %s owner %q state %s", st.Name, st.Owner, st.State)
		}
	}

	time.Sleep(time.Second)
	a.signal(syscall.SIGTERM)
	if code := a.wait(30 * time.Second); code != 0 {
		t.Fatalf("replica-a exit code %d after SIGTERM", code)
	}
	waitOwned(t, 20*time.Second, []*replica{b}, 4)
	if got := b.metric(`ingest_stream_handovers_total{reason="shutdown"}`); got != 2 {
		t.Errorf(`replica-b ingest_stream_handovers_total{reason="shutdown"} = %v, want 2`, got)
	}
	if strings.Contains(a.stderr.String(), "lost stream") || strings.Contains(b.stderr.String(), "lost stream") {
		t.Error("a stream was lost during clean handovers")
	}
	time.Sleep(time.Second)
	b.signal(syscall.SIGTERM)
	if code := b.wait(30 * time.Second); code != 0 {
		t.Fatalf("replica-b exit code %d after SIGTERM", code)
	}
	got := r.records()
	r.checkExactlyOnce(got)
	cps := r.checkpoints()
	for _, s := range r.streams {
		if n := len(got[s]); n > 0 && cps[s] != got[s][n-1] {
			t.Errorf("stream %s: checkpoint %d, last record %d", s, cps[s], got[s][n-1])
		}
	}
}

// statusOwners checks GET /v1/cluster: the members and how many streams
// each reads.
func statusOwners(t *testing.T, rp *replica, want map[string]int) {
	t.Helper()
	var cs ClusterStatus
	waitUntil(t, 10*time.Second, "/v1/cluster to show every member", func() bool {
		resp, err := http.Get("http://" + rp.http + "/v1/cluster")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		cs = ClusterStatus{}
		if err := json.NewDecoder(resp.Body).Decode(&cs); err != nil {
			return false
		}
		got := map[string]int{}
		for _, m := range cs.Members {
			got[m.ID] = len(m.Streams)
		}
		if len(got) != len(want) {
			return false
		}
		for k, v := range want {
			if got[k] != v {
				return false
			}
		}
		return true
	})
}

// TestClusterNATSPausedReplicaIsFenced: a replica paused (SIGSTOP) past its
// lease loses its streams to the other; resumed, it stops them at once,
// publishes nothing more for them and moves no checkpoint back.
func TestClusterNATSPausedReplicaIsFenced(t *testing.T) {
	r := newClusterRig(t, 4, 2*time.Second)
	a := r.start("replica-a")
	waitOwned(t, 20*time.Second, []*replica{a}, 4)
	b := r.start("replica-b")
	waitOwned(t, 30*time.Second, []*replica{a, b}, 2, 2)
	time.Sleep(time.Second)

	// b's streams, from its log.
	var lostB []string
	for _, m := range regexp.MustCompile(`msg="took stream (\S+) `).FindAllStringSubmatch(b.stderr.String(), -1) {
		lostB = append(lostB, m[1])
	}
	if len(lostB) != 2 {
		t.Fatalf("replica-b took %v", lostB)
	}
	published := map[string]float64{}
	if err := b.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	stopped := time.Now()
	defer func() { _ = b.cmd.Process.Signal(syscall.SIGCONT) }()
	waitOwned(t, r.ttl+10*time.Second, []*replica{a}, 4)
	if d := time.Since(stopped); d > r.ttl+5*time.Second {
		t.Errorf("the paused replica's streams moved after %v, lease_ttl %v", d, r.ttl)
	}
	if got := a.metric(`ingest_stream_handovers_total{reason="failover"}`); got != 2 {
		t.Errorf(`replica-a ingest_stream_handovers_total{reason="failover"} = %v, want 2`, got)
	}
	time.Sleep(time.Second) // a publishes them for a while
	before := r.checkpoints()

	if err := b.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	for _, s := range lostB {
		b.waitOutput(regexp.MustCompile(`msg="lost stream `+s+`"`), 10*time.Second)
	}
	for _, s := range lostB {
		published[s] = b.metric(fmt.Sprintf(`ingest_events_published_total{stream=%q}`, s))
	}
	// b rejoins and gets its share again; the lost streams come back to it
	// only through a handover from a.
	waitOwned(t, 30*time.Second, []*replica{a, b}, 2, 2)
	time.Sleep(time.Second)
	after := r.checkpoints()
	for _, s := range r.streams {
		if after[s] < before[s] {
			t.Errorf("stream %s: checkpoint moved back from %d to %d", s, before[s], after[s])
		}
	}
	// After it learnt of the loss, b published nothing more for a stream
	// it did not take back (by a handover from a) since.
	logB := b.stderr.String()
	for _, s := range lostB {
		i := strings.Index(logB, `msg="lost stream `+s+`"`)
		if strings.Contains(logB[i:], `msg="took stream `+s+` `) {
			continue
		}
		if now := b.metric(fmt.Sprintf(`ingest_events_published_total{stream=%q}`, s)); now != published[s] {
			t.Errorf("stream %s: replica-b published after it lost the stream: %v records, then %v", s, published[s], now)
		}
	}
	for _, rp := range []*replica{a, b} {
		rp.signal(syscall.SIGTERM)
	}
	for _, rp := range []*replica{a, b} {
		if code := rp.wait(30 * time.Second); code != 0 {
			t.Errorf("%s exit code %d", rp.member, code)
		}
	}
	r.checkExactlyOnce(r.records())
}

// TestClusterKafkaHandover: two replicas share four streams through the
// Kafka group coordinator (kfake) with checkpoints in a compacted topic; a
// join and a SIGTERM hand streams over, and every stream's topic holds its
// events from the first on, each once, in order.
func TestClusterKafkaHandover(t *testing.T) {
	kc, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer kc.Close()
	em := newTestEmulator(t)
	dir := t.TempDir()
	var streams []string
	var b strings.Builder
	starts := map[string]int64{}
	for i := range 4 {
		s := fmt.Sprintf("k%d", i)
		start := int64(i+1) * 1_000_000
		if _, err := em.CreateFirehose(emulator.FirehoseConfig{ID: "fh_" + s, EventBytes: 300, Rate: 100, StartID: start}); err != nil {
			t.Fatal(err)
		}
		streams, starts[s] = append(streams, s), start
		fmt.Fprintf(&b, "  - {name: %s, stream_id: fh_%s, reconnect: {initial: 100ms, max: 1s}}\n", s, s)
	}
	start := func(member string) *replica {
		mdir := filepath.Join(dir, member)
		if err := os.MkdirAll(mdir, 0o700); err != nil {
			t.Fatal(err)
		}
		cfg := writeConfig(t, mdir, fmt.Sprintf(`
restless: {base_url: %[1]s, stream_base_url: %[1]s}
streams:
%[2]s
sink: {type: kafka, kafka: {brokers: [%[3]s], create_topics: true, partitions: 3}}
checkpoint: {type: kafka, kafka_topic: cluster_checkpoints}
cluster: {enabled: true, name: kafka-e2e, member: %[4]s, lease_ttl: 6s}
http: {addr: "127.0.0.1:0"}
shutdown_timeout: 20s
`, em.URL(), b.String(), kc.ListenAddrs()[0], member))
		p := startIngest(t, map[string]string{"RESTLESS_API_KEY": testAPIKey}, []string{testAPIKey}, "run", "-c", cfg)
		addr := p.waitOutput(regexp.MustCompile(`http=http://(127\.0\.0\.1:\d+)`), 30*time.Second)[1]
		return &replica{proc: p, member: member, http: addr}
	}
	a := start("replica-a")
	waitOwned(t, 30*time.Second, []*replica{a}, 4)
	time.Sleep(time.Second)
	bb := start("replica-b")
	waitOwned(t, 30*time.Second, []*replica{a, bb}, 2, 2)
	if got := bb.metric(`ingest_stream_handovers_total{reason="rebalance"}`); got != 2 {
		t.Errorf(`replica-b ingest_stream_handovers_total{reason="rebalance"} = %v, want 2`, got)
	}
	time.Sleep(time.Second)
	a.signal(syscall.SIGTERM)
	if code := a.wait(30 * time.Second); code != 0 {
		t.Fatalf("replica-a exit code %d after SIGTERM", code)
	}
	waitOwned(t, 30*time.Second, []*replica{bb}, 4)
	if got := bb.metric(`ingest_stream_handovers_total{reason="shutdown"}`); got != 2 {
		t.Errorf(`replica-b ingest_stream_handovers_total{reason="shutdown"} = %v, want 2`, got)
	}
	time.Sleep(time.Second)
	bb.signal(syscall.SIGTERM)
	if code := bb.wait(30 * time.Second); code != 0 {
		t.Fatalf("replica-b exit code %d after SIGTERM", code)
	}
	for _, rp := range []*replica{a, bb} {
		if strings.Contains(rp.stderr.String(), "lost stream") {
			t.Errorf("%s lost a stream during clean handovers", rp.member)
		}
	}

	topics := make([]string, len(streams))
	for i, s := range streams {
		topics[i] = "restless." + s
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(kc.ListenAddrs()...), kgo.ConsumeTopics(topics...), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	got := map[string][]int64{}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for ctx.Err() == nil {
		fs := cl.PollFetches(ctx)
		fs.EachRecord(func(r *kgo.Record) {
			for _, h := range r.Headers {
				if h.Key == pipeline.HeaderEventID {
					id, _ := strconv.ParseInt(string(h.Value), 10, 64)
					got[string(r.Key)] = append(got[string(r.Key)], id)
				}
			}
		})
	}
	for _, s := range streams {
		ids := got[s]
		if len(ids) == 0 || ids[0] != starts[s]+1 {
			t.Errorf("stream %s: %d records, first %v, want %d", s, len(ids), ids[:min(1, len(ids))], starts[s]+1)
			continue
		}
		for i := 1; i < len(ids); i++ {
			if ids[i] != ids[i-1]+1 {
				t.Errorf("stream %s: event %d follows %d (record %d of %d): a gap, a repeat or a reorder", s, ids[i], ids[i-1], i, len(ids))
				break
			}
		}
		t.Logf("stream %s: %d records", s, len(ids))
	}
}

// TestClusterNATSKillFailover: a replica killed (SIGKILL) has its streams
// taken over within lease_ttl (and a margin), from their checkpoints;
// JetStream drops the replays, so every event is stored once, in order.
func TestClusterNATSKillFailover(t *testing.T) {
	r := newClusterRig(t, 4, 2*time.Second)
	a := r.start("replica-a")
	waitOwned(t, 20*time.Second, []*replica{a}, 4)
	b := r.start("replica-b")
	waitOwned(t, 30*time.Second, []*replica{a, b}, 2, 2)
	time.Sleep(time.Second)
	if err := b.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	b.wait(10 * time.Second)
	waitOwned(t, r.ttl+10*time.Second, []*replica{a}, 4)
	if d := time.Since(killed); d > r.ttl+5*time.Second {
		t.Errorf("the killed replica's streams moved after %v, lease_ttl %v", d, r.ttl)
	}
	if got := a.metric(`ingest_stream_handovers_total{reason="failover"}`); got != 2 {
		t.Errorf(`ingest_stream_handovers_total{reason="failover"} = %v, want 2`, got)
	}
	if v := a.metric("ingest_cluster_members"); v != 1 {
		t.Errorf("ingest_cluster_members = %v after the kill, want 1", v)
	}
	time.Sleep(time.Second)
	a.signal(syscall.SIGTERM)
	if code := a.wait(30 * time.Second); code != 0 {
		t.Fatalf("replica-a exit code %d", code)
	}
	r.checkExactlyOnce(r.records())
}

// TestClusterNATSReloadSharesNewStreams: a reload that adds streams (on
// every replica, as a ConfigMap change does) gives them to the coordinator,
// which shares them out; a reload that removes them takes them away.
func TestClusterNATSReloadSharesNewStreams(t *testing.T) {
	r := newClusterRig(t, 2, 3*time.Second)
	a, b := r.start("replica-a"), r.start("replica-b")
	waitOwned(t, 30*time.Second, []*replica{a, b}, 1, 1)
	for i := 2; i < 6; i++ {
		name := fmt.Sprintf("s%d", i)
		start := int64(i+1) * 1_000_000
		if _, err := r.em.CreateFirehose(emulator.FirehoseConfig{ID: "fh_" + name, EventBytes: 300, Rate: 100, StartID: start}); err != nil {
			t.Fatal(err)
		}
		r.streams = append(r.streams, name)
		r.starts[name] = start
	}
	for _, rp := range []*replica{a, b} {
		r.config(rp.member)
		rp.signal(syscall.SIGHUP)
	}
	waitOwned(t, 30*time.Second, []*replica{a, b}, 3, 3)
	time.Sleep(time.Second)
	r.streams = r.streams[:4]
	for _, rp := range []*replica{a, b} {
		r.config(rp.member)
		rp.signal(syscall.SIGHUP)
	}
	waitOwned(t, 30*time.Second, []*replica{a, b}, 2, 2)
	for _, rp := range []*replica{a, b} {
		rp.signal(syscall.SIGTERM)
	}
	for _, rp := range []*replica{a, b} {
		if code := rp.wait(30 * time.Second); code != 0 {
			t.Errorf("%s exit code %d", rp.member, code)
		}
	}
	r.checkExactlyOnce(r.records())
}
