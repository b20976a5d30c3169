package reliability

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/restless-stream/ingest/emulator"
)

// upstream is an in-process emulator served on loopback behind a hook that
// sees every runtime connection before the emulator does, so a test can set
// the faults of exactly the next connection.
type upstream struct {
	em  *emulator.Emulator
	url string

	mu    sync.Mutex
	conns map[string]int
	hooks map[string]func(n int)
}

func newUpstream(t *testing.T) *upstream {
	t.Helper()
	em, err := emulator.New(emulator.Options{APIKeys: []string{apiKey}, KeepAlive: 500 * time.Millisecond, PingInterval: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	u := &upstream{em: em, conns: map[string]int{}, hooks: map[string]func(int){}}
	h := em.Handler()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if id := r.URL.Query().Get("streamId"); id != "" {
			u.mu.Lock()
			u.conns[id]++
			n, hook := u.conns[id], u.hooks[id]
			u.mu.Unlock()
			if hook != nil {
				hook(n)
			}
		}
		h.ServeHTTP(w, r)
	}), ReadHeaderTimeout: 5 * time.Second}
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(ln) }()
	u.url = "http://" + ln.Addr().String()
	t.Cleanup(func() {
		_ = em.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			_ = srv.Close()
		}
		<-done
	})
	return u
}

// onConnect calls hook with the connection number (1, 2, ...) before each
// runtime connection to stream id is served.
func (u *upstream) onConnect(id string, hook func(n int)) {
	u.mu.Lock()
	u.hooks[id] = hook
	u.mu.Unlock()
}

// connections returns how many runtime connections stream id has had.
func (u *upstream) connections(id string) int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.conns[id]
}

// firehose is a finite signed firehose: events StartID+1 ... StartID+Count.
type firehose struct {
	id     string
	secret string
	start  int64
	count  int64
}

// ids are the event ids of the firehose, in order.
func (f firehose) ids() []string {
	out := make([]string, f.count)
	for i := range out {
		out[i] = strconv.FormatInt(f.start+int64(i)+1, 10)
	}
	return out
}

var startIDs struct {
	sync.Mutex
	next int64
}

// newFirehose creates a firehose whose ids do not overlap any other of the
// run. count 0 is unlimited.
func (u *upstream) newFirehose(t *testing.T, id, secret string, count int64, rate float64, eventBytes int) firehose {
	t.Helper()
	startIDs.Lock()
	if startIDs.next == 0 {
		startIDs.next = 1_800_000_000_000
	}
	start := startIDs.next
	startIDs.next += 100_000_000
	startIDs.Unlock()
	if _, err := u.em.CreateFirehose(emulator.FirehoseConfig{ID: id, EventBytes: eventBytes, Rate: rate, Count: count, Secret: secret, StartID: start}); err != nil {
		t.Fatal(err)
	}
	return firehose{id: id, secret: secret, start: start, count: count}
}

// streamCfg is one entry of streams: in the daemon's configuration.
type streamCfg struct {
	name        string
	transport   string // "" = sse
	streamID    string
	url         string
	dest        string // destination; "" = restless.<name>
	secret      string // verify.secrets; "" = none
	idle        string // idle_timeout; "" = 5s
	maxEvent    int    // max_event_bytes; 0 = default
	maxAttempts int
	reconnMax   string // reconnect.max; "" = 200ms
}

// daemonCfg is the configuration of one daemon.
type daemonCfg struct {
	upstream   string
	streams    []streamCfg
	sink       string // YAML of the sink section's body, e.g. "type: file\n  file: {path: x}"
	checkpoint string // directory of the file checkpoint
	http       bool
	deadLetter string
	batch      int // pipeline.batch.max_events; 0 = default
}

func (c daemonCfg) yaml() string {
	var b strings.Builder
	fmt.Fprintf(&b, "restless: {base_url: %q, stream_base_url: %q}\nstreams:\n", c.upstream, c.upstream)
	for _, s := range c.streams {
		fmt.Fprintf(&b, "  - name: %s\n", s.name)
		if s.transport != "" {
			fmt.Fprintf(&b, "    transport: %s\n", s.transport)
		}
		if s.streamID != "" {
			fmt.Fprintf(&b, "    stream_id: %s\n", s.streamID)
		}
		if s.url != "" {
			fmt.Fprintf(&b, "    url: %q\n", s.url)
		}
		if s.dest != "" {
			fmt.Fprintf(&b, "    destination: %q\n", s.dest)
		}
		if s.secret != "" {
			fmt.Fprintf(&b, "    verify: {secrets: [%q]}\n", s.secret)
		}
		idle := s.idle
		if idle == "" {
			idle = "5s"
		}
		fmt.Fprintf(&b, "    idle_timeout: %s\n", idle)
		rmax := s.reconnMax
		if rmax == "" {
			rmax = "200ms"
		}
		fmt.Fprintf(&b, "    reconnect: {initial: 20ms, max: %s, max_attempts: %d}\n", rmax, s.maxAttempts)
		if s.maxEvent > 0 {
			fmt.Fprintf(&b, "    max_event_bytes: %d\n", s.maxEvent)
		}
	}
	b.WriteString("pipeline:\n")
	if c.batch > 0 {
		fmt.Fprintf(&b, "  batch: {max_events: %d}\n", c.batch)
	}
	fmt.Fprintf(&b, "  dead_letter: %q\n", c.deadLetter)
	fmt.Fprintf(&b, "sink:\n  %s\n", c.sink)
	fmt.Fprintf(&b, "checkpoint: {type: file, dir: %q}\n", c.checkpoint)
	if c.http {
		b.WriteString("http: {addr: \"127.0.0.1:0\"}\n")
	} else {
		b.WriteString("http: {addr: \"\"}\n")
	}
	b.WriteString("log: {level: info, format: text}\n")
	return b.String()
}

// freePort returns a loopback port that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
