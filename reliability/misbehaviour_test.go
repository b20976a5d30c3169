package reliability

import (
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/restless-stream/ingest/emulator"
)

// misCase is one stream of TestUpstreamMisbehaviour and what must become of it.
type misCase struct {
	name      string
	transport string
	fault     emulator.Faults
	count     int64
	idle      string
	reconnMax string
	// outcome: "all" = every event lands exactly once; "failed" = the stream
	// stops for good, nothing lands; "ended" = the stream ends cleanly.
	outcome       string
	minReconnects int
	logHas        string // a log line of this stream says this
}

// streamLog returns the daemon's log lines about one stream.
func streamLog(stderr, stream string) []string {
	var out []string
	for _, l := range strings.Split(stderr, "\n") {
		if strings.Contains(l, " stream="+stream+" ") || strings.HasSuffix(l, " stream="+stream) {
			out = append(out, l)
		}
	}
	return out
}

// TestUpstreamMisbehaviour runs one daemon over a stream per kind of upstream
// misbehaviour, beside a healthy control stream, and checks that each is
// handled as package client documents for its subscriptions, that the
// process stays alive, and that the reason shows in the logs and the metrics.
func TestUpstreamMisbehaviour(t *testing.T) {
	begin(t)
	u := newUpstream(t)
	dir := t.TempDir()
	storm := scale(6, 20)
	cases := []misCase{
		{name: "s401", fault: emulator.Faults{Status: 401}, outcome: "failed", logHas: "HTTP 401"},
		{name: "s403", fault: emulator.Faults{Status: 403}, outcome: "failed", logHas: "HTTP 403"},
		{name: "s404", fault: emulator.Faults{Status: 404}, outcome: "failed", logHas: "HTTP 404"},
		{name: "s429", fault: emulator.Faults{Status: 429, RetryAfter: 1, Connections: 2}, outcome: "all", minReconnects: 2, logHas: "HTTP 429", reconnMax: "5s"},
		{name: "s500", fault: emulator.Faults{Status: 500, Connections: storm}, outcome: "all", minReconnects: storm, logHas: "HTTP 500"},
		{name: "s204", fault: emulator.Faults{Status: 204}, outcome: "ended", logHas: "stream ended by its server"},
		{name: "ctype", fault: emulator.Faults{WrongContentType: true, Connections: 2}, outcome: "all", minReconnects: 2, logHas: "text/html"},
		{name: "stall", fault: emulator.Faults{Stall: true, StallAfter: 30, Connections: 1}, idle: "1s", outcome: "all", minReconnects: 1, logHas: "idle timeout"},
		{name: "stallhdr", fault: emulator.Faults{StallHeaders: true, Connections: 1}, idle: "1s", outcome: "all", minReconnects: 1},
		{name: "drip", fault: emulator.Faults{SlowDrip: true, DripDelayMS: 1}, count: 8, idle: "1s", outcome: "all"},
		{name: "gzip", fault: emulator.Faults{Gzip: true}, outcome: "all"},
		{name: "ws401", transport: "websocket", fault: emulator.Faults{Status: 401}, outcome: "failed", logHas: "401"},
		{name: "ws404", transport: "websocket", fault: emulator.Faults{Status: 404}, outcome: "failed", logHas: "404"},
		{name: "ws429", transport: "websocket", fault: emulator.Faults{Status: 429, RetryAfter: 1, Connections: 2}, outcome: "all", minReconnects: 2, logHas: "429", reconnMax: "5s"},
		{name: "ws500", transport: "websocket", fault: emulator.Faults{Status: 500, Connections: storm}, outcome: "all", minReconnects: storm, logHas: "500"},
		{name: "ws204", transport: "websocket", fault: emulator.Faults{Status: 204}, outcome: "ended", logHas: "stream ended by its server"},
		{name: "wsstall", transport: "websocket", fault: emulator.Faults{Stall: true, StallAfter: 30, Connections: 1}, idle: "1s", outcome: "all", minReconnects: 1, logHas: "idle timeout"},
	}
	fhs := map[string]firehose{}
	cfg := daemonCfg{upstream: u.url, checkpoint: filepath.Join(dir, "cp"), http: true,
		sink: fmt.Sprintf("type: file\n  file: {path: %q}", filepath.Join(dir, "events.jsonl"))}
	for _, c := range cases {
		n := c.count
		if n == 0 {
			n = 100
		}
		fh := u.newFirehose(t, "fh_"+c.name, hmacSecretA, n, 0, 300)
		if err := u.em.SetFaults(fh.id, c.fault); err != nil {
			t.Fatal(err)
		}
		fhs[c.name] = fh
		cfg.streams = append(cfg.streams, streamCfg{name: c.name, transport: c.transport, streamID: fh.id, secret: hmacSecretA, idle: c.idle, reconnMax: c.reconnMax})
	}
	// The healthy control stream never ends: it keeps the process running.
	control := u.newFirehose(t, "fh_control", hmacSecretB, 0, 50, 300)
	cfg.streams = append(cfg.streams, streamCfg{name: "control", streamID: control.id, secret: hmacSecretB})

	// A 64 MiB line: first without any newline (the connection then ends),
	// then with its end, then three good events; then the stream is over.
	good := []string{"9100000000001", "9100000000002", "9100000000003"}
	huge := strings.Repeat("x", 64<<20)
	big := newScripted(t, func(c *sseConn) {
		switch {
		case c.cursor == good[len(good)-1]:
			c.w.WriteHeader(http.StatusNoContent)
		case c.n == 1:
			c.start()
			_ = c.write("id: 9100000000000\ndata: " + huge)
		default:
			c.start()
			_ = c.write("id: 9100000000000\ndata: " + huge + "\n\n")
			for i, id := range good {
				_ = c.event(id, ev{id: id, data: fmt.Sprintf(`{"n":%d}`, i+1), secret: hmacSecretA}.json(t))
			}
		}
	})
	cfg.streams = append(cfg.streams, streamCfg{name: "huge", url: big.url, secret: hmacSecretA, maxEvent: 1 << 20})

	p := runDaemon(t, 4*time.Minute, writeFile(t, dir, "ingest.yaml", cfg.yaml()), true)
	scrape := func() metrics {
		m, err := p.metrics()
		if err != nil {
			t.Fatalf("scrape: %v", err)
		}
		return m
	}
	type readyReport struct {
		Ready   bool `json:"ready"`
		Streams map[string]struct {
			State string `json:"state"`
			Error string `json:"error"`
		} `json:"streams"`
	}
	readiness := func() (int, readyReport) {
		code, body, err := p.get("/readyz")
		if err != nil {
			t.Fatalf("/readyz: %v", err)
		}
		var r readyReport
		if err := json.Unmarshal([]byte(body), &r); err != nil {
			t.Fatalf("/readyz body %q: %v", body, err)
		}
		return code, r
	}

	// Wait until every finite stream has landed all of its events and every
	// other one reached its final state.
	waitForWhy(t, scale(time.Minute, 2*time.Minute), "every misbehaving stream to settle", func() string {
		m := scrape()
		_, r := readiness()
		for _, c := range cases {
			switch c.outcome {
			case "all":
				if got := m.stream("ingest_events_published_total", c.name); got < float64(fhs[c.name].count) {
					return fmt.Sprintf("%s: %v of %d events published", c.name, got, fhs[c.name].count)
				}
			case "failed", "ended":
				if st := r.Streams[c.name].State; st != c.outcome {
					return fmt.Sprintf("%s: state %s, want %s", c.name, st, c.outcome)
				}
			}
		}
		if m.stream("ingest_events_published_total", "huge") < 3 || m.rejected("huge", "too_large") < 1 {
			return fmt.Sprintf("huge: %v published, %v too_large", m.stream("ingest_events_published_total", "huge"), m.rejected("huge", "too_large"))
		}
		if n := big.connections(); n < 3 {
			// The stream's end (204) comes on a reconnect after the good events.
			return fmt.Sprintf("huge: %d connections, waiting for the one that ends it", n)
		}
		return ""
	})
	if p.exited() {
		t.Fatalf("the daemon exited (code %d)", p.code)
	}
	if code, _, err := p.get("/healthz"); err != nil || code != http.StatusOK {
		t.Errorf("/healthz = %d, %v; want 200: the process is alive", code, err)
	}
	m := scrape()
	code, r := readiness()
	if code != http.StatusServiceUnavailable || r.Ready {
		t.Errorf("/readyz = %d (ready %v), want 503 while some streams have stopped for good", code, r.Ready)
	}
	stderr := p.stderr.String()
	for _, c := range cases {
		if got := m.stream("ingest_source_reconnects_total", c.name); got < float64(c.minReconnects) {
			t.Errorf("%s: ingest_source_reconnects_total = %v, want at least %d", c.name, got, c.minReconnects)
		}
		if c.outcome == "failed" {
			if got := m.stream("ingest_source_connected", c.name); got != 0 {
				t.Errorf("%s: ingest_source_connected = %v, want 0 after it stopped for good", c.name, got)
			}
			if !strings.Contains(r.Streams[c.name].Error, strings.TrimPrefix(c.logHas, "HTTP ")) {
				t.Errorf("%s: /readyz error %q does not give the reason %q", c.name, r.Streams[c.name].Error, c.logHas)
			}
		}
		if c.logHas != "" && !strings.Contains(strings.Join(streamLog(stderr, c.name), "\n"), c.logHas) {
			t.Errorf("%s: no log line of the stream says %q", c.name, c.logHas)
		}
	}
	// Retry-After: 1 is honoured: the logged delay of the 429 reconnects is at least 1s.
	for _, name := range []string{"s429", "ws429"} {
		n := 0
		for _, l := range streamLog(stderr, name) {
			if mm := regexp.MustCompile(` delay=(\S+)`).FindStringSubmatch(l); mm != nil && strings.Contains(l, "Too Many Requests") {
				n++
				if d, err := time.ParseDuration(mm[1]); err != nil || d < time.Second {
					t.Errorf("%s: reconnect delay %s after 429 with Retry-After: 1, want at least 1s: %s", name, mm[1], l)
				}
			}
		}
		if n < 2 {
			t.Errorf("%s: %d reconnect log lines after a 429, want 2", name, n)
		}
	}
	if got := m.rejected("huge", "too_large"); got != 1 {
		t.Errorf("huge: too_large rejections = %v, want 1 (the terminated 64 MiB line; the unterminated one is never an event)", got)
	}
	if sys := m["go_memstats_sys_bytes"]; sys >= 64<<20 {
		t.Errorf("the daemon obtained %.0f MiB from the system: it held a 64 MiB line in memory", sys/(1<<20))
	} else {
		t.Logf("memory obtained from the system after the 64 MiB lines: %.1f MiB", sys/(1<<20))
	}
	if big.connections() < 3 {
		t.Errorf("huge: %d connections, want 3 (cut line, events, end)", big.connections())
	}

	p.signal(syscall.SIGTERM)
	if code := p.wait(30 * time.Second); code != 0 && code != 1 {
		t.Errorf("exit code %d after SIGTERM, want 0 or 1", code)
	}
	if strings.Contains(p.stderr.String(), "panic") {
		t.Errorf("the daemon panicked")
	}

	got := byStream(readFileSink(t, filepath.Join(dir, "events.jsonl")))
	var all tally
	for _, c := range cases {
		var want []string
		if c.outcome == "all" {
			want = fhs[c.name].ids()
		}
		tl := count(want, got[c.name])
		checkExactlyOnce(t, c.name, tl)
		if c.outcome != "all" && len(got[c.name]) != 0 {
			t.Errorf("%s: %d records, want none", c.name, len(got[c.name]))
		}
		all.add(tl)
	}
	tl := count(good, got["huge"])
	checkExactlyOnce(t, "huge", tl)
	all.add(tl)
	// The control stream: a gap-free prefix of its events, each once.
	cr := got["control"]
	if len(cr) == 0 {
		t.Fatal("control: nothing landed")
	}
	last, _ := strconv.ParseInt(cr[len(cr)-1].id(), 10, 64)
	ctl := firehose{start: control.start, count: last - control.start}
	tl = count(ctl.ids(), cr)
	checkExactlyOnce(t, "control", tl)
	all.add(tl)
	record(t, Row{Scenario: "4. Upstream misbehaviour (" + strconv.Itoa(len(cases)) + " faults + 64 MiB lines, SSE and WebSocket → file)", Runs: len(cases) + 1,
		Sent: all.sent, InBroker: all.inBroker, Lost: all.lost, Duplicated: all.dup})
}
