package client_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"

	"github.com/restless-stream/ingest/client"
)

// fakeRuntime stands in for the runtime: it streams the events of orders
// after the cursor the request resumes from (Last-Event-ID), each signed
// with secret, then ends the stream for good (204) on the next request.
func fakeRuntime(secret string, orders ...string) *httptest.Server {
	served := false
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if served {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		served = true
		after, _ := strconv.Atoi(r.Header.Get("Last-Event-ID"))
		w.Header().Set("Content-Type", "text/event-stream")
		for i, data := range orders {
			id := strconv.Itoa(i + 1)
			if i+1 <= after {
				continue
			}
			sig, _ := client.ComputeSignatureRaw(secret, []byte(data))
			fmt.Fprintf(w, "id: %s\nevent: update\ndata: {\"type\":\"update\",\"data\":%s,\"signature\":%q,\"event_id\":%q}\n\n", id, data, sig, id)
		}
	}))
}

// Subscribe to a stream's SSE URL, verify each event's signature with the
// stream's secret and print the events.
func ExampleStreamsService_SubscribeSSE() {
	srv := fakeRuntime("whsec_1", `{"order":"A-1"}`, `{"order":"A-2"}`)
	defer srv.Close()

	c, err := client.New("rs_0123456789abcdef", client.WithStreamBaseURL(srv.URL))
	if err != nil {
		panic(err)
	}
	v, err := client.NewVerifier([]string{"whsec_1"}) // the stream's hmacSecret
	if err != nil {
		panic(err)
	}
	u, err := client.BuildSSEURL(c.StreamBaseURL(), client.RuntimeTarget{StreamID: "stream_123"})
	if err != nil {
		panic(err)
	}
	for ev, err := range c.Streams.SubscribeSSE(context.Background(), u, client.WithVerifier(v)) {
		if err != nil {
			// A bad event (*ParseError, *SignatureError) is followed by
			// more; any other error is the last one.
			fmt.Println("error:", err)
			continue
		}
		fmt.Println(ev.EventID, ev.Type, string(ev.Data))
	}
	// The server ended the stream: the loop is over.

	// Output:
	// 1 update {"order":"A-1"}
	// 2 update {"order":"A-2"}
}

// Subscribe to a direct stream: the runtime polls the REST endpoint given
// by the inputs, without a stream created first.
func ExampleStreamsService_SubscribeDirectSSE() {
	srv := fakeRuntime("whsec_direct", `{"price":101}`)
	defer srv.Close()

	c, err := client.New("rs_0123456789abcdef", client.WithStreamBaseURL(srv.URL))
	if err != nil {
		panic(err)
	}
	in := client.DirectInput{URL: "https://api.example.com/price", Method: client.MethodGet, PollingInterval: 30}
	for ev, err := range c.Streams.SubscribeDirectSSE(context.Background(), in, client.WithReconnect(false)) {
		if err != nil {
			fmt.Println("error:", err)
			break
		}
		fmt.Println(ev.EventID, string(ev.Data))
	}
	// Output:
	// 1 {"price":101}
}

// Resume from a saved cursor: an event's EventID is its cursor. Save the
// last one handled; a later subscription started WithCursor gets the events
// after it.
func ExampleWithCursor() {
	srv := fakeRuntime("whsec_1", `{"order":"A-1"}`, `{"order":"A-2"}`, `{"order":"A-3"}`)
	defer srv.Close()

	c, err := client.New("rs_0123456789abcdef", client.WithStreamBaseURL(srv.URL))
	if err != nil {
		panic(err)
	}
	u := srv.URL + "/?streamId=stream_123"

	saved := "1" // the cursor a previous run saved after handling event 1
	for ev, err := range c.Streams.SubscribeSSE(context.Background(), u, client.WithCursor(saved), client.WithReconnect(false)) {
		if err != nil {
			fmt.Println("error:", err)
			break
		}
		fmt.Println("handled", ev.EventID, string(ev.Data))
		saved = ev.EventID
	}
	fmt.Println("saved cursor:", saved)
	// Output:
	// handled 2 {"order":"A-2"}
	// handled 3 {"order":"A-3"}
	// saved cursor: 3
}
