package reliability

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/restless-stream/ingest/checkpoint"
	"github.com/restless-stream/ingest/internal/natsserver"
)

// clusterLoad is the load of the cluster scenarios: five streams (SSE and
// WebSocket) at 500 events/s each, with no end: the test stops the daemon
// with SIGTERM once the faults are over, and the events that must have
// landed are those up to each stream's checkpoint (the daemon resumes after
// it, so an event it passed and did not publish would be lost for good).
type clusterLoad struct {
	names []string
	fhs   []firehose
	p     *proc
	dir   string
}

const (
	clusterStreams = 5
	clusterRate    = 500
)

func startClusterLoad(t *testing.T, sink string, batch int) *clusterLoad {
	t.Helper()
	u := newUpstream(t)
	l := &clusterLoad{dir: t.TempDir()}
	cfg := daemonCfg{upstream: u.url, checkpoint: filepath.Join(l.dir, "cp"), http: true, sink: sink, batch: batch}
	for i := range clusterStreams {
		name := "cl" + strconv.Itoa(i)
		secret, transport := hmacSecretA, ""
		if i%2 == 1 {
			secret, transport = hmacSecretB, "websocket"
		}
		fh := u.newFirehose(t, "fh_"+name, secret, 0, clusterRate, 300)
		l.names = append(l.names, name)
		l.fhs = append(l.fhs, fh)
		cfg.streams = append(cfg.streams, streamCfg{name: name, transport: transport, streamID: fh.id, secret: secret})
	}
	l.p = runDaemon(t, 30*time.Minute, writeFile(t, l.dir, "ingest.yaml", cfg.yaml()), true)
	l.progress(t, 500, 60*time.Second, "events published before the first fault")
	return l
}

// published returns ingest_events_published_total of every stream.
func (l *clusterLoad) published(t *testing.T) []float64 {
	t.Helper()
	m, err := l.p.metrics()
	if err != nil {
		t.Fatalf("scrape: %v", err)
	}
	out := make([]float64, len(l.names))
	for i, s := range l.names {
		out[i] = m.stream("ingest_events_published_total", s)
	}
	return out
}

// progress waits until every stream published n more events.
func (l *clusterLoad) progress(t *testing.T, n float64, timeout time.Duration, what string) {
	t.Helper()
	from := l.published(t)
	waitForWhy(t, timeout, what, func() string {
		if l.p.exited() {
			t.Fatalf("the daemon exited (code %d)", l.p.code)
		}
		now := l.published(t)
		for i := range now {
			if now[i]-from[i] < n {
				return fmt.Sprintf("%s published %.0f of %.0f", l.names[i], now[i]-from[i], n)
			}
		}
		return ""
	})
}

func (l *clusterLoad) ready(t *testing.T) int {
	t.Helper()
	code, _, err := l.p.get("/readyz")
	if err != nil {
		return 0
	}
	return code
}

// finish stops the daemon with SIGTERM and counts what landed in got, per
// stream, against the events up to each stream's checkpoint.
func (l *clusterLoad) finish(t *testing.T, read func() []landed) (map[string]tally, tally) {
	t.Helper()
	l.p.signal(syscall.SIGTERM)
	if code := l.p.wait(2 * time.Minute); code != 0 {
		t.Fatalf("exit code %d after SIGTERM, want 0", code)
	}
	cp, err := checkpoint.NewFile(filepath.Join(l.dir, "cp"))
	if err != nil {
		t.Fatal(err)
	}
	defer cp.Close()
	got := byStream(read())
	out := map[string]tally{}
	var all tally
	for i, s := range l.names {
		cursor, ok, err := cp.Load(context.Background(), s)
		if err != nil || !ok {
			t.Fatalf("checkpoint of %s: %v (saved: %v)", s, err, ok)
		}
		last, err := strconv.ParseInt(cursor, 10, 64)
		if err != nil {
			t.Fatalf("checkpoint of %s: %q is not an event id of the firehose", s, cursor)
		}
		fh := l.fhs[i]
		fh.count = last - fh.start
		for _, r := range got[s] { // published after the checkpoint: expected too
			if id, err := strconv.ParseInt(r.id(), 10, 64); err == nil && id-fh.start > fh.count && id-fh.start < 1<<40 {
				fh.count = id - fh.start
			}
		}
		tl := count(fh.ids(), got[s])
		t.Logf("%s: checkpoint %d events, %+v", s, last-fh.start, tl)
		out[s] = tl
		all.add(tl)
	}
	return out, all
}

// TestClusterJetStream runs five streams into a stream of three replicas on
// a three-node JetStream cluster and, ten times (twice by default), stops
// the stream's leader, then the meta leader (two of three nodes down: no
// quorum), then starts both again. Every event must land exactly once, in
// order, and /readyz must answer 503 while no quorum exists.
func TestClusterJetStream(t *testing.T) {
	begin(t)
	cycles := scale(2, 10)
	c, err := natsserver.StartCluster(natsserver.ClusterConfig{Nodes: 3, Dir: filepath.Join(t.TempDir(), "js")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Shutdown)
	const stream = "CLUSTER"
	l := startClusterLoad(t, fmt.Sprintf("type: nats\n  nats: {url: %q, stream: %s, duplicate_window: 5m, replicas: 3}", c.ClientURLs(), stream), 0)
	leaderOf := func(what string, f func() *natsserver.Node) *natsserver.Node {
		var n *natsserver.Node
		waitFor(t, 2*time.Minute, what, func() bool { n = f(); return n != nil })
		return n
	}
	var noQuorum, readyLag time.Duration
	for k := range cycles {
		l.progress(t, 200, 3*time.Minute, fmt.Sprintf("cycle %d: events published", k+1))
		sl := leaderOf("a stream leader", func() *natsserver.Node { return c.StreamLeader(stream) })
		sl.Stop()
		t.Logf("cycle %d: stopped %s, the stream's leader", k+1, sl.Name())
		l.progress(t, 200, 3*time.Minute, fmt.Sprintf("cycle %d: events published with a new stream leader", k+1))
		ml := leaderOf("a meta leader", c.MetaLeader)
		ml.Stop()
		stopped := time.Now()
		t.Logf("cycle %d: stopped %s, the meta leader: two of three nodes down", k+1, ml.Name())
		saw := false
		for time.Since(stopped) < 2*time.Minute && !saw { // bounded; ends at the first 503
			if l.ready(t) == http.StatusServiceUnavailable {
				saw = true
				readyLag = max(readyLag, time.Since(stopped))
				break
			}
			if l.p.exited() {
				t.Fatalf("the daemon exited (code %d) without a quorum", l.p.code)
			}
			time.Sleep(100 * time.Millisecond)
		}
		if !saw {
			t.Errorf("cycle %d: /readyz never answered 503 in 2 minutes without a quorum", k+1)
		}
		time.Sleep(time.Second) // a little longer without a quorum
		noQuorum += time.Since(stopped)
		for _, n := range []*natsserver.Node{sl, ml} {
			if err := n.Restart(); err != nil {
				t.Fatal(err)
			}
		}
		t.Logf("cycle %d: %s and %s started again after %v without a quorum", k+1, sl.Name(), ml.Name(), time.Since(stopped).Round(100*time.Millisecond))
		waitFor(t, 3*time.Minute, "/readyz 200 with the quorum back", func() bool { return l.ready(t) == http.StatusOK })
	}
	l.progress(t, 200, 3*time.Minute, "events published after the last cycle")
	t.Logf("/readyz answered 503 at most %v after the quorum was lost; %v without a quorum in all", readyLag.Round(100*time.Millisecond), noQuorum.Round(time.Second))

	per, all := l.finish(t, func() []landed { return readJetStream(t, c.ClientURLs(), stream) })
	for s, tl := range per {
		checkExactlyOnce(t, s, tl)
	}
	nc, err := nats.Connect(c.ClientURLs())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if st, err := js.Stream(ctx, stream); err != nil {
		t.Error(err)
	} else if r := st.CachedInfo().Config.Replicas; r != 3 {
		t.Errorf("the stream has %d replicas, want 3", r)
	}
	record(t, Row{Scenario: fmt.Sprintf("9. JetStream cluster (3 nodes, replicas 3): stream leader then meta leader stopped and restarted, %d streams × %d/s", clusterStreams, clusterRate),
		Runs: cycles, Sent: all.sent, InBroker: all.inBroker, Lost: all.lost, Duplicated: all.dup,
		Bound: fmt.Sprintf("0 lost, 0 duplicated, order kept; /readyz 503 without a quorum (within %v)", readyLag.Round(100*time.Millisecond))})
}

// TestClusterKafka runs five streams into a kfake cluster of three brokers
// and, ten times (twice by default), moves the leader of every partition to
// another broker, makes the brokers answer NOT_LEADER_OR_FOLLOWER to every
// produce request for a while, and holds one produce request past the
// sink's request timeout before storing it (a slow leader: the client gave
// up on a request the broker then stored). Every event must land at least
// once, in order of first landing (a stream is one partition), with at most
// one batch of repeats per stream and fault, as INGEST.md allows.
func TestClusterKafka(t *testing.T) {
	begin(t)
	rounds := scale(2, 10)
	const batch = 512
	const partitions = 3
	topics := make([]string, clusterStreams)
	for i := range topics {
		topics[i] = "restless.cl" + strconv.Itoa(i)
	}
	c, err := kfake.NewCluster(kfake.NumBrokers(3), kfake.SeedTopics(partitions, topics...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	addrs := c.ListenAddrs()
	l := startClusterLoad(t, fmt.Sprintf("type: kafka\n  kafka: {brokers: [%q, %q, %q]}", addrs[0], addrs[1], addrs[2]), batch)

	const writeTimeout = 10 * time.Second // the sink's request timeout (sink/kafka DefaultWriteTimeout)
	var notLeader, held atomic.Int64      // counted in kfake's goroutine
	for k := range rounds {
		// Every partition's leader moves to the next broker.
		for _, tp := range topics {
			for p := range int32(partitions) {
				if err := c.MoveTopicPartition(tp, p, (c.LeaderFor(tp, p)+1)%3); err != nil {
					t.Fatal(err)
				}
			}
		}
		t.Logf("round %d: partition leaders moved", k+1)
		l.progress(t, 200, 3*time.Minute, fmt.Sprintf("round %d: events published after the leaders moved", k+1))

		// NOT_LEADER_OR_FOLLOWER to every produce request for 1.5s.
		until := time.Now().Add(1500 * time.Millisecond)
		c.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
			if time.Now().After(until) {
				c.DropControl()
				return nil, nil, false // handled as usual
			}
			c.KeepControl()
			notLeader.Add(1)
			r := req.(*kmsg.ProduceRequest)
			resp := r.ResponseKind().(*kmsg.ProduceResponse)
			for _, rt := range r.Topics {
				st := kmsg.NewProduceResponseTopic()
				st.Topic = rt.Topic
				for _, rp := range rt.Partitions {
					sp := kmsg.NewProduceResponseTopicPartition()
					sp.Partition = rp.Partition
					sp.ErrorCode = kerr.NotLeaderForPartition.Code
					st.Partitions = append(st.Partitions, sp)
				}
				resp.Topics = append(resp.Topics, st)
			}
			return resp, nil, true
		})
		time.Sleep(1500 * time.Millisecond)
		l.progress(t, 200, 3*time.Minute, fmt.Sprintf("round %d: events published after NOT_LEADER_OR_FOLLOWER", k+1))

		// One produce request held past the client's timeout, then stored.
		c.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
			held.Add(1)
			c.DropControl() // one request only: a function that does not handle it stays otherwise
			c.SleepControl(func() { time.Sleep(writeTimeout + time.Second) })
			return nil, nil, false
		})
		l.progress(t, 200, 3*time.Minute, fmt.Sprintf("round %d: events published after a request timed out", k+1))
	}
	t.Logf("%d produce requests answered NOT_LEADER_OR_FOLLOWER, %d held past the timeout", notLeader.Load(), held.Load())

	per, all := l.finish(t, func() []landed { return readKafka(t, addrs, topics) })
	faults := 3 * rounds
	for s, tl := range per {
		if tl.lost != 0 || tl.outOfOrder != 0 || tl.unexpected != 0 {
			t.Errorf("%s: offered %d, in broker %d: %d lost (first %s), %d out of order, %d unexpected; want every event at least once, in order",
				s, tl.sent, tl.inBroker, tl.lost, tl.firstLost, tl.outOfOrder, tl.unexpected)
		}
		if limit := int64(faults * batch); tl.dup > limit {
			t.Errorf("%s: %d repeats after %d faults, more than one batch (%d events) per fault (%d)", s, tl.dup, faults, batch, limit)
		}
	}
	record(t, Row{Scenario: fmt.Sprintf("9. Kafka cluster (kfake, 3 brokers): partition leaders moved, NOT_LEADER_OR_FOLLOWER, produce timeouts, %d streams × %d/s", clusterStreams, clusterRate),
		Runs: faults, Sent: all.sent, InBroker: all.inBroker, Lost: all.lost, Duplicated: all.dup,
		Bound: fmt.Sprintf("0 lost, order kept; ≤ %d repeats per stream and fault (one batch)", batch)})
}
