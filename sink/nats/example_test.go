package nats_test

import (
	"context"
	"fmt"
	"os"

	"github.com/restless-stream/ingest"
	"github.com/restless-stream/ingest/internal/natsserver"
	"github.com/restless-stream/ingest/sink/nats"
)

// The zero Config publishes to JetStream, and the stream drops a record
// whose MsgID it already stored.
func ExampleNew() {
	// A NATS server with JetStream in the process, for the example.
	dir, err := os.MkdirTemp("", "nats")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	srv, err := natsserver.Start(natsserver.Config{Dir: dir}) // port 0: a free port
	if err != nil {
		panic(err)
	}
	defer srv.Shutdown()

	ctx := context.Background()
	sink, err := nats.New(ctx, nats.Config{URLs: []string{srv.ClientURL()}})
	if err != nil {
		panic(err)
	}
	defer sink.Close(ctx)

	rec := ingest.Record{
		Dest:    "restless.orders",
		MsgID:   "orders:42",
		Headers: []ingest.Header{{Key: "restless-event-id", Value: "42"}},
		Value:   []byte(`{"type":"update","event_id":"42"}`),
	}
	fmt.Println(sink.Write(ctx, []ingest.Record{rec}))
	fmt.Println(sink.Write(ctx, []ingest.Record{rec}), sink.Duplicates())
	// Output:
	// <nil>
	// <nil> 1
}
