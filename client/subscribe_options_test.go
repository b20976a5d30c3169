package client

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/restless-stream/ingest/client/internal/stream"
	"github.com/restless-stream/ingest/client/sse"
)

func TestBackoffDefaults(t *testing.T) {
	for range 100 {
		if d := (Backoff{}).Delay(1); d < DefaultBackoffInitial/2 || d > DefaultBackoffInitial {
			t.Fatalf("first delay %v, want within [%v, %v]", d, DefaultBackoffInitial/2, DefaultBackoffInitial)
		}
		if d := (Backoff{}).Delay(100); d < DefaultBackoffMax/2 || d > DefaultBackoffMax {
			t.Fatalf("late delay %v, want within [%v, %v]", d, DefaultBackoffMax/2, DefaultBackoffMax)
		}
	}
}

// TestDefaultsAgree ties the defaults that live in two packages.
func TestDefaultsAgree(t *testing.T) {
	if DefaultBackoffInitial != stream.DefaultInitial || DefaultBackoffMax != stream.DefaultMax {
		t.Fatalf("Backoff defaults %v..%v, the runner's %v..%v", DefaultBackoffInitial, DefaultBackoffMax, stream.DefaultInitial, stream.DefaultMax)
	}
	if sse.DefaultMaxEventBytes != DefaultMaxEventBytes {
		t.Fatalf("sse.DefaultMaxEventBytes %d, client.DefaultMaxEventBytes %d", sse.DefaultMaxEventBytes, DefaultMaxEventBytes)
	}
}

func TestSubscribeOptionErrors(t *testing.T) {
	keyed, err := New("rs_key")
	if err != nil {
		t.Fatal(err)
	}
	anon, err := New("")
	if err != nil {
		t.Fatal(err)
	}
	auth := WithHeader(http.Header{"Authorization": {"Bearer x"}})
	tests := []struct {
		name string
		c    *Client
		opts []SubscribeOption
		want string // "" = no error
	}{
		{"negative max reconnects", anon, []SubscribeOption{WithMaxReconnects(-1)}, "max reconnects"},
		{"zero retry delay", anon, []SubscribeOption{WithRetryDelay(0)}, "retry delay"},
		{"negative backoff", anon, []SubscribeOption{WithBackoff(Backoff{Max: -time.Second})}, "backoff"},
		{"negative open timeout", anon, []SubscribeOption{WithOpenTimeout(-1)}, "open timeout"},
		{"negative idle timeout", anon, []SubscribeOption{WithIdleTimeout(-1)}, "idle timeout"},
		{"negative size", anon, []SubscribeOption{WithMaxEventBytes(-1)}, "max event bytes"},
		{"session on a URL", anon, []SubscribeOption{WithDirectSession("k")}, "direct subscriptions only"},
		{"Authorization with a key", keyed, []SubscribeOption{auth}, "Authorization"},
		{"Authorization without a key", anon, []SubscribeOption{auth}, ""},
		{"header with a line break", anon, []SubscribeOption{WithHeader(http.Header{"X-A": {"1\r\nX-B: 2"}})}, "not a valid"},
		{"every option", keyed, []SubscribeOption{WithCursor("1"), WithSince("s"), WithReconnect(false), WithMaxReconnects(0),
			WithRetryDelay(time.Second), WithBackoff(Backoff{}), WithOpenTimeout(time.Second), WithIdleTimeout(time.Second),
			WithMaxEventBytes(10), WithHeader(http.Header{"X-Trace": {"1"}}), WithStateFunc(func(StateChange) {})}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sub, err := tt.c.Streams.OpenSSE("http://127.0.0.1:1/?streamId=s", tt.opts...)
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				sub.Close()
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want one about %q", err, tt.want)
			}
		})
	}
}

// TestStreamHTTPHasNoTimeout: a subscription uses the Client's http.Client
// without its Timeout, which would cut every long-lived stream.
func TestStreamHTTPHasNoTimeout(t *testing.T) {
	c, err := New("", WithTimeout(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if h := c.Streams.streamHTTP(); h.Timeout != 0 || c.http.Timeout != time.Second {
		t.Fatalf("stream timeout %v, REST timeout %v", h.Timeout, c.http.Timeout)
	}
}

func TestReconnectDelayFloor(t *testing.T) {
	c, err := New("")
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range []SubscribeOption{
		WithRetryDelay(time.Nanosecond),
		WithRetryDelay(MinReconnectDelay - 1),
		WithBackoff(Backoff{Initial: time.Nanosecond}),
	} {
		if _, err := c.Streams.OpenSSE("http://127.0.0.1:1/", o); err == nil || !strings.Contains(err.Error(), "below the minimum") {
			t.Errorf("OpenSSE = %v, want a delay below the minimum refused", err)
		}
	}
	for _, o := range []SubscribeOption{WithRetryDelay(MinReconnectDelay), WithBackoff(Backoff{}), WithBackoff(Backoff{Initial: MinReconnectDelay})} {
		sub, err := c.Streams.OpenSSE("http://127.0.0.1:1/", o)
		if err != nil {
			t.Fatalf("OpenSSE = %v", err)
		}
		sub.Close()
	}
}
