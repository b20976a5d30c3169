package nats

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/restless-stream/ingest"
)

const benchBatch = 512

func benchRecords(subject string, round int) []ingest.Record {
	recs := records(subject, "bench", round*benchBatch, benchBatch)
	pad := strings.Repeat("x", 1024-len(recs[0].Value))
	for i := range recs {
		recs[i].Value = fmt.Appendf(nil, `{"type":"update","event_id":"%d","pad":"%s"}`, round*benchBatch+i, pad[:len(pad)-20])
	}
	return recs
}

// BenchmarkJetStreamSink writes batches of 512 ~1 KiB records through the
// sink to the shared server, each record with a new Nats-Msg-Id.
func BenchmarkJetStreamSink(b *testing.B) {
	url := sharedServer(b)
	cfg, base := testConfig(b, url)
	s := newSink(b, cfg)
	subject := base + ".bench"
	round := 0
	batches := make([][]ingest.Record, 64)
	for i := range batches {
		batches[i] = benchRecords(subject, i)
	}
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		recs := batches[round%len(batches)]
		for i := range recs { // fresh ids, so nothing is a duplicate
			recs[i].MsgID = fmt.Sprint("bench:", round, ":", i)
		}
		round++
		if err := s.Write(ctx, recs); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*benchBatch)/b.Elapsed().Seconds(), "msgs/s")
}

// BenchmarkJetStreamSinkSubjects writes batches of 512 ~1 KiB records
// spread over 8 subjects (64 each, in turn), as lanes of several streams
// would, through the sink to the shared server.
func BenchmarkJetStreamSinkSubjects(b *testing.B) {
	url := sharedServer(b)
	cfg, base := testConfig(b, url)
	s := newSink(b, cfg)
	round := 0
	batches := make([][]ingest.Record, 64)
	for i := range batches {
		batches[i] = benchRecords(base+".bench", i)
		for j := range batches[i] {
			batches[i][j].Dest = fmt.Sprint(base, ".bench", j%8)
		}
	}
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		recs := batches[round%len(batches)]
		for i := range recs { // fresh ids, so nothing is a duplicate
			recs[i].MsgID = fmt.Sprint("bench:", round, ":", i)
		}
		round++
		if err := s.Write(ctx, recs); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*benchBatch)/b.Elapsed().Seconds(), "msgs/s")
}

// BenchmarkJetStreamRaw is the raw bound: the same messages, pre-built,
// published with jetstream.PublishMsgAsync and awaited with
// PublishAsyncComplete.
func BenchmarkJetStreamRaw(b *testing.B) {
	url := sharedServer(b)
	cfg, base := testConfig(b, url)
	newSink(b, cfg).Close(context.Background()) // creates the stream
	nc, err := nats.Connect(url)
	if err != nil {
		b.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(DefaultMaxPending))
	if err != nil {
		b.Fatal(err)
	}
	subject := base + ".bench"
	batches := make([][]ingest.Record, 64)
	for i := range batches {
		batches[i] = benchRecords(subject, i)
	}
	round := 0
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		b.StopTimer()
		recs := batches[round%len(batches)]
		msgs := make([]*nats.Msg, len(recs))
		for i := range recs {
			recs[i].MsgID = fmt.Sprint("bench:", round, ":", i)
			msgs[i] = newMsg(&recs[i])
		}
		round++
		b.StartTimer()
		for _, m := range msgs {
			if _, err := js.PublishMsgAsync(m); err != nil {
				b.Fatal(err)
			}
		}
		<-js.PublishAsyncComplete()
	}
	b.ReportMetric(float64(b.N*benchBatch)/b.Elapsed().Seconds(), "msgs/s")
}

// BenchmarkCoreSink writes batches of 512 ~1 KiB records with core publish
// and a flush per batch.
func BenchmarkCoreSink(b *testing.B) {
	url := sharedServer(b)
	s := newSink(b, Config{URLs: []string{url}, Core: true})
	recs := benchRecords("bench"+uniqueID(b)+".core", 0)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if err := s.Write(ctx, recs); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*benchBatch)/b.Elapsed().Seconds(), "msgs/s")
}

// BenchmarkCoreRaw is the raw bound of core mode: the same messages,
// pre-built, published with nats.Conn.PublishMsg and one Flush per batch.
func BenchmarkCoreRaw(b *testing.B) {
	url := sharedServer(b)
	nc, err := nats.Connect(url)
	if err != nil {
		b.Fatal(err)
	}
	defer nc.Close()
	recs := benchRecords("bench"+uniqueID(b)+".core", 0)
	msgs := make([]*nats.Msg, len(recs))
	for i := range recs {
		msgs[i] = newMsg(&recs[i])
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		for _, m := range msgs {
			if err := nc.PublishMsg(m); err != nil {
				b.Fatal(err)
			}
		}
		if err := nc.Flush(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*benchBatch)/b.Elapsed().Seconds(), "msgs/s")
}
