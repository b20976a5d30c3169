package stream

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/restless-stream/ingest"
	"github.com/restless-stream/ingest/internal/backoff"
)

// fakeConn yields the events queued on its channel, then the error sent on end.
type fakeConn struct {
	events chan Event
	end    chan error
	once   sync.Once
	closed chan struct{}
}

func newFakeConn(evs ...Event) *fakeConn {
	c := &fakeConn{events: make(chan Event, len(evs)), end: make(chan error, 1), closed: make(chan struct{})}
	for _, e := range evs {
		c.events <- e
	}
	return c
}

func (c *fakeConn) Read() (Event, error) {
	select {
	case e := <-c.events:
		return e, nil
	default:
	}
	select {
	case e := <-c.events:
		return e, nil
	case err := <-c.end:
		return Event{}, err
	case <-c.closed:
		return Event{}, errors.New("closed")
	}
}

func (c *fakeConn) Close() error {
	c.once.Do(func() { close(c.closed) })
	return nil
}

// script is a Dialer answering each dial with the next step.
type script struct {
	mu      sync.Mutex
	steps   []func() (Conn, error)
	cursors []string
	at      []time.Time
}

func (s *script) Dial(ctx context.Context, cursor string) (Conn, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cursors = append(s.cursors, cursor)
	s.at = append(s.at, time.Now())
	if len(s.steps) == 0 {
		return nil, &ingest.PermanentError{Err: errors.New("script over")}
	}
	step := s.steps[0]
	s.steps = s.steps[1:]
	return step()
}

func failing(err error) func() (Conn, error) { return func() (Conn, error) { return nil, err } }

func dropping(err error, evs ...Event) func() (Conn, error) {
	return func() (Conn, error) {
		c := newFakeConn(evs...)
		c.end <- err
		return c, nil
	}
}

func ev(data, cursor string) Event { return Event{Data: []byte(data), Cursor: cursor} }

type states struct {
	mu sync.Mutex
	s  []ingest.StateChange
}

func (st *states) record(c ingest.StateChange) { st.mu.Lock(); st.s = append(st.s, c); st.mu.Unlock() }
func (st *states) kinds() []ingest.State {
	st.mu.Lock()
	defer st.mu.Unlock()
	var k []ingest.State
	for _, c := range st.s {
		k = append(k, c.State)
	}
	return k
}

func drain(t *testing.T, r *Runner) ([]ingest.Frame, error) {
	t.Helper()
	var fs []ingest.Frame
	for {
		f, err := r.Next(context.Background())
		if err != nil {
			return fs, err
		}
		fs = append(fs, f)
	}
}

func TestRunnerResumesWithLastCursor(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sc := &script{steps: []func() (Conn, error){
			dropping(io.EOF, ev("a", "1"), ev("b", "2")),
			failing(errors.New("connection refused")),
			dropping(io.ErrUnexpectedEOF, ev("c", ""), ev("d", "4")),
			failing(fmt.Errorf("gone: %w", ingest.ErrStreamEnded)),
		}}
		var st states
		r := New(Config{Dialer: sc, Cursor: "0", OnState: st.record,
			Reconnect: backoff.Policy{Initial: time.Second, Max: 8 * time.Second}})
		defer r.Close()
		fs, err := drain(t, r)
		if !errors.Is(err, ingest.ErrStreamEnded) {
			t.Fatalf("err = %v, want ErrStreamEnded", err)
		}
		var got []string
		for _, f := range fs {
			got = append(got, string(f.Data)+"@"+f.Cursor)
		}
		if want := "a@1 b@2 c@2 d@4"; strings.Join(got, " ") != want {
			t.Fatalf("frames %q, want %q", got, want)
		}
		if want := "0 2 2 4"; strings.Join(sc.cursors, " ") != want {
			t.Fatalf("dial cursors %q, want %q", sc.cursors, want)
		}
		if r.Cursor() != "4" {
			t.Fatalf("Cursor() = %q", r.Cursor())
		}
		want := []ingest.State{ingest.StateConnecting, ingest.StateConnected, ingest.StateReconnecting,
			ingest.StateReconnecting, ingest.StateConnected, ingest.StateReconnecting, ingest.StateEnded}
		if fmt.Sprint(st.kinds()) != fmt.Sprint(want) {
			t.Fatalf("states %v, want %v", st.kinds(), want)
		}
		// attempt 1 after the first drop, 2 after the refused dial, then 1
		// again: the third connection delivered an event.
		var attempts []int
		for _, c := range st.s {
			if c.State == ingest.StateReconnecting {
				attempts = append(attempts, c.Attempt)
				if c.Err == nil {
					t.Fatal("reconnecting without a reason")
				}
			}
		}
		if fmt.Sprint(attempts) != "[1 2 1]" {
			t.Fatalf("attempts %v", attempts)
		}
	})
}

func TestRunnerBackoffBoundedAndExhausted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var steps []func() (Conn, error)
		for range 6 {
			steps = append(steps, failing(errors.New("HTTP 503")))
		}
		sc := &script{steps: steps}
		var st states
		p := backoff.Policy{Initial: time.Second, Max: 4 * time.Second, MaxAttempts: 5}
		r := New(Config{Dialer: sc, OnState: st.record, Reconnect: p})
		defer r.Close()
		start := time.Now()
		_, err := r.Next(context.Background())
		if !ingest.IsPermanent(err) || !strings.Contains(err.Error(), "exhausted after 5 attempts") {
			t.Fatalf("err = %v", err)
		}
		if len(sc.at) != 6 {
			t.Fatalf("%d dials, want 6 (1 + MaxAttempts)", len(sc.at))
		}
		prev := start
		for i, at := range sc.at[1:] {
			gap := at.Sub(prev)
			full := min(time.Second<<i, 4*time.Second)
			if gap < full/2 || gap > full {
				t.Fatalf("gap before attempt %d = %v, want in [%v, %v]", i+1, gap, full/2, full)
			}
			prev = at
		}
		k := st.kinds()
		if k[len(k)-1] != ingest.StateFailed {
			t.Fatalf("last state %v", k[len(k)-1])
		}
	})
}

func TestRunnerHonoursRetryAfterWithinMax(t *testing.T) {
	for _, tc := range []struct {
		name        string
		hint, floor time.Duration
	}{
		{"longer than computed", 7 * time.Second, 7 * time.Second},
		{"beyond max is capped", time.Hour, 10 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				sc := &script{steps: []func() (Conn, error){
					failing(WithRetryAfter(errors.New("HTTP 429"), tc.hint)),
					dropping(fmt.Errorf("x: %w", ingest.ErrStreamEnded)),
				}}
				r := New(Config{Dialer: sc, Reconnect: backoff.Policy{Initial: time.Second, Max: 10 * time.Second}})
				defer r.Close()
				_, _ = drain(t, r)
				if gap := sc.at[1].Sub(sc.at[0]); gap != tc.floor {
					t.Fatalf("waited %v, want %v", gap, tc.floor)
				}
			})
		})
	}
}

func TestRunnerPermanent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		perm := &ingest.PermanentError{Err: errors.New("HTTP 401")}
		sc := &script{steps: []func() (Conn, error){failing(perm), failing(perm)}}
		var st states
		r := New(Config{Dialer: sc, OnState: st.record})
		defer r.Close()
		_, err := r.Next(context.Background())
		if !errors.Is(err, perm) || len(sc.at) != 1 {
			t.Fatalf("err %v after %d dials, want the 401 after 1", err, len(sc.at))
		}
		if _, err2 := r.Next(context.Background()); !errors.Is(err2, perm) {
			t.Fatalf("second Next: %v", err2)
		}
		if k := st.kinds(); k[len(k)-1] != ingest.StateFailed {
			t.Fatalf("states %v", k)
		}
	})
}

func TestRunnerNextCancelKeepsConnection(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newFakeConn()
		c.events = make(chan Event, 1)
		sc := &script{steps: []func() (Conn, error){func() (Conn, error) { return c, nil }}}
		r := New(Config{Dialer: sc})
		defer r.Close()
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if _, err := r.Next(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err %v", err)
		}
		c.events <- ev("x", "9")
		f, err := r.Next(context.Background())
		if err != nil || string(f.Data) != "x" || len(sc.at) != 1 {
			t.Fatalf("after cancel: %q %v, %d dials", f.Data, err, len(sc.at))
		}
	})
}

func TestRunnerBackpressure(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newFakeConn()
		c.events = make(chan Event, 100)
		for i := range 100 {
			c.events <- ev("e", fmt.Sprint(i))
		}
		sc := &script{steps: []func() (Conn, error){func() (Conn, error) { return c, nil }}}
		r := New(Config{Dialer: sc, Queue: 2})
		defer r.Close()
		if _, err := r.Next(context.Background()); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		// One delivered, two queued, one held by the blocked reader.
		if left := len(c.events); left != 100-4 {
			t.Fatalf("reader consumed %d events ahead of the consumer", 100-left-1)
		}
	})
}

// TestRunnerQueueBytes: the queue holds events up to QueueBytes, and one
// event larger than that alone; taking events makes room again.
func TestRunnerQueueBytes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newFakeConn()
		c.events = make(chan Event, 100)
		sizes := []int{400, 400, 400, 5000, 100, 100, 100, 100}
		for i, n := range sizes {
			c.events <- ev(strings.Repeat("x", n), fmt.Sprint(i))
		}
		sc := &script{steps: []func() (Conn, error){func() (Conn, error) { return c, nil }}}
		r := New(Config{Dialer: sc, Queue: 64, QueueBytes: 1000})
		defer r.Close()
		next := func(want int) {
			t.Helper()
			f, err := r.Next(context.Background())
			if err != nil || len(f.Data) != want {
				t.Fatalf("Next = %d bytes, %v; want %d", len(f.Data), err, want)
			}
			synctest.Wait()
		}
		read := func() int { return len(sizes) - len(c.events) }
		next(400)
		// Queued: 400, 400 (800 of 1000); the reader holds 5000 waiting for
		// the queue to empty.
		if got := read(); got != 4 {
			t.Fatalf("reader took %d events, want 4", got)
		}
		next(400)
		if got := read(); got != 4 {
			t.Fatalf("after one more Next the reader took %d events, want 4", got)
		}
		next(400) // the queue is empty: 5000 goes in alone
		if got := read(); got != 5 {
			t.Fatalf("reader took %d events, want 5", got)
		}
		next(5000) // now the 100s fit together
		if got := read(); got != len(sizes) {
			t.Fatalf("reader took %d events, want all %d", got, len(sizes))
		}
		for range 4 {
			next(100)
		}
		if q := r.queued.Load(); q != 0 {
			t.Fatalf("queued bytes %d after every event was taken", q)
		}
	})
}

func TestRunnerCloseWhileReadingAndSleeping(t *testing.T) {
	for _, name := range []string{"reading", "sleeping", "never started"} {
		t.Run(name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				c := newFakeConn()
				sc := &script{steps: []func() (Conn, error){
					func() (Conn, error) { return c, nil },
				}}
				if name == "sleeping" {
					sc.steps = []func() (Conn, error){failing(errors.New("refused"))}
				}
				r := New(Config{Dialer: sc})
				res := make(chan error, 1)
				if name != "never started" {
					go func() { _, err := r.Next(context.Background()); res <- err }()
					synctest.Wait()
				}
				if err := r.Close(); err != nil {
					t.Fatal(err)
				}
				if name == "never started" {
					_, err := r.Next(context.Background())
					res <- err
				}
				if err := <-res; !errors.Is(err, ErrClosed) {
					t.Fatalf("Next after Close: %v", err)
				}
				if _, err := r.Next(context.Background()); !errors.Is(err, ErrClosed) {
					t.Fatalf("Next after Close: %v", err)
				}
				_ = r.Close()
				// synctest.Test fails if any goroutine is left.
			})
		})
	}
}

func TestWatchdog(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		pr, pw := io.Pipe()
		fired := make(chan struct{})
		w := NewWatchdog(10*time.Second, func() { close(fired); pr.CloseWithError(errors.New("idle")) })
		r := w.Reader(pr)
		go func() {
			// Slow drip: a byte every 9s never trips a 10s watchdog.
			for range 5 {
				time.Sleep(9 * time.Second)
				_, _ = pw.Write([]byte("x"))
			}
		}()
		buf := make([]byte, 8)
		for range 5 {
			if _, err := r.Read(buf); err != nil {
				t.Fatal(err)
			}
			// A slow consumer: time outside Read does not count.
			time.Sleep(time.Minute)
		}
		if w.Fired() {
			t.Fatal("fired during slow drip or slow consumer")
		}
		start := time.Now()
		_, err := r.Read(buf)
		if err == nil || !w.Fired() || time.Since(start) != 10*time.Second {
			t.Fatalf("read err %v fired %v after %v", err, w.Fired(), time.Since(start))
		}
		<-fired
		if !errors.Is(w.Err(), ErrIdle) {
			t.Fatal(w.Err())
		}
	})
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"", 0, false},
		{"120", 2 * time.Minute, true},
		{" 0 ", 0, true},
		{"-1", 0, false},
		{"1.5", 0, false},
		{"soon", 0, false},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second, true},
		{now.Add(-time.Hour).Format(http.TimeFormat), 0, true},
		{"99999999999999999999", 1<<63 - 1, true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			d, ok := ParseRetryAfter(tt.in, now)
			if d != tt.want || ok != tt.ok {
				t.Fatalf("ParseRetryAfter(%q) = %v, %v; want %v, %v", tt.in, d, ok, tt.want, tt.ok)
			}
		})
	}
}

func TestCheckStatus(t *testing.T) {
	now := time.Now()
	tests := []struct {
		code      int
		retry     string
		ended     bool
		permanent bool
		hint      time.Duration
	}{
		{204, "", true, false, 0},
		{401, "", false, true, 0},
		{403, "", false, true, 0},
		{404, "", false, true, 0},
		{410, "", false, true, 0},
		{408, "", false, false, 0},
		{429, "3", false, false, 3 * time.Second},
		{503, "5", false, false, 5 * time.Second},
		{500, "", false, false, 0},
		{302, "", false, false, 0},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.code), func(t *testing.T) {
			resp := &http.Response{StatusCode: tt.code, Header: http.Header{}}
			if tt.retry != "" {
				resp.Header.Set("Retry-After", tt.retry)
			}
			err := CheckStatus(resp, "http://h/x", []byte(`{"message":"nope"}`), now)
			if errors.Is(err, ingest.ErrStreamEnded) != tt.ended || ingest.IsPermanent(err) != tt.permanent || RetryAfterOf(err) != tt.hint {
				t.Fatalf("CheckStatus(%d) = %v (permanent %v, hint %v)", tt.code, err, ingest.IsPermanent(err), RetryAfterOf(err))
			}
			var se *StatusError
			if !tt.ended && (!errors.As(err, &se) || se.Code != tt.code || !strings.Contains(err.Error(), "nope")) {
				t.Fatalf("error %v lacks status or body", err)
			}
		})
	}
}

func TestResumeURL(t *testing.T) {
	u, _ := url.Parse("http://h/?streamId=s1&since=2026-01-01&cursor=old")
	if got := ResumeURL(u, "42", "x"); got != "http://h/?cursor=42&streamId=s1" {
		t.Fatal(got)
	}
	u, _ = url.Parse("http://h/?streamId=s1")
	if got := ResumeURL(u, "", "2026-01-01T00:00:00Z"); got != "http://h/?since=2026-01-01T00%3A00%3A00Z&streamId=s1" {
		t.Fatal(got)
	}
	if got := ResumeURL(u, "", ""); got != "http://h/?streamId=s1" {
		t.Fatal(got)
	}
}

func TestRedact(t *testing.T) {
	raw := "https://user:pw@h/direct?url=https%3A%2F%2Fa&apiKey=rs_secret&headers=%7B%22Authorization%22%3A%22tok%22%7D"
	got := RedactURL(raw)
	for _, leak := range []string{"rs_secret", "tok", "pw@"} {
		if strings.Contains(got, leak) {
			t.Fatalf("%q leaks %q", got, leak)
		}
	}
	if !strings.Contains(got, "url=https") {
		t.Fatalf("%q lost the harmless query", got)
	}
}

func TestScrubError(t *testing.T) {
	raw := "http://u:p%40ss@h/ws/direct?url=x&apiKey=rs_se%2Fcret&headers=%7B%22a%22%3A%22tok%22%7D"
	base := fmt.Errorf("failed to dial: %w", &url.Error{Op: "Get", URL: raw, Err: io.EOF})
	got := ScrubError(base, raw).Error()
	for _, leak := range []string{"rs_se", "tok", "p%40ss"} {
		if strings.Contains(got, leak) {
			t.Fatalf("%q leaks %q", got, leak)
		}
	}
	plain := errors.New("connection refused")
	if ScrubError(plain, raw) != plain {
		t.Fatal("a clean error must be kept as is")
	}
}
