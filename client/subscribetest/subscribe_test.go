package subscribetest

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/restless-stream/ingest/client"
	"github.com/restless-stream/ingest/emulator"
)

// forEach runs fn as a subtest for each subscribe function, on a stream of
// its own.
func forEach(t *testing.T, fn func(t *testing.T, e *env, tg *target)) {
	for _, name := range targetNames {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t)
			fn(t, e, e.newTarget(t, name))
		})
	}
}

func verifier(t *testing.T, secret string) *client.Verifier {
	t.Helper()
	v, err := client.NewVerifier([]string{secret})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestEventsVerifiedWithHeaders: events arrive decoded and verified; the
// runtime requests carry the client's key, its User-Agent, the extra
// headers and the cursor.
func TestEventsVerifiedWithHeaders(t *testing.T) {
	forEach(t, func(t *testing.T, e *env, tg *target) {
		ids := e.publish(t, tg, 3)
		items := collect(t, tg.subscribe(context.Background(), client.WithCursor("1"), client.WithVerifier(verifier(t, tg.secret)),
			client.WithHeader(http.Header{"X-Trace": {"abc"}})), count(3))
		got, errs := events(items)
		if len(errs) != 0 || !slices.Equal(got, ids) {
			t.Fatalf("events %v, errors %v; want %v", got, errs, ids)
		}
		for i, it := range items {
			if it.ev.Type != client.EventUpdate || dataN(t, it.ev) != i+1 || it.ev.Signature == "" {
				t.Fatalf("event %d: %+v", i, it.ev)
			}
		}
		reqs := e.runtimeRequests(tg)
		if len(reqs) != 1 {
			t.Fatalf("%d runtime requests, want 1", len(reqs))
		}
		r := reqs[0]
		for k, want := range map[string]string{"Authorization": "Bearer " + testKey, "X-Trace": "abc", "User-Agent": client.DefaultUserAgent} {
			if got := r.header.Get(k); got != want {
				t.Errorf("%s = %q, want %q", k, got, want)
			}
		}
		if r.query.Get(client.ParamCursor) != "1" {
			t.Errorf("query %v lacks cursor=1", r.query)
		}
		if !tg.ws && r.header.Get(client.HeaderLastEventID) != "1" {
			t.Errorf("Last-Event-ID = %q", r.header.Get(client.HeaderLastEventID))
		}
	})
}

// TestNoReconnectCleanEnd: with reconnecting off, a connection the server
// ends in order ends the iteration without an error.
func TestNoReconnectCleanEnd(t *testing.T) {
	forEach(t, func(t *testing.T, e *env, tg *target) {
		ids := e.publish(t, tg, 3)
		e.faults(t, tg, emulator.Faults{CloseAfter: 2})
		items := collect(t, tg.subscribe(context.Background(), client.WithCursor("1"), client.WithReconnect(false)), nil)
		got, errs := events(items)
		if len(errs) != 0 || !slices.Equal(got, ids[:2]) {
			t.Fatalf("events %v, errors %v; want %v and no error", got, errs, ids[:2])
		}
		if n := len(e.runtimeRequests(tg)); n != 1 {
			t.Fatalf("%d runtime requests, want 1", n)
		}
	})
}

// TestNoReconnectError: with reconnecting off, a failed connection is
// yielded and ends the iteration.
func TestNoReconnectError(t *testing.T) {
	forEach(t, func(t *testing.T, e *env, tg *target) {
		e.faults(t, tg, emulator.Faults{Status: http.StatusServiceUnavailable})
		items := collect(t, tg.subscribe(context.Background(), client.WithReconnect(false)), nil)
		var se *client.StatusError
		if len(items) != 1 || !errors.As(items[0].err, &se) || se.Code != http.StatusServiceUnavailable {
			t.Fatalf("items %v, want one *StatusError 503", items)
		}
		if n := len(e.runtimeRequests(tg)); n != 1 {
			t.Fatalf("%d runtime requests, want 1", n)
		}
	})
}

// TestRefusedForGood: a 403 ends the iteration even with reconnecting on,
// as an error matching ErrForbidden.
func TestRefusedForGood(t *testing.T) {
	forEach(t, func(t *testing.T, e *env, tg *target) {
		e.faults(t, tg, emulator.Faults{Status: http.StatusForbidden})
		items := collect(t, tg.subscribe(context.Background(), client.WithRetryDelay(client.MinReconnectDelay)), nil)
		if len(items) != 1 || !errors.Is(items[0].err, client.ErrForbidden) {
			t.Fatalf("items %v, want one error matching ErrForbidden", items)
		}
		// (A direct session just opened and refused is not opened again.)
		if n := len(e.runtimeRequests(tg)); n != 1 {
			t.Fatalf("%d runtime requests, want 1", n)
		}
	})
}

// TestMaxReconnectsExhausted: WithMaxReconnects(2) allows three connections
// in all, whatever they delivered, then ends with ErrReconnectsExhausted.
func TestMaxReconnectsExhausted(t *testing.T) {
	forEach(t, func(t *testing.T, e *env, tg *target) {
		ids := e.publish(t, tg, 5)
		e.faults(t, tg, emulator.Faults{CloseAfter: 1})
		var mu sync.Mutex
		var states []client.ConnState
		items := collect(t, tg.subscribe(context.Background(), client.WithCursor("1"), client.WithMaxReconnects(2),
			client.WithRetryDelay(client.MinReconnectDelay),
			client.WithStateFunc(func(c client.StateChange) { mu.Lock(); states = append(states, c.State); mu.Unlock() })), nil)
		got, errs := events(items)
		if !slices.Equal(got, ids[:3]) || len(errs) != 1 || !errors.Is(errs[0], client.ErrReconnectsExhausted) {
			t.Fatalf("events %v, errors %v; want %v then ErrReconnectsExhausted", got, errs, ids[:3])
		}
		if n := len(e.runtimeRequests(tg)); n != 3 {
			t.Fatalf("%d runtime requests, want 3", n)
		}
		mu.Lock()
		defer mu.Unlock()
		want := []client.ConnState{client.StateConnecting, client.StateConnected, client.StateReconnecting,
			client.StateConnected, client.StateReconnecting, client.StateConnected, client.StateFailed}
		if !slices.Equal(states, want) {
			t.Fatalf("states %v, want %v", states, want)
		}
	})
}

// TestResumeAfterDrop: a connection cut in the middle of an event resumes
// after the last event received, with nothing lost or repeated.
func TestResumeAfterDrop(t *testing.T) {
	forEach(t, func(t *testing.T, e *env, tg *target) {
		ids := e.publish(t, tg, 5)
		e.faults(t, tg, emulator.Faults{CloseAfter: 2, CloseMidEvent: true, Connections: 1})
		items := collect(t, tg.subscribe(context.Background(), client.WithCursor("1"), client.WithRetryDelay(client.MinReconnectDelay)), count(5))
		got, errs := events(items)
		if len(errs) != 0 || !slices.Equal(got, ids) {
			t.Fatalf("events %v, errors %v; want %v", got, errs, ids)
		}
		reqs := e.runtimeRequests(tg)
		if len(reqs) != 2 {
			t.Fatalf("%d runtime requests, want 2", len(reqs))
		}
		if c := reqs[1].query.Get(client.ParamCursor); c != ids[1] {
			t.Fatalf("resumed with cursor=%q, want %q", c, ids[1])
		}
		if !tg.ws && reqs[1].header.Get(client.HeaderLastEventID) != ids[1] {
			t.Fatalf("resumed with Last-Event-ID %q, want %q", reqs[1].header.Get(client.HeaderLastEventID), ids[1])
		}
	})
}

// TestSinceAndCursor: since= and a saved cursor each start after the event
// they name.
func TestSinceAndCursor(t *testing.T) {
	forEach(t, func(t *testing.T, e *env, tg *target) {
		ids := e.publish(t, tg, 3)
		got, errs := events(collect(t, tg.subscribe(context.Background(), client.WithSince(ids[0])), count(1)))
		if len(errs) != 0 || len(got) != 1 || got[0] != ids[1] {
			t.Fatalf("since: events %v, errors %v; want %s first", got, errs, ids[1])
		}
		got, errs = events(collect(t, tg.subscribe(context.Background(), client.WithCursor(ids[1]), client.WithSince(ids[0])), count(1)))
		if len(errs) != 0 || len(got) != 1 || got[0] != ids[2] {
			t.Fatalf("cursor: events %v, errors %v; want %s first", got, errs, ids[2])
		}
		reqs := e.runtimeRequests(tg)
		if reqs[0].query.Get(client.ParamSince) != ids[0] || reqs[1].query.Get(client.ParamCursor) != ids[1] || reqs[1].query.Has(client.ParamSince) {
			t.Fatalf("queries %v then %v", reqs[0].query, reqs[1].query)
		}
	})
}

// TestBadEventsDoNotEndIteration: an event with a bad signature, one that
// does not decode and one over the size limit are each yielded as an error,
// and the iteration goes on.
func TestBadEventsDoNotEndIteration(t *testing.T) {
	cases := []struct {
		name   string
		faults emulator.Faults
		is     func(error) bool
	}{
		{"bad signature", emulator.Faults{BadSignatureEvery: 2}, func(err error) bool {
			var se *client.SignatureError
			return errors.Is(err, client.ErrSignatureInvalid) && errors.As(err, &se) && se.Event != nil && se.Event.EventID != ""
		}},
		{"malformed", emulator.Faults{MalformedEvery: 2}, func(err error) bool {
			var pe *client.ParseError
			return errors.As(err, &pe)
		}},
		{"oversized", emulator.Faults{OversizedEvery: 2, OversizedBytes: 4096}, func(err error) bool {
			return errors.Is(err, client.ErrEventTooLarge)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			forEach(t, func(t *testing.T, e *env, tg *target) {
				e.publish(t, tg, 4)
				e.faults(t, tg, tc.faults)
				items := collect(t, tg.subscribe(context.Background(), client.WithCursor("1"), client.WithReconnect(false),
					client.WithVerifier(verifier(t, tg.secret)), client.WithMaxEventBytes(1024)),
					func(items []item) bool { return len(items) == 4 })
				got, errs := events(items)
				if len(got) != 2 || len(errs) != 2 || items[1].err == nil || items[2].err != nil {
					t.Fatalf("events %v, errors %v: want an event, an error, an event, an error", got, errs)
				}
				for _, err := range errs {
					if !tc.is(err) {
						t.Fatalf("error %v (%T) is not the kind expected", err, err)
					}
				}
			})
		})
	}
}

// TestTimeouts: a server that never answers fails the open timeout, one
// that goes silent the idle timeout.
func TestTimeouts(t *testing.T) {
	t.Run("open", func(t *testing.T) {
		forEach(t, func(t *testing.T, e *env, tg *target) {
			e.faults(t, tg, emulator.Faults{StallHeaders: true})
			items := collect(t, tg.subscribe(context.Background(), client.WithReconnect(false), client.WithOpenTimeout(200*time.Millisecond)), nil)
			if len(items) != 1 || !errors.Is(items[0].err, client.ErrOpenTimeout) {
				t.Fatalf("items %v, want one error matching ErrOpenTimeout", items)
			}
		})
	})
	t.Run("idle", func(t *testing.T) {
		forEach(t, func(t *testing.T, e *env, tg *target) {
			ids := e.publish(t, tg, 1)
			e.faults(t, tg, emulator.Faults{Stall: true, StallAfter: 1})
			items := collect(t, tg.subscribe(context.Background(), client.WithCursor("1"), client.WithReconnect(false),
				client.WithIdleTimeout(300*time.Millisecond)), nil)
			got, errs := events(items)
			if !slices.Equal(got, ids) || len(errs) != 1 || !errors.Is(errs[0], client.ErrIdleTimeout) {
				t.Fatalf("events %v, errors %v; want %v then ErrIdleTimeout", got, errs, ids)
			}
		})
	})
}

// TestAuthorizationOwnedByClient: extra headers cannot replace the key.
func TestAuthorizationOwnedByClient(t *testing.T) {
	forEach(t, func(t *testing.T, e *env, tg *target) {
		items := collect(t, tg.subscribe(context.Background(), client.WithHeader(http.Header{"Authorization": {"Bearer other"}})), nil)
		if len(items) != 1 || items[0].err == nil {
			t.Fatalf("items %v, want one error", items)
		}
		if n := len(e.runtimeRequests(tg)); n != 0 {
			t.Fatalf("%d runtime requests, want none", n)
		}
	})
}

// serverSide are the functions of the loopback servers' goroutines, which
// end on their own once they see the client gone: the checks are about the
// client's goroutines.
var serverSide = []goleak.Option{
	goleak.IgnoreAnyFunction("net/http.(*connReader).backgroundRead"),
	goleak.IgnoreAnyFunction("net/http.(*conn).serve"),
}

// TestCancelEndsIteration: cancelling the context ends the iteration with
// ctx.Err(), whatever the connection is doing, and leaves no goroutine.
func TestCancelEndsIteration(t *testing.T) {
	forEach(t, func(t *testing.T, e *env, tg *target) {
		ids := e.publish(t, tg, 1)
		before := goleak.IgnoreCurrent()
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		items := collect(t, tg.subscribe(ctx, client.WithCursor("1")), func(items []item) bool {
			if len(items) == 1 {
				cancel() // the connection is open and waiting for the next event
			}
			return false
		})
		got, errs := events(items)
		if !slices.Equal(got, ids) || len(errs) != 1 || !errors.Is(errs[0], context.Canceled) {
			t.Fatalf("events %v, errors %v; want %v then context.Canceled", got, errs, ids)
		}
		e.tr.CloseIdleConnections()
		goleak.VerifyNone(t, append(serverSide, before)...)
	})
}

// TestBreakClosesConnection: breaking out of the loop closes the
// connection, which the server sees.
func TestBreakClosesConnection(t *testing.T) {
	forEach(t, func(t *testing.T, e *env, tg *target) {
		e.publish(t, tg, 2)
		before := goleak.IgnoreCurrent()
		items := collect(t, tg.subscribe(context.Background(), client.WithCursor("1")), count(1))
		if len(items) != 1 || items[0].err != nil {
			t.Fatalf("items %v", items)
		}
		e.tr.CloseIdleConnections()
		goleak.VerifyNone(t, append(serverSide, before)...)
		deadline := time.Now().Add(waitLong)
		for e.em.Subscribers(tg.id) != 0 {
			if time.Now().After(deadline) {
				t.Fatal("the server still sees the subscriber")
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
}

// TestDirectBuiltURL: without a session, a direct subscription reads the
// direct URL built from its inputs, verified with the direct secret.
func TestDirectBuiltURL(t *testing.T) {
	for _, ws := range []bool{false, true} {
		t.Run(fmt.Sprint("websocket=", ws), func(t *testing.T) {
			e := newEnv(t)
			var n atomic.Int64
			up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				fmt.Fprintf(w, `{"n":%d}`, n.Add(1))
			}))
			t.Cleanup(up.Close)
			in := client.DirectInput{URL: up.URL, PollingInterval: 0.01}
			sub := e.c.Streams.SubscribeDirectSSE
			path := "/direct"
			if ws {
				sub, path = e.c.Streams.SubscribeDirectWebSocket, "/ws/direct"
			}
			items := collect(t, sub(context.Background(), in, client.WithVerifier(verifier(t, e.em.DirectSecret()))), count(3))
			got, errs := events(items)
			if len(got) != 3 || len(errs) != 0 {
				t.Fatalf("events %v, errors %v", got, errs)
			}
			reqs := e.requests()
			if len(reqs) != 1 || reqs[0].path != path || reqs[0].query.Get("url") != up.URL {
				t.Fatalf("runtime requests %+v", reqs)
			}
		})
	}
}

// TestBackoffMaxAttempts: with a Backoff, consecutive failed attempts are
// bounded by MaxAttempts; the error says why the last one failed.
func TestBackoffMaxAttempts(t *testing.T) {
	forEach(t, func(t *testing.T, e *env, tg *target) {
		e.faults(t, tg, emulator.Faults{Status: http.StatusServiceUnavailable})
		items := collect(t, tg.subscribe(context.Background(),
			client.WithBackoff(client.Backoff{Initial: client.MinReconnectDelay, Max: 2 * client.MinReconnectDelay, MaxAttempts: 2})), nil)
		var se *client.StatusError
		if len(items) != 1 || !errors.Is(items[0].err, client.ErrReconnectsExhausted) || !errors.As(items[0].err, &se) || se.Code != 503 {
			t.Fatalf("items %v, want one error matching ErrReconnectsExhausted and a 503", items)
		}
		if n := len(e.runtimeRequests(tg)); n != 3 {
			t.Fatalf("%d runtime requests, want 3 (the first and two attempts)", n)
		}
	})
}
