package sse_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"

	"github.com/restless-stream/ingest"
	"github.com/restless-stream/ingest/client"
	"github.com/restless-stream/ingest/source/sse"
)

func ExampleNewSource() {
	// A runtime that sends two events, then ends the stream for good (204).
	calls := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls++
		if calls > 1 {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "id: 1\ndata: {\"type\":\"update\",\"event_id\":\"1\"}\n\n")
		io.WriteString(w, ": keepalive\n\nid: 2\ndata: {\"type\":\"update\",\"event_id\":\"2\"}\n\n")
	}))
	defer srv.Close()

	c, err := client.New("rs_example") // sent as "Authorization: Bearer rs_example"
	if err != nil {
		fmt.Println(err)
		return
	}
	src, err := sse.NewSource(sse.Config{Client: c, URL: srv.URL + "/?streamId=stream_123"})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer src.Close()
	for {
		f, err := src.Next(context.Background())
		if err != nil {
			fmt.Println("ended:", errors.Is(err, ingest.ErrStreamEnded))
			break
		}
		fmt.Printf("%s %s\n", f.Cursor, f.Data)
	}
	// Output:
	// 1 {"type":"update","event_id":"1"}
	// 2 {"type":"update","event_id":"2"}
	// ended: true
}
