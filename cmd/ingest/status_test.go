package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/restless-stream/ingest"
	"github.com/restless-stream/ingest/pipeline"
)

func TestStatusStreamState(t *testing.T) {
	for _, c := range []struct {
		lane     pipeline.LaneState
		src      ingest.State
		reported bool
		want     string
	}{
		{pipeline.LaneIdle, 0, false, streamConnecting},
		{pipeline.LaneStarting, 0, false, streamConnecting},
		{pipeline.LaneRunning, 0, false, streamConnecting},
		{pipeline.LaneRunning, ingest.StateConnecting, true, streamConnecting},
		{pipeline.LaneRunning, ingest.StateConnected, true, streamConnected},
		{pipeline.LaneRunning, ingest.StateReconnecting, true, streamReconnecting},
		{pipeline.LaneRunning, ingest.StateEnded, true, streamEnded},
		{pipeline.LaneRunning, ingest.StateFailed, true, streamStopped},
		{pipeline.LaneEnded, ingest.StateEnded, true, streamEnded},
		{pipeline.LaneStopped, ingest.StateConnected, true, streamStopped},
		{pipeline.LaneFailed, ingest.StateFailed, true, streamStopped},
	} {
		if got := streamState(c.lane, c.src, c.reported); got != c.want {
			t.Errorf("lane %v, source %v (reported %v): %q, want %q", c.lane, c.src, c.reported, got, c.want)
		}
	}
}

func TestStatusMemberID(t *testing.T) {
	id := memberID()
	if id != memberID() {
		t.Fatal("memberID changes within a process")
	}
	host, suffix, ok := cutLast(id, "-")
	if !ok || host == "" || len(suffix) != 6 || strings.Trim(suffix, "0123456789abcdef") != "" {
		t.Fatalf("memberID %q: want host-xxxxxx", id)
	}
	if strings.Trim(id, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") != "" {
		t.Fatalf("memberID %q has characters outside [A-Za-z0-9_-]", id)
	}
}

func cutLast(s, sep string) (string, string, bool) {
	i := strings.LastIndex(s, sep)
	if i < 0 {
		return s, "", false
	}
	return s[:i], s[i+len(sep):], true
}

// TestStatusBoard builds the answer from lanes, the observer's record and a
// reconciler's streams, with the time fixed.
func TestStatusBoard(t *testing.T) {
	const secret = "board-secret-7f3a9c"
	registerSecrets(ingest.Secret(secret))
	m := NewMetrics()
	orders := m.Stream("orders")
	orders.State(ingest.StateChange{State: ingest.StateConnected})
	orders.Published(5)
	orders.Rejected(pipeline.ReasonSignatureInvalid, false)
	orders.EventLag(1234567 * time.Microsecond)
	users := m.Stream("users")
	users.State(ingest.StateChange{State: ingest.StateReconnecting, Err: errors.New("dial with token " + secret + ": refused")})
	at := time.Date(2026, 12, 4, 17, 0, 0, 0, time.FixedZone("CET", 3600))
	lanes := []pipeline.StreamStatus{
		{Name: "users", State: pipeline.LaneRunning, Acknowledged: "9", Checkpoint: "9"},
		{Name: "orders", State: pipeline.LaneRunning, Received: "12", ReceivedAt: at, Acknowledged: "11", Checkpoint: "10"},
		{Name: "bills", State: pipeline.LaneFailed, Err: errors.New("x" + strings.Repeat("é", maxErrorBytes))}, // byte 1024 is inside an é,
	}
	b := newStatusBoard("host-abc123", m, func() []pipeline.StreamStatus { return lanes })
	b.SetOthers(func() []StreamStatus {
		return []StreamStatus{
			{Name: "audit", Owner: "other-def456", State: streamNotOwned},
			{Name: "orders", Owner: "other-def456", State: streamNotOwned}, // run here: this one wins
		}
	})
	got := b.streams()
	var names []string
	for _, s := range got {
		names = append(names, s.Name)
	}
	if strings.Join(names, ",") != "audit,bills,orders,users" {
		t.Fatalf("streams %v, want sorted by name, each once", names)
	}
	o := got[2]
	if o.Owner != "host-abc123" || o.State != streamConnected || o.Cursor != "12" || o.Checkpoint != "10" ||
		o.EventsPublished != 5 || o.EventsRejected != 1 || o.LagSeconds != 1.235 || o.LastError != nil ||
		o.LastEventAt == nil || !o.LastEventAt.Equal(at) || o.LastEventAt.Location() != time.UTC {
		t.Errorf("orders: %+v", o)
	}
	u := got[3]
	if u.State != streamReconnecting || u.Cursor != "9" || u.LastEventAt != nil || u.LastError == nil ||
		strings.Contains(*u.LastError, secret) || !strings.Contains(*u.LastError, "[REDACTED]") {
		t.Errorf("users: %+v (last_error %q): want reconnecting at the saved cursor, the secret redacted", u, deref(u.LastError))
	}
	bi := got[1]
	if bi.State != streamStopped || bi.LastError == nil || len(*bi.LastError) > maxErrorBytes+len("…") || !strings.HasSuffix(*bi.LastError, "é…") {
		t.Errorf("bills: state %s, last_error of %d bytes: want stopped, the error cut at a character", bi.State, len(deref(bi.LastError)))
	}
	if a := got[0]; a.State != streamNotOwned || a.Owner != "other-def456" {
		t.Errorf("audit: %+v", a)
	}

	cl := b.cluster()
	j, _ := json.Marshal(cl)
	if string(j) != `{"members":[{"id":"host-abc123","streams":["bills","orders","users"]},{"id":"other-def456","streams":["audit"]}]}` {
		t.Errorf("cluster %s", j)
	}
}

// TestStatusLastErrorClears: an error clears when the part it came from
// recovers, not when another part does.
func TestStatusLastErrorClears(t *testing.T) {
	s := NewMetrics().Stream("s")
	lastErr := func() string {
		if e := s.live.err.Load(); e != nil {
			return e.msg
		}
		return ""
	}
	s.WriteFailed(3, errors.New("broker gone"))
	s.State(ingest.StateChange{State: ingest.StateConnected})
	if lastErr() != "broker gone" {
		t.Fatalf("a connect cleared a write error: %q", lastErr())
	}
	s.Published(3)
	if lastErr() != "" {
		t.Fatalf("a publish did not clear the write error: %q", lastErr())
	}
	s.CheckpointFailed(errors.New("disk full"))
	s.Published(1)
	if lastErr() != "disk full" {
		t.Fatalf("a publish cleared a checkpoint error: %q", lastErr())
	}
	s.Checkpointed("4", time.Now())
	if lastErr() != "" {
		t.Fatalf("a save did not clear the checkpoint error: %q", lastErr())
	}
	s.State(ingest.StateChange{State: ingest.StateReconnecting, Err: errors.New("EOF")})
	if lastErr() != "EOF" {
		t.Fatalf("source error: %q", lastErr())
	}
	s.State(ingest.StateChange{State: ingest.StateConnected})
	if lastErr() != "" {
		t.Fatalf("connecting did not clear the source error: %q", lastErr())
	}
}

// TestStatusRoutes: the routes answer JSON, and only to GET.
func TestStatusRoutes(t *testing.T) {
	b := newStatusBoard("m-000000", NewMetrics(), func() []pipeline.StreamStatus { return nil })
	srv := httptest.NewServer(newHTTPHandler(NewMetrics(), NewReadiness(nil), b.routes))
	t.Cleanup(srv.Close)
	for path, want := range map[string]string{"/v1/streams": "[]\n", "/v1/cluster": `{"members":[{"id":"m-000000","streams":[]}]}` + "\n"} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(body) != want {
			t.Errorf("GET %s: %s %q, want %q", path, resp.Status, body, want)
		}
		resp, err = http.Post(srv.URL+path, "application/json", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("POST %s: %s", path, resp.Status)
		}
	}
}

func TestStatusClientAddr(t *testing.T) {
	for addr, want := range map[string]string{
		"127.0.0.1:9464":         "http://127.0.0.1:9464",
		"http://127.0.0.1:9464":  "http://127.0.0.1:9464",
		"http://127.0.0.1:9464/": "http://127.0.0.1:9464",
		"https://ingest:443":     "https://ingest:443",
		" [::1]:9464 ":           "http://[::1]:9464",
	} {
		c, err := newStatusClient(addr, time.Second)
		if err != nil || c.base != want {
			t.Errorf("%q: %v, %v; want %s", addr, c, err, want)
		}
	}
	for _, addr := range []string{"", "ftp://x:1", "http://x:1/v1/streams", "http://", "http://x:1?a=b"} {
		var ue *usageError
		if _, err := newStatusClient(addr, time.Second); !errors.As(err, &ue) {
			t.Errorf("%q: %v, want a usage error", addr, err)
		}
	}
}

// TestStatusClientAnswers: what the daemon answers is checked before it is
// shown.
func TestStatusClientAnswers(t *testing.T) {
	for name, c := range map[string]struct {
		status int
		body   string
		want   string
	}{
		"not found":  {404, "404 page not found", "answered 404 Not Found to GET /v1/streams"},
		"not a list": {200, `{"name":"x"}`, "not a list of streams"},
		"too big":    {200, "[" + strings.Repeat(" ", 1<<10) + "]", "more than 1024 bytes"},
	} {
		t.Run(name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				w.WriteHeader(c.status)
				_, _ = w.Write([]byte(c.body))
			}))
			t.Cleanup(srv.Close)
			sc, err := newStatusClient(srv.URL, 10*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			sc.max = 1 << 10
			if _, _, err := sc.streams(t.Context()); err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("%v, want an error saying %q", err, c.want)
			}
		})
	}
}

// TestStatusTableCells: text from the daemon reaches the terminal as text.
func TestStatusTableCells(t *testing.T) {
	msg := "bad\x1b]0;pwned\x07 thing\nnext"
	var out strings.Builder
	at := time.Date(2026, 12, 4, 17, 1, 2, 500, time.UTC)
	if err := printStatusTable(&out, []StreamStatus{
		{Name: "a\tb", Owner: "m", State: streamConnected, EventsPublished: 7, LastEventAt: &at, LagSeconds: 0.25, LastError: &msg},
	}); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	if strings.ContainsAny(got, "\x1b\x07\t") || strings.Count(got, "\n") != 2 {
		t.Fatalf("control characters reached the table:\n%q", got)
	}
	for _, want := range []string{"a?b", "2026-12-04T17:01:02Z", "0.250s", "bad?]0;pwned? thing?next", "  -  "} {
		if !strings.Contains(got, want) {
			t.Errorf("table lacks %q:\n%s", want, got)
		}
	}
	out.Reset()
	_ = printStatusTable(&out, nil)
	if out.String() != "no streams\n" {
		t.Errorf("empty: %q", out.String())
	}
}

// BenchmarkStatusObserverEvent is what the observer does per accepted event
// now that it also keeps the lag and clears a recovered write error for the
// status endpoints: a receive, a lag and a one-record publish.
func BenchmarkStatusObserverEvent(b *testing.B) {
	s := NewMetrics().Stream("bench")
	b.ReportAllocs()
	for b.Loop() {
		s.Received()
		s.EventLag(3 * time.Millisecond)
		s.Published(1)
	}
}

// BenchmarkStatusStreams is one answer of /v1/streams for 1000 streams.
func BenchmarkStatusStreams(b *testing.B) {
	m := NewMetrics()
	lanes := make([]pipeline.StreamStatus, 1000)
	for i := range lanes {
		lanes[i] = pipeline.StreamStatus{Name: fmt.Sprintf("stream-%04d", (i*7919)%1000), State: pipeline.LaneRunning, Received: "1796404210397", ReceivedAt: time.Now()}
		m.Stream(lanes[i].Name).State(ingest.StateChange{State: ingest.StateConnected})
	}
	board := newStatusBoard("host-abc123", m, func() []pipeline.StreamStatus { return lanes })
	b.ReportAllocs()
	for b.Loop() {
		if _, err := json.Marshal(board.streams()); err != nil {
			b.Fatal(err)
		}
	}
}
