package reliability

import (
	"fmt"
	"net/http"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/restless-stream/ingest/internal/natsserver"
)

// Defaults of the pipeline the daemon runs with (pipeline.batch.max_events
// and the lane buffer of twice that): a lane holds at most buffer+batch
// events, and the source may hold the one frame it is handing over.
const (
	laneBatch  = 512
	laneBuffer = 2 * laneBatch
	laneBound  = laneBuffer + laneBatch + 1
)

// broker is a broker a test can stop and start again.
type broker struct {
	name    string
	sink    string // the sink section of the configuration
	stop    func()
	restart func()
	read    func(streams []string) []landed
}

// outage runs two streams into b, stops b for `down` while events flow, and
// starts it again. While it is away /readyz must answer 503 and each lane
// must hold no more than its documented bound of events; once it is back
// /readyz must return to 200, and every event must land, in order.
func outage(t *testing.T, b broker, down time.Duration, exactlyOnce bool) {
	t.Helper()
	const rate = 1500
	u := newUpstream(t)
	dir := t.TempDir()
	n := int64(rate * (4 + down.Seconds()))
	names := []string{"out_sse", "out_ws"}
	fhs := []firehose{
		u.newFirehose(t, "fh_out_sse", hmacSecretA, n, rate, 512),
		u.newFirehose(t, "fh_out_ws", hmacSecretB, n, rate, 512),
	}
	cfg := daemonCfg{upstream: u.url, checkpoint: filepath.Join(dir, "cp"), http: true, sink: b.sink, streams: []streamCfg{
		{name: names[0], streamID: fhs[0].id, secret: hmacSecretA},
		{name: names[1], transport: "websocket", streamID: fhs[1].id, secret: hmacSecretB},
	}}
	p := runDaemon(t, 3*time.Minute, writeFile(t, dir, "ingest.yaml", cfg.yaml()), true)

	scrape := func() metrics {
		m, err := p.metrics()
		if err != nil {
			t.Fatalf("scrape: %v", err)
		}
		return m
	}
	ready := func() int {
		code, _, err := p.get("/readyz")
		if err != nil {
			t.Fatalf("/readyz: %v", err)
		}
		return code
	}
	// Wait for events to flow and the daemon to be ready.
	waitFor(t, 30*time.Second, "events published before the outage", func() bool {
		m := scrape()
		return m.stream("ingest_events_published_total", names[0]) > 500 && m.stream("ingest_events_published_total", names[1]) > 500
	})
	waitFor(t, 10*time.Second, "/readyz 200 before the outage", func() bool { return ready() == http.StatusOK })
	heapBefore := scrape()["go_memstats_heap_inuse_bytes"]

	b.stop()
	t.Logf("%s stopped for %v", b.name, down)
	stopped := time.Now()
	saw503 := false
	var maxHeld [2]float64
	var maxHeap float64
	for time.Since(stopped) < down {
		if ready() == http.StatusServiceUnavailable {
			saw503 = true
		}
		m := scrape()
		for i, s := range names {
			held := m.stream("ingest_events_received_total", s) - m.stream("ingest_events_published_total", s) -
				m.stream("ingest_events_duplicate_total", s)
			maxHeld[i] = max(maxHeld[i], held)
		}
		maxHeap = max(maxHeap, m["go_memstats_heap_inuse_bytes"])
		time.Sleep(100 * time.Millisecond)
	}
	if p.exited() {
		t.Fatalf("the daemon exited (code %d) during the outage", p.code)
	}
	b.restart()
	t.Logf("%s started again", b.name)
	if !saw503 {
		t.Errorf("/readyz never answered 503 while %s was away", b.name)
	}
	for i, s := range names {
		t.Logf("%s: at most %.0f events held during the outage (bound %d)", s, maxHeld[i], laneBound)
		if maxHeld[i] > laneBound {
			t.Errorf("%s held %.0f events while the broker was away, more than buffer+batch+1 = %d: memory is not bounded", s, maxHeld[i], laneBound)
		}
	}
	t.Logf("heap in use: %.1f MiB before, at most %.1f MiB during the outage", heapBefore/(1<<20), maxHeap/(1<<20))
	if maxHeap > heapBefore+64<<20 {
		t.Errorf("heap grew from %.1f MiB to %.1f MiB during the outage", heapBefore/(1<<20), maxHeap/(1<<20))
	}
	waitFor(t, 60*time.Second, "/readyz 200 after the broker came back", func() bool { return ready() == http.StatusOK })
	if code := p.wait(2 * time.Minute); code != 0 {
		t.Fatalf("exit code %d, want 0 once both streams ended", code)
	}

	got := byStream(b.read(names))
	var all tally
	for i, s := range names {
		tl := count(fhs[i].ids(), got[s])
		t.Logf("%s: %+v", s, tl)
		if exactlyOnce {
			checkExactlyOnce(t, s, tl)
		} else if tl.lost != 0 || tl.outOfOrder != 0 || tl.unexpected != 0 {
			t.Errorf("%s: %d lost (first %s), %d out of order, %d unexpected; want every event at least once, in order", s, tl.lost, tl.firstLost, tl.outOfOrder, tl.unexpected)
		}
		all.add(tl)
	}
	bound := ""
	if !exactlyOnce {
		bound = "0 lost; repeats allowed (no broker-side deduplication)"
	}
	record(t, Row{Scenario: fmt.Sprintf("3. Broker outage: %s stopped %v while events flow", b.name, down), Runs: 1,
		Sent: all.sent, InBroker: all.inBroker, Lost: all.lost, Duplicated: all.dup, Bound: bound})
}

// TestOutageNATS stops an embedded NATS server (JetStream on a private port)
// and starts it again on the same port and store.
func TestOutageNATS(t *testing.T) {
	begin(t)
	dir := t.TempDir()
	emb, err := natsserver.Start(natsserver.Config{Dir: filepath.Join(dir, "js")})
	if err != nil {
		t.Fatal(err)
	}
	port := emb.Port()
	t.Cleanup(func() { emb.Shutdown() })
	url := emb.ClientURL()
	b := broker{
		name: "NATS JetStream",
		sink: fmt.Sprintf("type: nats\n  nats: {url: %q, stream: OUTAGE, duplicate_window: 5m}", url),
		stop: func() { emb.Shutdown() },
		restart: func() {
			e, err := natsserver.Start(natsserver.Config{Dir: filepath.Join(dir, "js"), Port: port})
			if err != nil {
				t.Fatalf("restart NATS on port %d: %v", port, err)
			}
			emb = e
		},
		read: func([]string) []landed { return readJetStream(t, url, "OUTAGE") },
	}
	outage(t, b, scale(3*time.Second, 10*time.Second), true)
}

// TestOutageKafka closes a kfake broker (persisting to a data directory) and
// starts a new one on the same port and directory.
func TestOutageKafka(t *testing.T) {
	begin(t)
	dir := t.TempDir()
	port := freePort(t)
	opts := []kfake.Opt{kfake.NumBrokers(1), kfake.Ports(port), kfake.DataDir(filepath.Join(dir, "kafka")), kfake.SyncWrites()}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	addr := "127.0.0.1:" + strconv.Itoa(port)
	b := broker{
		name: "Kafka (kfake)",
		sink: fmt.Sprintf("type: kafka\n  kafka: {brokers: [%q], create_topics: true, partitions: 3}", addr),
		stop: func() { c.Close() },
		restart: func() {
			n, err := kfake.NewCluster(opts...)
			if err != nil {
				t.Fatalf("restart kfake on port %d: %v", port, err)
			}
			c = n
		},
		read: func(names []string) []landed {
			topics := make([]string, len(names))
			for i, n := range names {
				topics[i] = "restless." + n
			}
			return readKafka(t, []string{addr}, topics)
		},
	}
	outage(t, b, scale(3*time.Second, 10*time.Second), false)
}
