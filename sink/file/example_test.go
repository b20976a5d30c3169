package file_test

import (
	"context"
	"fmt"
	"os"

	"github.com/restless-stream/ingest"
	"github.com/restless-stream/ingest/sink/file"
)

func ExampleNewWriter() {
	s := file.NewWriter(os.Stdout)
	err := s.Write(context.Background(), []ingest.Record{{
		Dest:    "restless.orders",
		Key:     []byte("orders"),
		Headers: []ingest.Header{{Key: "restless-event-id", Value: "42"}},
		Value:   []byte(`{"type": "update", "event_id": "42"}`),
	}})
	fmt.Println(err)
	// Output:
	// {"destination":"restless.orders","key":"orders","headers":{"restless-event-id":"42"},"value":{"type":"update","event_id":"42"}}
	// <nil>
}
