package nats_test

import (
	"context"
	"fmt"
	"os"

	"github.com/restless-stream/ingest"
	"github.com/restless-stream/ingest/sink/nats"
)

// A single-binary edge setup: an embedded server with JetStream, and the
// sink publishing to it.
func ExampleStartEmbedded() {
	dir, err := os.MkdirTemp("", "nats")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	srv, err := nats.StartEmbedded(nats.EmbeddedConfig{Dir: dir}) // port 0: a free port
	if err != nil {
		panic(err)
	}
	defer srv.Shutdown()

	cfg := nats.DefaultConfig()
	cfg.URLs = []string{srv.ClientURL()}
	ctx := context.Background()
	sink, err := nats.New(ctx, cfg)
	if err != nil {
		panic(err)
	}
	defer sink.Close()

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
