package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"strconv"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/compress"
	"github.com/segmentio/kafka-go/compress/snappy"

	"github.com/restless-stream/ingest/bench/internal/events"
)

// The bound publishes with the settings the sinks use by default.
const (
	boundBatch      = 512  // pipeline.batch.max_events default: records per Write
	boundMaxPending = 4096 // sink/nats DefaultMaxPending
	// The Kafka bound is kafka-go's Writer at its best for this batch shape:
	// its batch size equals the records per Write, so every full Write is
	// sent at once instead of waiting out the batch timer (a Writer with
	// batch_size 1000 fed 512 records per Write would wait 5 ms each time,
	// which would flatter the sink).
	boundKafkaBatch   = boundBatch
	boundKafkaTimeout = 5 * time.Millisecond
	boundStream       = "bench"
	boundSecret       = "bench-secret"
	boundStartID      = 1_700_000_000_000
)

// boundMain is `harness bound`: it pre-builds n records exactly as the
// pipeline makes them from firehose events (1 KiB value, the six headers,
// Nats-Msg-Id, key = the stream name) and publishes them with the broker's
// client library in batches of 512, waiting for every acknowledgement of a
// batch before the next, as a lane does. It prints the CPU time and wall
// time of the publishing (not of building) as JSON.
func boundMain(args []string) error {
	fs := flag.NewFlagSet("bound", flag.ContinueOnError)
	kind := fs.String("broker", kindJetStream, "jetstream | kafka")
	url := fs.String("url", "", "broker address")
	dest := fs.String("dest", "", "subject or topic")
	n := fs.Int("n", 100000, "records")
	if err := fs.Parse(args); err != nil {
		return err
	}
	type rec struct {
		value []byte
		id    string
		ts    string
	}
	recs := make([]rec, *n)
	now := time.Now()
	for i := range recs {
		id := int64(boundStartID + i + 1)
		recs[i] = rec{value: events.Build(boundSecret, int64(i+1), id, 1024, now), id: strconv.FormatInt(id, 10), ts: now.UTC().Format("2006-01-02T15:04:05.000+00:00")}
	}
	headers := func(r rec) [][2]string {
		return [][2]string{{"restless-stream", boundStream}, {"restless-event-id", r.id}, {"restless-event-type", "update"},
			{"restless-timestamp", r.ts}, {"restless-verified", "true"}, {"content-type", "application/json"}}
	}
	ctx := context.Background()
	var publish func() error
	switch *kind {
	case kindJetStream:
		msgs := make([]*nats.Msg, len(recs))
		for i, r := range recs {
			m := &nats.Msg{Subject: *dest, Data: r.value, Header: nats.Header{}}
			for _, h := range headers(r) {
				m.Header.Add(h[0], h[1])
			}
			m.Header.Set(nats.MsgIdHdr, boundStream+":"+r.id)
			msgs[i] = m
		}
		nc, err := nats.Connect(*url)
		if err != nil {
			return err
		}
		defer nc.Close()
		js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(boundMaxPending))
		if err != nil {
			return err
		}
		publish = func() error {
			futs := make([]jetstream.PubAckFuture, 0, boundBatch)
			for start := 0; start < len(msgs); start += boundBatch {
				futs = futs[:0]
				for _, m := range msgs[start:min(start+boundBatch, len(msgs))] {
					f, err := js.PublishMsgAsync(m)
					if err != nil {
						return err
					}
					futs = append(futs, f)
				}
				<-js.PublishAsyncComplete()
				for _, f := range futs {
					select {
					case err := <-f.Err():
						return err
					default:
					}
				}
			}
			return nil
		}
	case kindKafka:
		// Standard snappy speed, as the daemon sets it for its process
		// (cmd/ingest, sinks_kafka.go), so that the bound compresses as the
		// sink does.
		compress.SnappyCodec.Compression = snappy.FasterCompression
		msgs := make([]kafka.Message, len(recs))
		for i, r := range recs {
			hs := make([]kafka.Header, 0, 6)
			for _, h := range headers(r) {
				hs = append(hs, kafka.Header{Key: h[0], Value: []byte(h[1])})
			}
			msgs[i] = kafka.Message{Topic: *dest, Key: []byte(boundStream), Value: r.value, Headers: hs}
		}
		w := &kafka.Writer{
			Addr: kafka.TCP(*url), Balancer: &kafka.Murmur2Balancer{}, MaxAttempts: 3,
			BatchSize: boundKafkaBatch, BatchBytes: 1 << 20, BatchTimeout: boundKafkaTimeout, WriteTimeout: 10 * time.Second,
			RequiredAcks: kafka.RequireAll, Compression: kafka.Snappy,
		}
		defer w.Close()
		publish = func() error {
			for start := 0; start < len(msgs); start += boundBatch {
				if err := w.WriteMessages(ctx, msgs[start:min(start+boundBatch, len(msgs))]...); err != nil {
					return err
				}
			}
			return nil
		}
	default:
		return fmt.Errorf("-broker %q: want jetstream or kafka", *kind)
	}
	if *url == "" || *dest == "" {
		return errors.New("-url and -dest are required")
	}
	cpu0, t0 := selfCPU(), time.Now()
	if err := publish(); err != nil {
		return err
	}
	rep := boundReport{CPUNanos: int64(selfCPU() - cpu0), WallNanos: int64(time.Since(t0))}
	return json.NewEncoder(os.Stdout).Encode(rep)
}

// selfCPU returns the CPU time this process used so far.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
