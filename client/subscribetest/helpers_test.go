// Package subscribetest runs the SDK's subscribe functions against the
// emulator, over real HTTP and WebSocket on loopback. It is a package of its
// own because the emulator imports package client.
package subscribetest

import (
	"context"
	"encoding/json"
	"fmt"
	"iter"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/restless-stream/ingest/client"
	"github.com/restless-stream/ingest/emulator"
)

const testKey = "rs_5ub5cr1be0123456789abcdef0123456789abcdef0123456789abcdef012345"

// waitLong bounds every wait; reaching it is a failure, never a measurement.
const waitLong = 20 * time.Second

// request is what the runtime received.
type request struct {
	path   string
	query  url.Values
	header http.Header
}

// env is an emulator behind a recording httptest server, and a client of it.
type env struct {
	em *emulator.Emulator
	c  *client.Client
	tr *http.Transport
	// url is the server's base URL, for the REST API and the runtime.
	url string
	// hang is an upstream that never answers, so that a direct session's
	// poller publishes nothing and the test's events are its only ones.
	hang string

	// hung counts the requests the hanging upstream holds.
	hung atomic.Int64

	mu   sync.Mutex
	reqs []request
}

func newEnv(t *testing.T) *env {
	t.Helper()
	em, err := emulator.New(emulator.Options{APIKeys: []string{testKey}, KeepAlive: -1, PingInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{em: em}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/", "/ws", "/direct", "/ws/direct":
			e.mu.Lock()
			e.reqs = append(e.reqs, request{path: r.URL.Path, query: r.URL.Query(), header: r.Header.Clone()})
			e.mu.Unlock()
		}
		em.Handler().ServeHTTP(w, r)
	}))
	release := make(chan struct{})
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.hung.Add(1)
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	// Cleanups run last first: the emulator ends its streams before the
	// servers wait for their handlers.
	t.Cleanup(hang.Close)
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })
	t.Cleanup(func() {
		if err := em.Close(); err != nil {
			t.Error(err)
		}
	})
	e.url, e.hang = srv.URL, hang.URL
	// Without keep-alives no connection waits idle in the pool (nor one
	// dialled for a request that got another first), so that what the
	// goroutine checks see is the subscription's alone.
	e.tr = &http.Transport{DisableKeepAlives: true}
	t.Cleanup(e.tr.CloseIdleConnections)
	e.c, err = client.New(testKey, client.WithBaseURL(srv.URL), client.WithStreamBaseURL(srv.URL),
		client.WithHTTPClient(&http.Client{Transport: e.tr}))
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *env) requests() []request {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]request(nil), e.reqs...)
}

// target is one of the four subscribe functions on a stream of its own.
type target struct {
	name string
	// id names the stream (or session) for the emulator's Go API.
	id string
	// secret signs its events.
	secret string
	// subscribe calls the subscribe function.
	subscribe func(ctx context.Context, opts ...client.SubscribeOption) iter.Seq2[*client.Event, error]
	ws        bool
}

var targetNames = []string{"SubscribeSSE", "SubscribeWebSocket", "SubscribeDirectSSE", "SubscribeDirectWebSocket"}

// newTarget makes a stream for the subscribe function called name: a
// managed stream without a poller, or a direct session whose upstream never
// answers. Either way the test's Publish calls are its only events.
func (e *env) newTarget(t *testing.T, name string) *target {
	t.Helper()
	tg := &target{name: name, ws: name == "SubscribeWebSocket" || name == "SubscribeDirectWebSocket"}
	switch name {
	case "SubscribeSSE", "SubscribeWebSocket":
		info, err := e.em.CreateStream(emulator.StreamSpec{URL: e.hang, Inactive: true, Secret: "stream-secret"})
		if err != nil {
			t.Fatal(err)
		}
		tg.id, tg.secret = info.ID, info.Secret
		build := client.BuildSSEURL
		sub := e.c.Streams.SubscribeSSE
		if tg.ws {
			build, sub = client.BuildWebSocketURL, e.c.Streams.SubscribeWebSocket
		}
		u, err := build(e.c.StreamBaseURL(), client.RuntimeTarget{StreamID: info.ID})
		if err != nil {
			t.Fatal(err)
		}
		tg.subscribe = func(ctx context.Context, opts ...client.SubscribeOption) iter.Seq2[*client.Event, error] {
			return sub(ctx, u, opts...)
		}
	default:
		in := client.DirectInput{URL: e.hang, PollingInterval: 3600}
		key := fmt.Sprintf("%s-%s", t.Name(), name)
		hung := e.hung.Load()
		ctx, cancel := context.WithTimeout(context.Background(), waitLong)
		defer cancel()
		sess, err := e.c.Streams.DirectSession(ctx, client.DirectSessionRequest{DirectInput: in, DedupeKey: key})
		if err != nil {
			t.Fatal(err)
		}
		tg.id, tg.secret = sess.SessionID, e.em.DirectSecret()
		// The session's poller is connected and waiting before the test
		// starts: its connection is no goroutine of the subscription's.
		for deadline := time.Now().Add(waitLong); e.hung.Load() == hung; time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatal("the session's poller never polled")
			}
		}
		sub := e.c.Streams.SubscribeDirectSSE
		if tg.ws {
			sub = e.c.Streams.SubscribeDirectWebSocket
		}
		tg.subscribe = func(ctx context.Context, opts ...client.SubscribeOption) iter.Seq2[*client.Event, error] {
			return sub(ctx, in, append(opts, client.WithDirectSession(key))...)
		}
	}
	return tg
}

// publish appends n update events {"n": 1..n} and returns their ids.
func (e *env) publish(t *testing.T, tg *target, n int) []string {
	t.Helper()
	var ids []string
	for i := range n {
		id, err := e.em.Publish(tg.id, fmt.Appendf(nil, `{"n":%d}`, i+1))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	return ids
}

func (e *env) faults(t *testing.T, tg *target, f emulator.Faults) {
	t.Helper()
	if err := e.em.SetFaults(tg.id, f); err != nil {
		t.Fatal(err)
	}
}

// item is one yield of an iteration.
type item struct {
	ev  *client.Event
	err error
}

// collect ranges over seq until it ends, or stop says to break, within
// waitLong (past that the test fails: the iteration did not end).
func collect(t *testing.T, seq iter.Seq2[*client.Event, error], stop func([]item) bool) []item {
	t.Helper()
	done := make(chan []item, 1)
	go func() {
		var items []item
		for ev, err := range seq {
			items = append(items, item{ev, err})
			if stop != nil && stop(items) {
				break
			}
		}
		done <- items
	}()
	select {
	case items := <-done:
		return items
	case <-time.After(waitLong):
		t.Fatalf("the iteration did not end within %v", waitLong)
		return nil
	}
}

// events returns the event_ids of the events among items, and the errors.
func events(items []item) (ids []string, errs []error) {
	for _, it := range items {
		if it.err != nil {
			errs = append(errs, it.err)
			continue
		}
		ids = append(ids, it.ev.EventID)
	}
	return ids, errs
}

// count stops after n events.
func count(n int) func([]item) bool {
	return func(items []item) bool {
		ids, _ := events(items)
		return len(ids) >= n
	}
}

// dataN reads {"n": N} from an event's data.
func dataN(t *testing.T, ev *client.Event) int {
	t.Helper()
	var d struct{ N int }
	if err := json.Unmarshal(ev.Data, &d); err != nil {
		t.Fatalf("event data %s: %v", ev.Data, err)
	}
	return d.N
}

// runtimeRequests returns the runtime requests of tg's stream.
func (e *env) runtimeRequests(tg *target) []request {
	var out []request
	for _, r := range e.requests() {
		if r.query.Get("streamId") == tg.id || r.query.Get("sessionId") == tg.id {
			out = append(out, r)
		}
	}
	return out
}
