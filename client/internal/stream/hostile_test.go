package stream

import (
	"context"
	"errors"
	"fmt"
	"io"
	"testing"
	"testing/synctest"
	"time"
)

// silent is a connection that delivers evs, then nothing (a server sending
// only heartbeats) until it is closed.
func silent(evs ...Event) func() (Conn, error) {
	return func() (Conn, error) { return newFakeConn(evs...), nil }
}

// TestMaxAttemptsCountsOnlyProgress: connections that each deliver one
// event the consumer rejects (a bad or repeated event) and close are no
// progress: with ExplicitProgress the budget runs out; an acknowledged
// event restarts the count.
func TestMaxAttemptsCountsOnlyProgress(t *testing.T) {
	tests := []struct {
		name     string
		explicit bool
		ack      func(i int) bool // whether the consumer accepts event i
		wantErr  error
		// dials (the end of a connection waits for the consumer to judge
		// its events, so the count is exact)
		minDial, maxDial int
	}{
		{"rejected events exhaust the budget", true, func(int) bool { return false }, ErrExhausted, 4, 4},
		{"accepted events restart the count", true, func(int) bool { return true }, ErrStreamEnded, 11, 11},
		{"one accepted event restarts it once", true, func(i int) bool { return i == 2 }, ErrExhausted, 6, 6},
		{"without explicit progress any event counts", false, func(int) bool { return false }, ErrStreamEnded, 11, 11},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				sc := &script{}
				for i := range 10 {
					sc.steps = append(sc.steps, dropping(io.ErrUnexpectedEOF, ev("bad", fmt.Sprint(i))))
				}
				sc.steps = append(sc.steps, failing(fmt.Errorf("x: %w", ErrStreamEnded)))
				r := New(Config{Dialer: sc, Policy: Policy{Initial: time.Second, MaxAttempts: 3}, ExplicitProgress: tt.explicit})
				defer r.Close()
				var err error
				for i := 0; ; i++ {
					var e Event
					if e, err = r.Next(context.Background()); err != nil {
						break
					}
					_ = e
					if tt.ack(i) {
						r.Progress()
					}
				}
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("ended with %v, want %v", err, tt.wantErr)
				}
				if n := len(sc.at); n < tt.minDial || n > tt.maxDial {
					t.Fatalf("%d dials, want %d to %d", n, tt.minDial, tt.maxDial)
				}
			})
		})
	}
}

// TestMaxSilence: a connection that delivers no event for MaxSilence is
// ended and the runner reconnects; off by default; LastEvent tells when the
// last event came.
func TestMaxSilence(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sc := &script{steps: []func() (Conn, error){
			silent(ev("a", "1")),
			silent(),
			failing(fmt.Errorf("x: %w", ErrStreamEnded)),
		}}
		var st states
		start := time.Now()
		r := New(Config{Dialer: sc, Policy: Policy{Initial: time.Second}, MaxSilence: time.Minute, OnState: st.record})
		defer r.Close()
		if !r.LastEvent().IsZero() {
			t.Fatal("LastEvent before any event")
		}
		if _, err := r.Next(context.Background()); err != nil {
			t.Fatal(err)
		}
		if !r.LastEvent().Equal(start) {
			t.Fatalf("LastEvent %v, want %v", r.LastEvent(), start)
		}
		_, err := drain(t, r)
		if !errors.Is(err, ErrStreamEnded) {
			t.Fatal(err)
		}
		if len(sc.at) != 3 || sc.at[1].Sub(sc.at[0]) < time.Minute || sc.at[2].Sub(sc.at[1]) < time.Minute {
			t.Fatalf("dials at %v: want each silent connection ended after a minute", sc.at)
		}
		var silences int
		for _, c := range st.s {
			if c.State == StateReconnecting && errors.Is(c.Err, ErrSilence) {
				silences++
			}
		}
		if silences != 2 {
			t.Fatalf("states %+v, want two reconnects for silence", st.s)
		}
	})
	synctest.Test(t, func(t *testing.T) {
		sc := &script{steps: []func() (Conn, error){silent(ev("a", "1"))}}
		r := New(Config{Dialer: sc})
		defer r.Close()
		if _, err := r.Next(context.Background()); err != nil {
			t.Fatal(err)
		}
		time.Sleep(24 * time.Hour)
		synctest.Wait()
		if len(sc.at) != 1 {
			t.Fatalf("%d dials: max silence must be off by default", len(sc.at))
		}
	})
}
