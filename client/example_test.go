package client_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"

	"github.com/restless-stream/ingest/client"
)

// fakeAPI stands in for the hosted service.
func fakeAPI() *httptest.Server {
	mux := http.NewServeMux()
	mux.HandleFunc(client.RouteListStreams, func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"streams":[{"id":"stream_123","name":"Orders"}],"paginationInfo":{"hasNextPage":false}}`)
	})
	mux.HandleFunc(client.RouteCreateStream, func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"id":"stream_123","name":"Orders","status":"ACTIVE","sseUrl":"https://stream.restlessapi.stream?streamId=stream_123","hmacSecret":"whsec_1"}`)
	})
	mux.HandleFunc(client.RouteGetStream, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNotFound)
		io.WriteString(w, `{"statusCode":404,"message":"Stream not found","error":"Not Found"}`)
	})
	return httptest.NewServer(mux)
}

func ExampleNew() {
	srv := fakeAPI()
	defer srv.Close()

	c, err := client.New("rs_0123456789abcdef", client.WithBaseURL(srv.URL))
	if err != nil {
		panic(err)
	}
	page, err := c.Streams.List(context.Background(), 20, 0)
	if err != nil {
		panic(err)
	}
	for _, s := range page.Streams {
		fmt.Println(s.ID, s.Name)
	}
	fmt.Println("more:", page.PaginationInfo.HasNextPage)
	// Output:
	// stream_123 Orders
	// more: false
}

func ExampleStreamsService_Create() {
	srv := fakeAPI()
	defer srv.Close()
	c, _ := client.New("rs_0123456789abcdef", client.WithBaseURL(srv.URL))

	s, err := c.Streams.Create(context.Background(), client.CreateStreamRequest{
		Name:            "Orders",
		Description:     "Live order feed",
		Status:          client.StatusActive,
		Method:          client.MethodGet,
		URL:             "https://api.example.com/orders",
		PayloadMode:     client.PayloadFullData,
		PollingInterval: 30,
	})
	if err != nil {
		panic(err)
	}
	fmt.Println(s.ID, s.Status, s.SSEURL)
	// Output: stream_123 ACTIVE https://stream.restlessapi.stream?streamId=stream_123
}

func ExampleAPIError() {
	srv := fakeAPI()
	defer srv.Close()
	c, _ := client.New("rs_0123456789abcdef", client.WithBaseURL(srv.URL))

	_, err := c.Streams.Get(context.Background(), "missing")
	var apiErr *client.APIError
	if errors.As(err, &apiErr) {
		fmt.Println(apiErr.StatusCode, apiErr.Message, errors.Is(err, client.ErrNotFound))
	}
	// Output: 404 Stream not found true
}

func ExampleDecodeEvent() {
	msg := []byte(`{"type":"update","meta":{"timestamp":"2026-06-07T00:49:36.562+00:00","status":200,"latency_ms":43},
		"data":{"id":"order_123","total":42},"signature":null,"event_id":"1780793376562"}`)
	var ev client.Event
	if err := client.DecodeEvent(msg, &ev); err != nil {
		panic(err)
	}
	fmt.Println(ev.Type, ev.EventID, ev.Meta.Status, ev.Meta.LatencyMS, string(ev.Data))

	err := client.DecodeEvent([]byte(`{"type":"delete"}`), &ev)
	fmt.Println(err)
	// Output:
	// update 1780793376562 200 43 {"id":"order_123","total":42}
	// restless: parse event: type: "delete" is not "update" or "error" (offset 8)
}

func ExampleVerifier() {
	v, err := client.NewVerifier([]string{"new-secret", "secret"}) // during a rotation
	if err != nil {
		panic(err)
	}
	data := []byte(`{"total":42,"id":"order_123"}`)
	fmt.Println(v.Verify(data, "0e8d5075fec7809ec154d186f8b561bfd9f984bb8f9732c2784425d2f4987f8b"))
	fmt.Println(v.Verify(data, ""))
	fmt.Println(v.Verify(data, "sha256=00"))
	// Output:
	// <nil>
	// restless: signature missing
	// restless: signature invalid: not 64 hex digits or base64 of 32 bytes
}

func ExampleComputeSignature() {
	sig, _ := client.ComputeSignature("secret", map[string]any{"id": "order_123", "total": 42})
	fmt.Println(sig)
	fmt.Println(client.VerifySignature("secret", map[string]any{"total": 42, "id": "order_123"}, sig))
	// Output:
	// 0e8d5075fec7809ec154d186f8b561bfd9f984bb8f9732c2784425d2f4987f8b
	// true
}

func ExampleCanonical() {
	out, _ := client.Canonical(nil, []byte(`{"total": 42, "name": "Caf\u00e9", "id": "order_123"}`))
	fmt.Println(string(out))
	// Output: {"id":"order_123","name":"Café","total":42}
}

func ExampleBuildSSEURL() {
	sse, _ := client.BuildSSEURL("", client.RuntimeTarget{StreamID: "stream_123", Since: "2026-01-01T00:00:00Z"})
	ws, _ := client.BuildWebSocketURL("", client.RuntimeTarget{SessionID: "session_123"})
	direct, _ := client.BuildDirectSSEURL("", client.DirectInput{
		URL: "https://api.example.com/orders", Method: client.MethodPost,
		Body: map[string]any{"status": "open"}, PayloadMode: client.PayloadJSONPatch, PollingInterval: 30,
	})
	fmt.Println(sse)
	fmt.Println(ws)
	fmt.Println(direct)
	// Output:
	// https://stream.restlessapi.stream?streamId=stream_123&since=2026-01-01T00%3A00%3A00Z
	// wss://stream.restlessapi.stream/ws?sessionId=session_123
	// https://stream.restlessapi.stream/direct?url=https%3A%2F%2Fapi.example.com%2Forders&method=POST&body=%7B%22status%22%3A%22open%22%7D&payloadMode=JSON_PATCH&pollingInterval=30
}

func ExampleToWebSocketURL() {
	ws, _ := client.ToWebSocketURL("https://stream.restlessapi.stream?streamId=stream_123")
	fmt.Println(ws)
	// Output: wss://stream.restlessapi.stream/ws?streamId=stream_123
}
