package stream

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
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
		return nil, Permanent(errors.New("script over"))
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
	s  []StateChange
}

func (st *states) record(c StateChange) { st.mu.Lock(); st.s = append(st.s, c); st.mu.Unlock() }
func (st *states) kinds() []State {
	st.mu.Lock()
	defer st.mu.Unlock()
	var k []State
	for _, c := range st.s {
		k = append(k, c.State)
	}
	return k
}

func drain(t *testing.T, r *Runner) ([]Event, error) {
	t.Helper()
	var fs []Event
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
			failing(fmt.Errorf("gone: %w", ErrStreamEnded)),
		}}
		var st states
		r := New(Config{Dialer: sc, Cursor: "0", OnState: st.record,
			Policy: Policy{Initial: time.Second, Max: 8 * time.Second}})
		defer r.Close()
		fs, err := drain(t, r)
		if !errors.Is(err, ErrStreamEnded) {
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
		want := []State{StateConnecting, StateConnected, StateReconnecting,
			StateReconnecting, StateConnected, StateReconnecting, StateEnded}
		if fmt.Sprint(st.kinds()) != fmt.Sprint(want) {
			t.Fatalf("states %v, want %v", st.kinds(), want)
		}
		// attempt 1 after the first drop, 2 after the refused dial, then 1
		// again: the third connection delivered an event.
		var attempts []int
		for _, c := range st.s {
			if c.State == StateReconnecting {
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
		p := Policy{Initial: time.Second, Max: 4 * time.Second, MaxAttempts: 5}
		r := New(Config{Dialer: sc, OnState: st.record, Policy: p})
		defer r.Close()
		start := time.Now()
		_, err := r.Next(context.Background())
		if !errors.Is(err, ErrExhausted) || !strings.Contains(err.Error(), "exhausted after 5 attempts") {
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
		if k[len(k)-1] != StateFailed {
			t.Fatalf("last state %v", k[len(k)-1])
		}
	})
}

func TestRunnerHonoursRetryAfterUpToCeiling(t *testing.T) {
	for _, tc := range []struct {
		name        string
		hint, floor time.Duration
	}{
		{"longer than computed", 7 * time.Second, 7 * time.Second},
		{"beyond max is honoured", time.Minute, time.Minute},
		{"beyond the ceiling is capped", time.Hour, MaxHint},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				sc := &script{steps: []func() (Conn, error){
					failing(WithRetryAfter(errors.New("HTTP 429"), tc.hint)),
					dropping(fmt.Errorf("x: %w", ErrStreamEnded)),
				}}
				r := New(Config{Dialer: sc, Policy: Policy{Initial: time.Second, Max: 10 * time.Second}})
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
		perm := Permanent(errors.New("HTTP 401"))
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
		if k := st.kinds(); k[len(k)-1] != StateFailed {
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

// TestRunnerOnce: without reconnecting, an orderly end of the one connection
// ends the runner cleanly, any other end fails it, and no second dial is made.
func TestRunnerOnce(t *testing.T) {
	for _, tc := range []struct {
		name  string
		end   error
		ended bool
	}{
		{"orderly end", fmt.Errorf("sse: %w", ErrServerClosed), true},
		{"failure", errors.New("connection reset"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				sc := &script{steps: []func() (Conn, error){dropping(tc.end, ev("a", "1")), dropping(io.EOF, ev("b", "2"))}}
				var st states
				r := New(Config{Dialer: sc, OnState: st.record, Policy: Policy{Once: true}})
				defer r.Close()
				fs, err := drain(t, r)
				if len(fs) != 1 || len(sc.at) != 1 {
					t.Fatalf("%d events over %d dials, want 1 over 1", len(fs), len(sc.at))
				}
				if errors.Is(err, ErrStreamEnded) != tc.ended || !errors.Is(err, tc.end) {
					t.Fatalf("err = %v", err)
				}
				want := StateFailed
				if tc.ended {
					want = StateEnded
				}
				if k := st.kinds(); k[len(k)-1] != want {
					t.Fatalf("states %v", k)
				}
			})
		})
	}
}

// TestRunnerMaxReconnects: the reconnect budget counts every reconnect,
// whatever the connection before it delivered, unlike MaxAttempts.
func TestRunnerMaxReconnects(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var steps []func() (Conn, error)
		for i := range 5 {
			steps = append(steps, dropping(fmt.Errorf("x: %w", ErrServerClosed), ev("e", fmt.Sprint(i+1))))
		}
		sc := &script{steps: steps}
		r := New(Config{Dialer: sc, Policy: Policy{Initial: time.Second, LimitReconnects: true, MaxReconnects: 2}})
		defer r.Close()
		fs, err := drain(t, r)
		if !errors.Is(err, ErrExhausted) || !errors.Is(err, ErrServerClosed) || !strings.Contains(err.Error(), "after 2 reconnects") {
			t.Fatalf("err = %v", err)
		}
		if len(fs) != 3 || len(sc.at) != 3 {
			t.Fatalf("%d events over %d dials, want 3 over 3 (one connection and two reconnects)", len(fs), len(sc.at))
		}
		if want := " 1 2"; strings.Join(sc.cursors, " ") != want {
			t.Fatalf("dial cursors %q, want %q", sc.cursors, want)
		}
	})
}
