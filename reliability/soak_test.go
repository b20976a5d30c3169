package reliability

import (
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/restless-stream/ingest/emulator"
	"github.com/restless-stream/ingest/internal/testenv"
)

// soakFault picks the fault of one connection: every connection of the soak
// ends early one way or another, so faults recur for the whole run. Stalls
// go to SSE only, to keep the soak's wall time bounded: TestUpstreamMisbehaviour
// covers a stalled WebSocket.
func soakFault(rng *rand.Rand, ws bool) emulator.Faults {
	after := 100 + rng.IntN(300)
	switch r := rng.IntN(10); {
	case r < 4:
		return emulator.Faults{Connections: 1, CloseAfter: after}
	case r < 7:
		return emulator.Faults{Connections: 1, CloseAfter: after, CloseMidEvent: true}
	case r < 8:
		return emulator.Faults{Connections: 1, Status: 500}
	case r < 9 && !ws:
		return emulator.Faults{Connections: 1, Stall: true, StallAfter: after}
	default:
		return emulator.Faults{Connections: 1, CloseAfter: after, RepeatEvery: 7}
	}
}

type sample struct {
	progress            float64 // published / total
	goroutines, heapUse float64
}

// TestSoak streams an hour-equivalent of events (3600 per stream: one a
// second, as the demo upstream changes, for an hour) at a steady rate, with
// a fault on every connection (clean and mid-event closes, 500s, stalls,
// repeats). Every event must land exactly once, and the daemon's goroutine
// count and heap must be as flat near the end as after the warm-up.
func TestSoak(t *testing.T) {
	begin(t)
	streams := scale(4, 8)
	rate := scale(240.0, 30.0) // events per second and stream: 15 s or 120 s
	const perStream = 3600
	rng := newRand(t)
	var rngMu sync.Mutex
	u := newUpstream(t)
	dir := t.TempDir()

	cfg := daemonCfg{upstream: u.url, checkpoint: filepath.Join(dir, "cp"), http: true}
	read := func() []landed { return readFileSink(t, filepath.Join(dir, "events.jsonl")) }
	if testenv.Have(t, testenv.WhatNATS, testenv.DialNATS()) {
		js, base := jsStreamName(t, sharedNATS)
		cfg.sink = fmt.Sprintf("type: nats\n  nats: {url: %q, stream: %s, base_subject: %q, duplicate_window: 5m}", sharedNATS, js, base+".>")
		read = func() []landed { return readJetStream(t, sharedNATS, js) }
		for i := range streams {
			cfg.streams = append(cfg.streams, streamCfg{dest: fmt.Sprintf("%s.soak%d", base, i)})
		}
	} else {
		cfg.sink = fmt.Sprintf("type: file\n  file: {path: %q}", filepath.Join(dir, "events.jsonl"))
		cfg.streams = make([]streamCfg, streams)
	}
	fhs := make([]firehose, streams)
	for i := range streams {
		name := fmt.Sprintf("soak%d", i)
		secret := []string{hmacSecretA, hmacSecretB}[i%2]
		fhs[i] = u.newFirehose(t, "fh_"+name, secret, perStream, rate, 300+rng.IntN(700))
		id, ws := fhs[i].id, i%2 == 1
		u.onConnect(id, func(int) {
			rngMu.Lock()
			f := soakFault(rng, ws)
			rngMu.Unlock()
			if err := u.em.SetFaults(id, f); err != nil {
				t.Error(err)
			}
		})
		s := &cfg.streams[i]
		s.name, s.streamID, s.secret, s.idle = name, id, secret, "1s"
		if ws {
			s.transport = "websocket"
		}
	}
	total := float64(streams * perStream)
	p := runDaemon(t, scale(3*time.Minute, 8*time.Minute), writeFile(t, dir, "ingest.yaml", cfg.yaml()), true)

	var samples []sample
	deadline := time.Now().Add(scale(2*time.Minute, 7*time.Minute))
	for !p.exited() && time.Now().Before(deadline) {
		if m, err := p.metrics(); err == nil {
			var pub float64
			for _, s := range cfg.streams {
				pub += m.stream("ingest_events_published_total", s.name)
			}
			samples = append(samples, sample{progress: pub / total, goroutines: m["go_goroutines"], heapUse: m["go_memstats_heap_inuse_bytes"]})
		}
		time.Sleep(250 * time.Millisecond)
	}
	if !p.exited() {
		if m, err := p.metrics(); err == nil {
			for i, s := range cfg.streams {
				t.Errorf("%s: %v of %d published, %v received, %v duplicates, %v reconnects, %d connections", s.name,
					m.stream("ingest_events_published_total", s.name), perStream, m.stream("ingest_events_received_total", s.name),
					m.stream("ingest_events_duplicate_total", s.name), m.stream("ingest_source_reconnects_total", s.name), u.connections(fhs[i].id))
			}
		}
		_, ready, _ := p.get("/readyz")
		t.Fatalf("the daemon did not finish the soak in time; /readyz: %s", ready)
	}
	if code := p.wait(time.Minute); code != 0 {
		t.Fatalf("exit code %d, want 0 once every stream ended", code)
	}

	// Flat: the highest goroutine count and heap near the end (80–95 % of
	// the events published) against the same right after the warm-up
	// (10–30 %). A leak per connection or per event would show as growth.
	var warm, end sample
	var nWarm, nEnd int
	for _, s := range samples {
		switch {
		case s.progress >= 0.10 && s.progress <= 0.30:
			warm.goroutines, warm.heapUse = max(warm.goroutines, s.goroutines), max(warm.heapUse, s.heapUse)
			nWarm++
		case s.progress >= 0.80 && s.progress <= 0.95:
			end.goroutines, end.heapUse = max(end.goroutines, s.goroutines), max(end.heapUse, s.heapUse)
			nEnd++
		}
	}
	t.Logf("%d samples; after warm-up: %.0f goroutines, %.1f MiB heap; near the end: %.0f goroutines, %.1f MiB heap",
		len(samples), warm.goroutines, warm.heapUse/(1<<20), end.goroutines, end.heapUse/(1<<20))
	if nWarm == 0 || nEnd == 0 {
		t.Errorf("too few samples to compare (%d after warm-up, %d near the end)", nWarm, nEnd)
	} else {
		if end.goroutines > warm.goroutines+8 {
			t.Errorf("goroutines grew from %.0f to %.0f", warm.goroutines, end.goroutines)
		}
		if end.heapUse > 1.5*warm.heapUse+4<<20 {
			t.Errorf("heap in use grew from %.1f MiB to %.1f MiB", warm.heapUse/(1<<20), end.heapUse/(1<<20))
		}
	}

	got := byStream(read())
	var all tally
	conns := 0
	for i, s := range cfg.streams {
		tl := count(fhs[i].ids(), got[s.name])
		checkExactlyOnce(t, s.name, tl)
		all.add(tl)
		conns += u.connections(fhs[i].id)
	}
	t.Logf("%d connections, each with a fault", conns)
	record(t, Row{Scenario: fmt.Sprintf("8. Soak: %d streams × 3600 events (an hour at 1/s) at %.0f/s, a fault on every connection", streams, rate), Runs: conns,
		Sent: all.sent, InBroker: all.inBroker, Lost: all.lost, Duplicated: all.dup,
		Bound: fmt.Sprintf("0 lost, 0 duplicated; goroutines %.0f → %.0f, heap %.1f → %.1f MiB", warm.goroutines, end.goroutines, warm.heapUse/(1<<20), end.heapUse/(1<<20))})
}
