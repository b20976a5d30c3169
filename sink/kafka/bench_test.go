package kafka

import (
	"context"
	"fmt"
	"strings"
	"testing"

	kafkago "github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/restless-stream/ingest"
)

const benchBatch = 1000

// benchRecords are 1000 records of ~1 KiB with the headers of a real event,
// keyed by one stream name (as the default key mode does).
func benchRecords() []ingest.Record {
	recs := records(testTopic, []string{"bench"}, benchBatch)
	pad := strings.Repeat("x", 1024)
	for i := range recs {
		v := fmt.Sprintf(`{"type":"update","event_id":"%d","pad":"`, i)
		recs[i].Value = []byte(v + pad[:1024-len(v)-2] + `"}`)
	}
	return recs
}

func benchConfig(addr string) Config {
	return Config{Brokers: []string{addr}, Compression: CompressionNone}
}

// BenchmarkKafkaSink writes batches of 1000 1 KiB records through the sink
// to a kfake broker (acks=all, 3 partitions).
func BenchmarkKafkaSink(b *testing.B) {
	_, addr := newCluster(b, kfake.BlackholeProduce())
	s := newSink(b, benchConfig(addr))
	recs := benchRecords()
	ctx := context.Background()
	b.ReportAllocs()
	b.SetBytes(int64(benchBatch * 1024))
	b.ResetTimer()
	for b.Loop() {
		if err := s.Write(ctx, recs); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*benchBatch)/b.Elapsed().Seconds(), "msgs/s")
}

// BenchmarkKafkaRaw is the raw bound: the same records as pre-built
// kafka-go Messages, written by a kafka-go Writer with the sink's settings.
func BenchmarkKafkaRaw(b *testing.B) {
	benchRaw(b, benchRecords())
}

// benchRaw writes recs, pre-built as kafka-go Messages, with a kafka-go Writer
// configured as the sink's defaults used to configure it.
func benchRaw(b *testing.B, recs []ingest.Record) {
	_, addr := newCluster(b, kfake.BlackholeProduce())
	cfg := benchConfig(addr).withDefaults()
	w := &kafkago.Writer{
		Addr: kafkago.TCP(addr), Balancer: &kafkago.Murmur2Balancer{}, RequiredAcks: cfg.RequiredAcks.kafkaGo(), Compression: cfg.Compression.kafkaGo(),
		BatchSize: cfg.BatchSize, BatchTimeout: DefaultBatchTimeout, MaxAttempts: cfg.MaxAttempts,
	}
	defer w.Close()
	msgs := make([]kafkago.Message, len(recs))
	size := 0
	for i, r := range recs {
		hs := make([]kafkago.Header, len(r.Headers))
		for j, h := range r.Headers {
			hs[j] = kafkago.Header{Key: h.Key, Value: []byte(h.Value)}
		}
		msgs[i] = kafkago.Message{Topic: r.Dest, Key: r.Key, Value: r.Value, Headers: hs}
		size += len(r.Value)
	}
	ctx := context.Background()
	b.ReportAllocs()
	b.SetBytes(int64(size))
	b.ResetTimer()
	for b.Loop() {
		if err := w.WriteMessages(ctx, msgs...); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*len(recs))/b.Elapsed().Seconds(), "msgs/s")
}

// BenchmarkKafkaSinkSmallWrite writes 5 records per call, as the pipeline does
// at a low event rate: ns/op is the latency one Write adds, a round trip to
// the broker.
func BenchmarkKafkaSinkSmallWrite(b *testing.B) {
	_, addr := newCluster(b, kfake.BlackholeProduce())
	s := newSink(b, benchConfig(addr))
	recs := benchRecords()[:5]
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if err := s.Write(ctx, recs); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkKafkaRawSmallWrite is the same 5 records through kafka-go's
// Writer, which holds a batch smaller than BatchSize for BatchTimeout (5ms).
func BenchmarkKafkaRawSmallWrite(b *testing.B) {
	benchRaw(b, benchRecords()[:5])
}
