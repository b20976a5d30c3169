// Command extmodtest is a program of another module that configures every
// public option type of the SDK and the daemon's libraries. A test of the
// ingest module compiles it, to prove that nothing public depends on a
// package under internal/, which no other module may import.
package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/restless-stream/ingest"
	"github.com/restless-stream/ingest/client"
	clientsse "github.com/restless-stream/ingest/client/sse"
	"github.com/restless-stream/ingest/pipeline"
	"github.com/restless-stream/ingest/source/direct"
	"github.com/restless-stream/ingest/source/sse"
	"github.com/restless-stream/ingest/source/ws"
)

func main() {
	ctx := context.Background()
	c, err := client.New("rs_key", client.WithStreamBaseURL("http://127.0.0.1:1"))
	if err != nil {
		panic(err)
	}
	v, err := client.NewVerifier([]string{"secret"})
	if err != nil {
		panic(err)
	}
	backoff := client.Backoff{Initial: time.Second, Max: time.Minute, MaxAttempts: 5}
	_ = backoff.Delay(1)
	opts := []client.SubscribeOption{
		client.WithCursor("1780793376562"),
		client.WithSince("2026-01-01T00:00:00Z"),
		client.WithReconnect(false),
		client.WithMaxReconnects(3),
		client.WithRetryDelay(2 * time.Second),
		client.WithBackoff(backoff),
		client.WithOpenTimeout(10 * time.Second),
		client.WithIdleTimeout(client.DefaultIdleTimeout),
		client.WithMaxEventBytes(client.DefaultMaxEventBytes),
		client.WithHeader(http.Header{"X-Trace": {"1"}}),
		client.WithVerifier(v),
		client.WithStateFunc(func(sc client.StateChange) {
			var s client.ConnState = sc.State
			_, _, _ = s.String(), sc.Attempt+int(sc.Delay), sc.Err
		}),
	}
	in := client.DirectInput{URL: "https://api.example.com/orders"}
	seqs := []func() (int, error){
		func() (int, error) {
			return count(c.Streams.SubscribeSSE(ctx, "http://127.0.0.1:1/?streamId=s", opts...))
		},
		func() (int, error) {
			return count(c.Streams.SubscribeWebSocket(ctx, "ws://127.0.0.1:1/ws?streamId=s", opts...))
		},
		func() (int, error) {
			return count(c.Streams.SubscribeDirectSSE(ctx, in, append(opts, client.WithDirectSession("k"))...))
		},
		func() (int, error) { return count(c.Streams.SubscribeDirectWebSocket(ctx, in, opts...)) },
	}
	_ = seqs

	var sub *client.Subscription
	if sub, err = c.Streams.OpenSSE("http://127.0.0.1:1/?streamId=s", opts...); err == nil {
		var raw client.RawEvent
		raw, err = sub.Next(ctx)
		_, _, _, _ = raw.Data, raw.Cursor, raw.TooLarge, raw.Received
		_ = sub.Cursor()
		_ = sub.Close()
	}
	for _, open := range []func(client.DirectInput, ...client.SubscribeOption) (*client.Subscription, error){
		c.Streams.OpenDirectSSE, c.Streams.OpenDirectWebSocket,
	} {
		_ = open
	}
	_, _ = c.Streams.OpenWebSocket("ws://127.0.0.1:1/ws?streamId=s")
	var se *client.StatusError
	var sigErr *client.SignatureError
	_ = errors.As(err, &se) || errors.As(err, &sigErr) || errors.Is(err, client.ErrStreamEnded) ||
		errors.Is(err, client.ErrReconnectsExhausted) || errors.Is(err, client.ErrIdleTimeout) ||
		errors.Is(err, client.ErrOpenTimeout) || errors.Is(err, client.ErrEventTooLarge) ||
		errors.Is(err, client.ErrSubscriptionClosed)

	dec := clientsse.NewDecoder(strings.NewReader("data: x\n\n"))
	dec.SetMaxEventBytes(clientsse.DefaultMaxEventBytes)
	_, _ = dec.Decode()

	onState := func(ingest.StateChange) {}
	cfgs := []interface{ Validate() error }{
		sse.Config{Client: c, URL: "http://127.0.0.1:1/?streamId=s", Cursor: "1", Since: "x", Reconnect: backoff,
			IdleTimeout: sse.DefaultIdleTimeout, MaxEventBytes: 1 << 20, OnState: onState},
		ws.Config{Client: c, URL: "ws://127.0.0.1:1/ws?streamId=s", Reconnect: backoff,
			IdleTimeout: ws.DefaultIdleTimeout, MaxEventBytes: ws.DefaultMaxEventBytes, OnState: onState},
		direct.Config{Client: c, Input: in, DedupeKey: "k", Transport: direct.TransportWebSocket, Reconnect: backoff, OnState: onState},
	}
	for _, cfg := range cfgs {
		fmt.Println(cfg.Validate())
	}
	_ = pipeline.Config{Retry: client.Backoff{Initial: 100 * time.Millisecond, Max: 5 * time.Second}}
}

func count(seq func(func(*client.Event, error) bool)) (int, error) {
	n := 0
	for ev, err := range seq {
		if err != nil {
			return n, err
		}
		_ = ev.EventID
		n++
	}
	return n, nil
}
