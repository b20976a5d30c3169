package sse

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/restless-stream/ingest"
	"github.com/restless-stream/ingest/client"
)

// step is one scripted write of an in-memory response: wait, then write.
type step struct {
	wait time.Duration
	data string
}

// reply is one scripted answer of the in-memory transport.
type reply struct {
	status int
	header []string // pairs
	steps  []step   // body writes (200 only); the body ends after the last
	hang   bool     // after the steps, never end (until cancelled)
}

// memTransport answers requests from a script without any network, so the
// timing tests can run in a synctest bubble. It honours request cancellation
// as net/http does. Past the script it answers 204.
type memTransport struct {
	mu      sync.Mutex
	replies []reply
	at      []time.Time
	lastIDs []string
}

func (m *memTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	m.mu.Lock()
	m.at = append(m.at, time.Now())
	m.lastIDs = append(m.lastIDs, req.Header.Get("Last-Event-ID"))
	rep := reply{status: http.StatusNoContent}
	if len(m.replies) > 0 {
		rep, m.replies = m.replies[0], m.replies[1:]
	}
	m.mu.Unlock()
	resp := &http.Response{StatusCode: rep.status, Header: http.Header{}, Request: req}
	for i := 0; i+1 < len(rep.header); i += 2 {
		resp.Header.Set(rep.header[i], rep.header[i+1])
	}
	if rep.status != http.StatusOK {
		resp.Body = io.NopCloser(strings.NewReader(""))
		return resp, nil
	}
	if resp.Header.Get("Content-Type") == "" {
		resp.Header.Set("Content-Type", "text/event-stream")
	}
	pr, pw := io.Pipe()
	stop := context.AfterFunc(req.Context(), func() { pr.CloseWithError(req.Context().Err()) })
	go func() {
		defer stop()
		for _, s := range rep.steps {
			time.Sleep(s.wait)
			if _, err := io.WriteString(pw, s.data); err != nil {
				return
			}
		}
		if rep.hang {
			<-req.Context().Done()
		}
		pw.Close()
	}()
	resp.Body = pr
	return resp, nil
}

// drainMem reads s to its end without a deadline: time is fake in a bubble.
func drainMem(s *Source) ([]ingest.Frame, error) {
	var fs []ingest.Frame
	for {
		f, err := s.Next(context.Background())
		if err != nil {
			return fs, err
		}
		s.Progress() // as the pipeline does for every accepted frame
		fs = append(fs, f)
	}
}

func (m *memTransport) gaps() []time.Duration {
	m.mu.Lock()
	defer m.mu.Unlock()
	var g []time.Duration
	for i := 1; i < len(m.at); i++ {
		g = append(g, m.at[i].Sub(m.at[i-1]))
	}
	return g
}

func memSource(t *testing.T, m *memTransport, cfg Config) (*Source, *recorder) {
	t.Helper()
	rec := &recorder{}
	cfg.URL = "http://restless.test/?streamId=s1"
	cfg.Client = withTransport(t, m)
	cfg.OnState = rec.on
	s, err := NewSource(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, rec
}

func TestIdleStallReconnects(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := &memTransport{replies: []reply{
			{status: 200, steps: []step{{0, evt("1", body("1"))}, {0, ": keepalive\n"}}, hang: true},
			{status: 200, steps: []step{{0, evt("2", body("2"))}}},
		}}
		s, rec := memSource(t, m, Config{IdleTimeout: 10 * time.Second,
			Reconnect: client.Backoff{Initial: time.Second, Max: time.Second}})
		fs, err := drainMem(s)
		if !errors.Is(err, ingest.ErrStreamEnded) || len(fs) != 2 {
			t.Fatalf("%d frames, %v", len(fs), err)
		}
		if m.lastIDs[1] != "1" {
			t.Fatalf("resumed from %q", m.lastIDs[1])
		}
		// 10s of silence, then a jittered 0.5–1s backoff.
		if g := m.gaps()[0]; g < 10500*time.Millisecond || g > 11*time.Second {
			t.Fatalf("reconnected after %v", g)
		}
		var idle bool
		for _, c := range rec.all() {
			idle = idle || (c.State == ingest.StateReconnecting && strings.Contains(c.Err.Error(), "no data from the server for 10s"))
		}
		if !idle {
			t.Fatalf("no idle reason in %v", rec.all())
		}
	})
}

func TestSlowDripAndSlowConsumer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ev := evt("1", body("1"))
		var steps []step
		for i := range len(ev) {
			steps = append(steps, step{9 * time.Second, ev[i : i+1]})
		}
		steps = append(steps, step{0, evt("2", body("2"))}, step{0, evt("3", body("3"))})
		m := &memTransport{replies: []reply{{status: 200, steps: steps}}}
		s, _ := memSource(t, m, Config{IdleTimeout: 10 * time.Second})
		var fs []ingest.Frame
		for {
			f, err := s.Next(context.Background())
			if err != nil {
				break
			}
			fs = append(fs, f)
			time.Sleep(time.Hour) // a slow consumer is no idle server
		}
		if len(fs) != 3 || string(fs[0].Data) != body("1") {
			t.Fatalf("frames %+v", fs)
		}
		if len(m.at) != 2 { // the stream, then the 204 after its clean end
			t.Fatalf("%d connections", len(m.at))
		}
	})
}

func TestRetryAfterAndRetryField(t *testing.T) {
	tests := []struct {
		name string
		rep  reply
		want time.Duration
	}{
		{"429 Retry-After seconds", reply{status: 429, header: []string{"Retry-After", "7"}}, 7 * time.Second},
		{"503 Retry-After date", reply{status: 503, header: []string{"Retry-After", "Sat, 01 Jan 2000 00:00:09 GMT"}}, 9 * time.Second},
		{"retry: field", reply{status: 200, steps: []step{{0, "retry: 6000\n\n"}}}, 6 * time.Second},
		{"Retry-After above Max honoured", reply{status: 429, header: []string{"Retry-After", "60"}}, 60 * time.Second},
		{"Retry-After capped at the ceiling", reply{status: 429, header: []string{"Retry-After", "3600"}}, client.MaxRetryAfter},
		{"retry: field above Max honoured", reply{status: 200, steps: []step{{0, "retry: 45000\n\n"}}}, 45 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				if !time.Now().Equal(time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)) {
					t.Fatalf("synctest epoch changed: %v", time.Now())
				}
				m := &memTransport{replies: []reply{tt.rep}}
				s, rec := memSource(t, m, Config{Reconnect: client.Backoff{Initial: 100 * time.Millisecond, Max: 20 * time.Second}})
				_, err := drainMem(s)
				if !errors.Is(err, ingest.ErrStreamEnded) {
					t.Fatal(err)
				}
				if g := m.gaps()[0]; g != tt.want {
					t.Fatalf("waited %v, want %v", g, tt.want)
				}
				var delays []time.Duration
				for _, c := range rec.all() {
					if c.State == ingest.StateReconnecting {
						delays = append(delays, c.Delay)
					}
				}
				if len(delays) == 0 || delays[0] != tt.want {
					t.Fatalf("reported delays %v", delays)
				}
			})
		})
	}
}

func Test503StormBoundedByBackoff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var replies []reply
		for range 8 {
			replies = append(replies, reply{status: 503})
		}
		m := &memTransport{replies: replies}
		p := client.Backoff{Initial: time.Second, Max: 16 * time.Second, MaxAttempts: 6}
		s, rec := memSource(t, m, Config{Reconnect: p})
		_, err := drainMem(s)
		if !ingest.IsPermanent(err) || !strings.Contains(err.Error(), "503") {
			t.Fatalf("err = %v", err)
		}
		gaps := m.gaps()
		if len(gaps) != 6 {
			t.Fatalf("%d retries, want 6", len(gaps))
		}
		for i, g := range gaps {
			full := min(time.Second<<i, 16*time.Second)
			if g < full/2 || g > full {
				t.Fatalf("retry %d after %v, want within [%v, %v]", i+1, g, full/2, full)
			}
		}
		st := rec.all()
		if last := st[len(st)-1]; last.State != ingest.StateFailed {
			t.Fatalf("last state %+v", last)
		}
	})
}
