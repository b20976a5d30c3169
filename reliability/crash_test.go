package reliability

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/restless-stream/ingest/internal/testenv"
)

// crashLane is one stream of the crash scenarios.
type crashLane struct {
	name, transport, secret string
	fh                      firehose
}

// crashLoop runs the daemon of cfg under load and kills it with SIGKILL
// `kills` times at random moments, restarting it each time with the same
// file checkpoint; the last run goes on until every stream ended. It returns
// once the last run exited 0.
func crashLoop(t *testing.T, path string, kills int, published func() int64) {
	t.Helper()
	rng := newRand(t)
	for k := range kills {
		p := runDaemon(t, 2*time.Minute, path, false)
		before := published()
		time.Sleep(time.Duration(300+rng.IntN(1200)) * time.Millisecond) // a random moment
		if p.exited() {
			t.Fatalf("kill %d: the daemon exited (code %d) before it was killed: the load ended too soon", k+1, p.code)
		}
		if after := published(); after <= before {
			t.Logf("kill %d: nothing new landed before the kill (%d records)", k+1, after)
		}
		p.kill()
		t.Logf("kill %d: %d records in the broker", k+1, published())
	}
	p := runDaemon(t, 3*time.Minute, path, false)
	if code := p.wait(3 * time.Minute); code != 0 {
		t.Fatalf("last run: exit code %d, want 0 once every stream ended", code)
	}
}

func crashLanes(t *testing.T, u *upstream, kills int) []*crashLane {
	t.Helper()
	const rate = 2000 // events per second and stream
	// Enough events for every kill at its latest moment, plus a tail.
	n := int64(rate * (kills*2 + 2))
	lanes := []*crashLane{{name: "crash_sse", transport: "sse", secret: hmacSecretA}, {name: "crash_ws", transport: "websocket", secret: hmacSecretB}}
	for _, l := range lanes {
		l.fh = u.newFirehose(t, "fh_"+l.name, l.secret, n, rate, 512)
	}
	return lanes
}

// TestCrashJetStream kills the daemon with SIGKILL at random moments under
// load; restarted from its file checkpoint each time, it must leave every
// event in JetStream exactly once (Nats-Msg-Id drops the replays).
func TestCrashJetStream(t *testing.T) {
	testenv.Require(t, testenv.WhatNATS, testenv.DialNATS())
	begin(t)
	kills := scale(3, 10)
	u := newUpstream(t)
	dir := t.TempDir()
	jsName, base := jsStreamName(t, sharedNATS)
	lanes := crashLanes(t, u, kills)
	cfg := daemonCfg{upstream: u.url, checkpoint: filepath.Join(dir, "cp"),
		sink: fmt.Sprintf("type: nats\n  nats: {url: %q, stream: %s, base_subject: %q, duplicate_window: 5m}", sharedNATS, jsName, base+".>")}
	for _, l := range lanes {
		cfg.streams = append(cfg.streams, streamCfg{name: l.name, transport: l.transport, streamID: l.fh.id, secret: l.secret, dest: base + "." + l.name})
	}
	path := writeFile(t, dir, "ingest.yaml", cfg.yaml())
	crashLoop(t, path, kills, func() int64 { return jsCount(t, jsName) })

	got := byStream(readJetStream(t, sharedNATS, jsName))
	var all tally
	for _, l := range lanes {
		tl := count(l.fh.ids(), got[l.name])
		checkExactlyOnce(t, l.name, tl)
		all.add(tl)
	}
	record(t, Row{Scenario: "2. Crash: kill -9 under load, restart from file checkpoint (→ JetStream)", Runs: kills,
		Sent: all.sent, InBroker: all.inBroker, Lost: all.lost, Duplicated: all.dup})
}

// TestCrashKafka is TestCrashJetStream into Kafka, which has no duplicate
// window: every event must land at least once, in order of first landing,
// and the repeats must stay within what INGEST.md allows: "at most the last
// unacknowledged batch per stream can repeat" — one batch
// (pipeline.batch.max_events) per stream per crash.
func TestCrashKafka(t *testing.T) {
	begin(t)
	kills := scale(3, 10)
	const batch = 512
	u := newUpstream(t)
	_, broker := startKfake(t)
	dir := t.TempDir()
	lanes := crashLanes(t, u, kills)
	cfg := daemonCfg{upstream: u.url, checkpoint: filepath.Join(dir, "cp"), batch: batch,
		sink: fmt.Sprintf("type: kafka\n  kafka: {brokers: [%q], create_topics: true, partitions: 3}", broker)}
	var topics []string
	for _, l := range lanes {
		cfg.streams = append(cfg.streams, streamCfg{name: l.name, transport: l.transport, streamID: l.fh.id, secret: l.secret})
		topics = append(topics, "restless."+l.name)
	}
	path := writeFile(t, dir, "ingest.yaml", cfg.yaml())
	crashLoop(t, path, kills, func() int64 { return kafkaCount(t, broker, topics) })

	got := byStream(readKafka(t, []string{broker}, topics))
	var all tally
	for _, l := range lanes {
		tl := count(l.fh.ids(), got[l.name])
		if tl.lost != 0 || tl.outOfOrder != 0 || tl.unexpected != 0 {
			t.Errorf("%s: offered %d, in broker %d: %d lost (first %s), %d out of order, %d unexpected; want every event at least once, in order",
				l.name, tl.sent, tl.inBroker, tl.lost, tl.firstLost, tl.outOfOrder, tl.unexpected)
		}
		if limit := int64(kills * batch); tl.dup > limit {
			t.Errorf("%s: %d repeats after %d crashes, more than one batch (%d events) per crash (%d): INGEST.md promises at most the last unacknowledged batch per stream",
				l.name, tl.dup, kills, batch, limit)
		}
		all.add(tl)
	}
	record(t, Row{Scenario: "2. Crash: kill -9 under load, restart from file checkpoint (→ Kafka)", Runs: kills,
		Sent: all.sent, InBroker: all.inBroker, Lost: all.lost, Duplicated: all.dup,
		Bound: fmt.Sprintf("0 lost; ≤ %d repeats per stream and crash (one batch)", batch)})
}
