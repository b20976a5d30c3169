package kafka_test

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/restless-stream/ingest"
	"github.com/restless-stream/ingest/sink/kafka"
)

func ExampleNew() {
	// A Kafka-compatible broker in the process, for the example.
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		panic(err)
	}
	defer cluster.Close()

	ctx := context.Background()
	sink, err := kafka.New(ctx, kafka.Config{
		Brokers:      cluster.ListenAddrs(),
		CreateTopics: true, // off by default: a missing topic is an error
	})
	if err != nil {
		panic(err)
	}
	defer sink.Close(ctx)
	if err := sink.EnsureTopics(ctx, []string{"restless.orders"}); err != nil {
		panic(err)
	}
	err = sink.Write(ctx, []ingest.Record{{
		Dest:    "restless.orders",
		Key:     []byte("orders"),
		Headers: []ingest.Header{{Key: "restless-event-id", Value: "42"}},
		Value:   []byte(`{"type":"update","event_id":"42"}`),
	}})
	fmt.Println(err)
	// Output: <nil>
}
