package kafka

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/restless-stream/ingest"
)

const testTopic = "restless.orders"

// newCluster starts a one-broker kfake cluster on loopback with testTopic
// seeded with three partitions; kfake answers acks=all at once.
func newCluster(tb testing.TB, opts ...kfake.Opt) (*kfake.Cluster, string) {
	tb.Helper()
	opts = append([]kfake.Opt{kfake.NumBrokers(1), kfake.SeedTopics(3, testTopic)}, opts...)
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(c.Close)
	return c, c.ListenAddrs()[0]
}

func newSink(tb testing.TB, cfg Config) *Sink {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := New(ctx, cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close(context.Background()) })
	return s
}

func records(topic string, streams []string, n int) []ingest.Record {
	recs := make([]ingest.Record, n)
	for i := range recs {
		stream := streams[i%len(streams)]
		id := fmt.Sprint(i)
		recs[i] = ingest.Record{
			Dest: topic,
			Key:  []byte(stream),
			Headers: []ingest.Header{
				{Key: "restless-stream", Value: stream},
				{Key: "restless-event-id", Value: id},
				{Key: "restless-event-type", Value: "update"},
				{Key: "restless-timestamp", Value: "2026-11-26T10:00:00Z"},
				{Key: "restless-verified", Value: "true"},
				{Key: "content-type", Value: "application/json"},
			},
			Value: fmt.Appendf(nil, `{"type":"update","event_id":"%s","data":{"stream":"%s"}}`, id, stream),
		}
	}
	return recs
}

// consume reads n records of topic from the start with franz-go.
func consume(tb testing.TB, addr, topic string, n int) []*kgo.Record {
	tb.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		tb.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var out []*kgo.Record
	for len(out) < n {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			tb.Fatalf("consumed %d of %d records: %v", len(out), n, err)
		}
		fs.EachError(func(t string, p int32, err error) { tb.Fatalf("fetch %s/%d: %v", t, p, err) })
		out = append(out, fs.Records()...)
	}
	return out
}
