package reliability

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/restless-stream/ingest/emulator"
)

// newRand returns a seeded generator; the seed is logged and can be replayed
// with INGEST_RELIABILITY_SEED.
func newRand(t *testing.T) *rand.Rand {
	t.Helper()
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("INGEST_RELIABILITY_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("INGEST_RELIABILITY_SEED: %v", err)
		}
		seed = v
	}
	t.Logf("random seed %d (replay with INGEST_RELIABILITY_SEED=%d)", seed, seed)
	return rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
}

// startKfake runs a one-broker Kafka cluster in the test process.
func startKfake(t *testing.T, opts ...kfake.Opt) (*kfake.Cluster, string) {
	t.Helper()
	c, err := kfake.NewCluster(append([]kfake.Opt{kfake.NumBrokers(1)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c, c.ListenAddrs()[0]
}

// TestUpstreamDrops cuts the upstream connection at random points, half of
// them in the middle of an event, over SSE and over WebSocket at once. Every
// event must land exactly once, in order. Kafka is the sink because it does
// not deduplicate: a repeat the daemon let through would show.
func TestUpstreamDrops(t *testing.T) {
	begin(t)
	drops := scale(10, 100)
	rng := newRand(t)
	u := newUpstream(t)
	_, broker := startKfake(t)
	dir := t.TempDir()

	type lane struct {
		name, transport, secret string
		fh                      firehose
		plan                    []emulator.Faults
	}
	lanes := []*lane{{name: "drop_sse", transport: "sse", secret: hmacSecretA}, {name: "drop_ws", transport: "websocket", secret: hmacSecretB}}
	var cfg daemonCfg
	for _, l := range lanes {
		var total int64
		for range drops {
			f := emulator.Faults{Connections: 1, CloseAfter: 1 + rng.IntN(60), CloseMidEvent: rng.IntN(2) == 0}
			total += int64(f.CloseAfter)
			l.plan = append(l.plan, f)
		}
		l.fh = u.newFirehose(t, "fh_"+l.name, l.secret, total+300, 0, 400+rng.IntN(800))
		id, plan := l.fh.id, l.plan
		u.onConnect(id, func(n int) {
			if n <= len(plan) {
				if err := u.em.SetFaults(id, plan[n-1]); err != nil {
					t.Error(err)
				}
			}
		})
		cfg.streams = append(cfg.streams, streamCfg{name: l.name, transport: l.transport, streamID: l.fh.id, secret: l.secret})
	}
	cfg.upstream = u.url
	cfg.sink = fmt.Sprintf("type: kafka\n  kafka: {brokers: [%q], create_topics: true, partitions: 3}", broker)
	cfg.checkpoint = filepath.Join(dir, "cp")
	path := writeFile(t, dir, "ingest.yaml", cfg.yaml())

	p := runDaemon(t, 5*time.Minute, path, false)
	// Each firehose ends (204 once its last event was read): the daemon exits 0.
	if code := p.wait(4 * time.Minute); code != 0 {
		t.Fatalf("exit code %d, want 0 once both streams ended", code)
	}

	got := byStream(readKafka(t, []string{broker}, []string{"restless.drop_sse", "restless.drop_ws"}))
	var all tally
	for _, l := range lanes {
		if c := u.connections(l.fh.id); c < drops+1 {
			t.Errorf("%s: %d connections, want at least %d (one per drop, then the last)", l.name, c, drops+1)
		}
		tl := count(l.fh.ids(), got[l.name])
		checkExactlyOnce(t, l.name, tl)
		all.add(tl)
	}
	record(t, Row{Scenario: "1. Upstream drops (SSE + WebSocket → Kafka)", Runs: drops * len(lanes),
		Sent: all.sent, InBroker: all.inBroker, Lost: all.lost, Duplicated: all.dup})
}
