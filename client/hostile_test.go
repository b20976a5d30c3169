package client_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/restless-stream/ingest/client"
	"github.com/restless-stream/ingest/client/internal/hostile"
)

// waitLong bounds every wait of these tests; reaching it is a failure.
const waitLong = 20 * time.Second

func sseEvent(id, eventID string) string {
	var b strings.Builder
	if id != "" {
		fmt.Fprintf(&b, "id: %s\n", id)
	}
	fmt.Fprintf(&b, "data: {\"type\":\"update\",\"data\":{\"n\":1},\"event_id\":%s}\n\n", eventID)
	return b.String()
}

type item struct {
	ev  *client.Event
	err error
}

// collectUntil iterates seq until an event with event_id last arrives, or
// an error that is not about one event. ctx of seq ends with the test.
func collectUntil(t *testing.T, seq func(context.Context) func(func(*client.Event, error) bool), last string) []item {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	var items []item
	for ev, err := range seq(ctx) {
		items = append(items, item{ev, err})
		if err == nil && ev.EventID == last {
			return items
		}
		if err != nil && !isEventError(err) {
			break
		}
	}
	t.Fatalf("the subscription did not deliver event %s: %+v", last, items)
	return nil
}

func isEventError(err error) bool {
	var pe *client.ParseError
	return errors.As(err, &pe) || errors.Is(err, client.ErrEventTooLarge)
}

// TestHostileEventIDs: an id that cannot be a cursor (too long, a control
// character, a space) is a rejected event; the cursor never takes it, so
// the next connection resumes after the last good event.
func TestHostileEventIDs(t *testing.T) {
	long := strings.Repeat("9", client.MaxEventIDBytes+1)
	tests := []struct {
		name      string
		ws        bool
		bad       string // the hostile event
		wantField string
	}{
		{"sse id too long", false, sseEvent(long, `"2"`), "id"},
		{"sse id with control character", false, sseEvent("5\x01", `"2"`), "id"},
		{"sse id with a space", false, sseEvent("5 6", `"2"`), "id"},
		{"event_id too long", false, sseEvent("", `"`+long+`"`), "event_id"},
		{"event_id number too long", false, sseEvent("", long), "event_id"},
		{"event_id with escaped control character", false, sseEvent("", `"6\u0001"`), "event_id"},
		{"ws event_id too long", true, `{"type":"update","event_id":"` + long + `"}`, "event_id"},
		{"ws event_id with control character", true, `{"type":"update","event_id":"6\u0001"}`, "event_id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := hostile.New(t, func(n int, w http.ResponseWriter, r *http.Request) {
				switch {
				case tt.ws && n == 0:
					hostile.WS(w, r, `{"type":"update","event_id":"1"}`, tt.bad)
				case tt.ws:
					hostile.WS(w, r, `{"type":"update","event_id":"3"}`)
				case n == 0:
					hostile.SSE(w, sseEvent("1", `"1"`), tt.bad)
				default:
					hostile.Hold(w, r, sseEvent("3", `"3"`))
				}
			})
			c, err := client.New("")
			if err != nil {
				t.Fatal(err)
			}
			seq := func(ctx context.Context) func(func(*client.Event, error) bool) {
				if tt.ws {
					return c.Streams.SubscribeWebSocket(ctx, srv.URL, client.WithRetryDelay(client.MinReconnectDelay))
				}
				return c.Streams.SubscribeSSE(ctx, srv.URL, client.WithRetryDelay(client.MinReconnectDelay))
			}
			items := collectUntil(t, seq, "3")
			if len(items) != 3 || items[0].err != nil || items[2].err != nil {
				t.Fatalf("items %+v, want event 1, an error, event 3", items)
			}
			var pe *client.ParseError
			if !errors.As(items[1].err, &pe) || pe.Field != tt.wantField || !errors.Is(items[1].err, client.ErrInvalidEventID) {
				t.Fatalf("bad event yielded %v, want a *ParseError on %s matching ErrInvalidEventID", items[1].err, tt.wantField)
			}
			reqs := srv.Requests()
			if len(reqs) < 2 {
				t.Fatalf("%d requests", len(reqs))
			}
			if got := reqs[1].Query.Get("cursor"); got != "1" {
				t.Errorf("reconnect cursor= %.40q, want 1", got)
			}
			if !tt.ws {
				if got := reqs[1].Header.Get("Last-Event-ID"); got != "1" {
					t.Errorf("reconnect Last-Event-ID %.40q, want 1", got)
				}
			}
		})
	}
}

// TestRawEventFlagsBadSSEID: at the level of Subscription.Next, an SSE id
// that cannot be a cursor comes flagged, and does not become the cursor.
func TestRawEventFlagsBadSSEID(t *testing.T) {
	srv := hostile.New(t, func(n int, w http.ResponseWriter, r *http.Request) {
		hostile.Hold(w, r, sseEvent("1", `"1"`), sseEvent("5\x01", `"2"`), sseEvent("", `"3"`))
	})
	c, _ := client.New("")
	sub, err := c.Streams.OpenSSE(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sub.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	want := []struct {
		cursor string
		bad    bool
	}{{"1", false}, {"1", true}, {"3", false}} // the third inherits the bad id: its event_id is the cursor
	for i, w := range want {
		raw, err := sub.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if raw.Cursor != w.cursor || (raw.Err != nil) != w.bad {
			t.Fatalf("event %d: cursor %q err %v, want cursor %q, flagged %v", i, raw.Cursor, raw.Err, w.cursor, w.bad)
		}
		if w.bad && !errors.Is(raw.Err, client.ErrInvalidEventID) {
			t.Fatalf("flag %v does not match ErrInvalidEventID", raw.Err)
		}
		if sub.Cursor() != w.cursor {
			t.Fatalf("event %d: Cursor() = %q, want %q", i, sub.Cursor(), w.cursor)
		}
	}
}

// TestUnsendableCursorDropped: a stored cursor that cannot be sent is
// dropped with an error the caller can log, and the subscription starts
// from since= instead of failing every request.
func TestUnsendableCursorDropped(t *testing.T) {
	for _, cursor := range []string{"6\x01", "a\r\nX-Evil: 1", strings.Repeat("7", 70<<10), "é"} {
		t.Run(fmt.Sprintf("%.12q", cursor), func(t *testing.T) {
			srv := hostile.New(t, func(n int, w http.ResponseWriter, r *http.Request) {
				hostile.Hold(w, r, sseEvent("3", `"3"`))
			})
			c, _ := client.New("")
			var first client.StateChange
			got := false
			seq := func(ctx context.Context) func(func(*client.Event, error) bool) {
				return c.Streams.SubscribeSSE(ctx, srv.URL, client.WithCursor(cursor), client.WithSince("2024-01-01T00:00:00Z"),
					client.WithStateFunc(func(sc client.StateChange) {
						if !got {
							first, got = sc, true
						}
					}))
			}
			items := collectUntil(t, seq, "3")
			if items[len(items)-1].err != nil {
				t.Fatalf("items %+v", items)
			}
			var ce *client.CursorError
			if first.State != client.StateConnecting || !errors.As(first.Err, &ce) || !errors.Is(first.Err, client.ErrInvalidEventID) {
				t.Fatalf("first state %+v, want connecting with a *CursorError", first)
			}
			req := srv.Requests()[0]
			if req.Header.Get("Last-Event-ID") != "" || req.Query.Has("cursor") || req.Query.Get("since") != "2024-01-01T00:00:00Z" {
				t.Fatalf("request %v %v, want since= and no cursor", req.Query, req.Header)
			}
		})
	}
}

func TestCheckEventID(t *testing.T) {
	tests := []struct {
		id string
		ok bool
	}{
		{"1780793376562", true},
		{"evt_01HX-ABC:9/x=~", true},
		{strings.Repeat("a", client.MaxEventIDBytes), true},
		{strings.Repeat("a", client.MaxEventIDBytes+1), false},
		{"", false},
		{"a b", false},
		{"a\x01", false},
		{"a\x7f", false},
		{"é", false},
	}
	for _, tt := range tests {
		err := client.CheckEventID(tt.id)
		if (err == nil) != tt.ok || (err != nil && !errors.Is(err, client.ErrInvalidEventID)) {
			t.Errorf("CheckEventID(%.20q) = %v, want ok %v", tt.id, err, tt.ok)
		}
		id, ok := client.EventIDOf([]byte(`{"event_id":"` + tt.id + `"}`))
		if ok != tt.ok || (ok && id != tt.id) {
			t.Errorf("EventIDOf(%.20q) = %q, %v", tt.id, id, ok)
		}
	}
}

// TestCredentialsStayWithTheirOrigin: the API key (Authorization on runtime
// requests, x-api-key on REST calls) follows a redirect only to the exact
// origin it was sent to: not to another port, not from https to http.
func TestCredentialsStayWithTheirOrigin(t *testing.T) {
	const key = "rs_secret_key_0123456789"
	type call func(t *testing.T, c *client.Client, url string)
	sse := func(t *testing.T, c *client.Client, url string) {
		collectUntil(t, func(ctx context.Context) func(func(*client.Event, error) bool) {
			return c.Streams.SubscribeSSE(ctx, url)
		}, "3")
	}
	ws := func(t *testing.T, c *client.Client, url string) {
		collectUntil(t, func(ctx context.Context) func(func(*client.Event, error) bool) {
			return c.Streams.SubscribeWebSocket(ctx, url)
		}, "3")
	}
	rest := func(t *testing.T, c *client.Client, _ string) {
		_, _ = c.Streams.Get(context.Background(), "s1")
	}
	// target answers whatever arrives there.
	answer := func(n int, w http.ResponseWriter, r *http.Request) {
		switch {
		case !strings.HasSuffix(r.URL.Path, "/s"): // a REST call
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprint(w, `{"id":"s1"}`)
		case r.Header.Get("Upgrade") != "":
			hostile.WS(w, r, `{"type":"update","event_id":"3"}`)
		default:
			hostile.Hold(w, r, sseEvent("3", `"3"`))
		}
	}
	tests := []struct {
		name     string
		call     call
		tls      bool // the first server is https
		sameHost bool // the redirect stays on the first server
		wantKey  bool
	}{
		{"sse to another port", sse, false, false, false},
		{"websocket to another port", ws, false, false, false},
		{"rest to another port", rest, false, false, false},
		{"sse from https to http", sse, true, false, false},
		{"rest from https to http", rest, true, false, false},
		{"sse on the same origin", sse, false, true, true},
		{"rest on the same origin", rest, false, true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			other := hostile.New(t, answer)
			var first *hostile.Server
			redirect := func(n int, w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/moved" || strings.HasPrefix(r.URL.Path, "/moved/") {
					answer(n, w, r)
					return
				}
				to := other.URL
				if tt.sameHost {
					to = "/moved"
				}
				hostile.Redirect(w, to+r.URL.RequestURI())
			}
			var opts []client.Option
			if tt.tls {
				first = hostile.NewTLS(t, redirect)
				opts = append(opts, client.WithHTTPClient(first.Client()))
			} else {
				first = hostile.New(t, redirect)
			}
			c, err := client.New(key, append(opts, client.WithBaseURL(first.URL))...)
			if err != nil {
				t.Fatal(err)
			}
			tt.call(t, c, first.URL+"/s")
			reqs := append(first.Requests(), other.Requests()...)
			if len(reqs) < 2 {
				t.Fatalf("%d requests: no redirect followed", len(reqs))
			}
			if got := reqs[0].Header.Get("Authorization") + reqs[0].Header.Get("x-api-key"); !strings.Contains(got, key) {
				t.Fatalf("the first request carries no key: %v", reqs[0].Header)
			}
			last := reqs[len(reqs)-1]
			got := last.Header.Get("Authorization") + last.Header.Get("x-api-key")
			if strings.Contains(got, key) != tt.wantKey {
				t.Fatalf("redirected request %s: credentials %q, want key sent %v", last.Path, got, tt.wantKey)
			}
		})
	}
}

// TestTooLargeRequestRetried: 431 and 414 do not end a stream: the
// subscription retries without the cursor where it did not fit.
func TestTooLargeRequestRetried(t *testing.T) {
	tests := []struct {
		name       string
		ws         bool
		code       int
		wantHeader string // Last-Event-ID of the retry (SSE)
		wantQuery  string // cursor= of the retry
	}{
		{"sse 431 drops the header", false, http.StatusRequestHeaderFieldsTooLarge, "", "1"},
		{"sse 414 drops the query", false, http.StatusRequestURITooLong, "1", ""},
		{"ws 414 drops the query", true, http.StatusRequestURITooLong, "", ""},
		{"ws 431 retried", true, http.StatusRequestHeaderFieldsTooLarge, "", "1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := hostile.New(t, func(n int, w http.ResponseWriter, r *http.Request) {
				switch {
				case n == 1:
					hostile.Status(w, tt.code, "")
				case tt.ws && n == 0:
					hostile.WS(w, r, `{"type":"update","event_id":"1"}`)
				case tt.ws:
					hostile.WS(w, r, `{"type":"update","event_id":"3"}`)
				case n == 0:
					hostile.SSE(w, sseEvent("1", `"1"`))
				default:
					hostile.Hold(w, r, sseEvent("3", `"3"`))
				}
			})
			c, _ := client.New("")
			collectUntil(t, func(ctx context.Context) func(func(*client.Event, error) bool) {
				if tt.ws {
					return c.Streams.SubscribeWebSocket(ctx, srv.URL, client.WithRetryDelay(client.MinReconnectDelay))
				}
				return c.Streams.SubscribeSSE(ctx, srv.URL, client.WithRetryDelay(client.MinReconnectDelay))
			}, "3")
			reqs := srv.Requests()
			if len(reqs) < 3 {
				t.Fatalf("%d requests", len(reqs))
			}
			if got := reqs[2].Header.Get("Last-Event-ID"); got != tt.wantHeader {
				t.Errorf("retry Last-Event-ID %q, want %q", got, tt.wantHeader)
			}
			if got := reqs[2].Query.Get("cursor"); got != tt.wantQuery {
				t.Errorf("retry cursor= %q, want %q", got, tt.wantQuery)
			}
		})
	}
}

// TestMaxAttemptsNeedsGoodEvents: a server whose every connection delivers
// one event that does not decode, then closes, exhausts the reconnect
// budget: for the Subscribe functions only a decoded (and verified) event
// is progress.
func TestMaxAttemptsNeedsGoodEvents(t *testing.T) {
	for _, ws := range []bool{false, true} {
		t.Run(fmt.Sprintf("websocket=%v", ws), func(t *testing.T) {
			srv := hostile.New(t, func(n int, w http.ResponseWriter, r *http.Request) {
				bad := fmt.Sprintf(`{"type":"bogus","event_id":"%d"}`, n)
				if ws {
					hostile.WS(w, r, bad)
				} else {
					hostile.SSE(w, "data: "+bad+"\n\n")
				}
			})
			c, _ := client.New("")
			opts := []client.SubscribeOption{client.WithBackoff(client.Backoff{Initial: client.MinReconnectDelay, Max: client.MinReconnectDelay, MaxAttempts: 2})}
			ctx, cancel := context.WithTimeout(context.Background(), waitLong)
			defer cancel()
			seq := c.Streams.SubscribeSSE(ctx, srv.URL, opts...)
			if ws {
				seq = c.Streams.SubscribeWebSocket(ctx, srv.URL, opts...)
			}
			var last error
			for _, err := range seq {
				if err == nil {
					t.Fatal("a bogus event was yielded as an event")
				}
				last = err
			}
			if !errors.Is(last, client.ErrReconnectsExhausted) {
				t.Fatalf("ended with %v, want ErrReconnectsExhausted", last)
			}
			if n := len(srv.Requests()); n != 3 {
				t.Fatalf("%d connections, want 3 (two reconnects)", n)
			}
		})
	}
}

// TestBytesWithoutEvents: a connection that streams bytes but never
// completes an event (an endless line, endless comments, an oversized
// event that never ends, a WebSocket message that never ends) is read at a
// bounded pace past the size limit plus MaxNonEventBytes, and max silence
// ends it: the subscription reconnects.
func TestBytesWithoutEvents(t *testing.T) {
	tests := []struct {
		name string
		ws   bool
		h    func(w http.ResponseWriter, r *http.Request)
	}{
		{"sse endless line", false, func(w http.ResponseWriter, r *http.Request) { hostile.Flood(w, r, strings.Repeat("x", 4096)) }},
		{"sse endless comments", false, func(w http.ResponseWriter, r *http.Request) { hostile.Flood(w, r, ":heartbeat\n") }},
		{"sse endless blank lines", false, func(w http.ResponseWriter, r *http.Request) { hostile.Flood(w, r, "\n\n\n\n") }},
		{"sse endless event", false, func(w http.ResponseWriter, r *http.Request) {
			hostile.Flood(w, r, "data: "+strings.Repeat("a", 4096)+"\n")
		}},
		{"websocket endless message", true, func(w http.ResponseWriter, r *http.Request) { hostile.WSEndless(w, r, strings.Repeat("a", 4096)) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := hostile.New(t, func(n int, w http.ResponseWriter, r *http.Request) { tt.h(w, r) })
			c, _ := client.New("")
			ctx, cancel := context.WithTimeout(context.Background(), waitLong)
			defer cancel()
			reasons := make(chan error, 16)
			opts := []client.SubscribeOption{
				client.WithMaxEventBytes(4096),
				client.WithMaxSilence(300 * time.Millisecond),
				client.WithRetryDelay(time.Second),
				client.WithStateFunc(func(sc client.StateChange) {
					if sc.State == client.StateReconnecting {
						select {
						case reasons <- sc.Err:
						default:
						}
						cancel()
					}
				}),
			}
			seq := c.Streams.SubscribeSSE(ctx, srv.URL, opts...)
			if tt.ws {
				seq = c.Streams.SubscribeWebSocket(ctx, srv.URL, opts...)
			}
			for _, err := range seq {
				if err != nil && !isEventError(err) {
					break
				}
			}
			select {
			case err := <-reasons:
				if !errors.Is(err, client.ErrMaxSilence) {
					t.Fatalf("reconnected for %v, want ErrMaxSilence", err)
				}
			default:
				t.Fatal("the connection was never given up")
			}
		})
	}
}

// TestInvalidUTF8AlikeOnBothTransports: data that is not valid UTF-8 is
// delivered byte for byte (never replaced with U+FFFD) and refused by the
// decoder, over SSE as over WebSocket.
func TestInvalidUTF8AlikeOnBothTransports(t *testing.T) {
	bad := "{\"type\":\"update\",\"data\":{\"name\":\"caf\xe9\"},\"event_id\":\"2\"}"
	for _, ws := range []bool{false, true} {
		t.Run(fmt.Sprintf("websocket=%v", ws), func(t *testing.T) {
			srv := hostile.New(t, func(n int, w http.ResponseWriter, r *http.Request) {
				if ws {
					hostile.WS(w, r, bad)
					return
				}
				hostile.Hold(w, r, "id: 2\ndata: "+bad+"\n\n")
			})
			c, _ := client.New("")
			open := c.Streams.OpenSSE
			if ws {
				open = c.Streams.OpenWebSocket
			}
			sub, err := open(srv.URL)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { sub.Close() })
			ctx, cancel := context.WithTimeout(context.Background(), waitLong)
			defer cancel()
			raw, err := sub.Next(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if string(raw.Data) != bad {
				t.Fatalf("data %q, want the bytes sent %q", raw.Data, bad)
			}
			var ev client.Event
			var pe *client.ParseError
			if err := client.DecodeEvent(raw.Data, &ev); !errors.As(err, &pe) || !pe.Malformed() {
				t.Fatalf("DecodeEvent = %v, want a malformed-document error", err)
			}
		})
	}
}
