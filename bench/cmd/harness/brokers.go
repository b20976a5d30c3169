package main

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/restless-stream/ingest/internal/natsserver"
)

// target is one run's place in a broker: a JetStream stream and subject, or
// a kfake cluster and topic.
type target struct {
	broker *broker
	name   string // JetStream stream, or Kafka topic
	dest   string // subject or topic the records go to
	base   string // JetStream base subject
	kafka  *kfake.Cluster
	addr   string // Kafka bootstrap address
}

// broker is JetStream on an embedded nats-server, or Kafka on kfake
// clusters started per run (kfake keeps every record in memory).
type broker struct {
	kind string // "jetstream" | "kafka"

	// JetStream
	emb *natsserver.Server
	nc  *nats.Conn
	js  jetstream.JetStream

	// Kafka
	logAppendTime bool
}

const (
	kindJetStream = "jetstream"
	kindKafka     = "kafka"
)

// jsDuplicateWindow is the daemon's default sink.nats.duplicate_window.
const jsDuplicateWindow = 10 * time.Minute

// startJetStream starts an embedded nats-server with JetStream (file
// storage under dir) on a free loopback port.
func startJetStream(dir string) (*broker, error) {
	emb, err := natsserver.Start(natsserver.Config{Dir: filepath.Join(dir, "nats"), Host: "127.0.0.1"})
	if err != nil {
		return nil, err
	}
	nc, err := nats.Connect(emb.ClientURL())
	if err != nil {
		emb.Shutdown()
		return nil, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		emb.Shutdown()
		return nil, err
	}
	return &broker{kind: kindJetStream, emb: emb, nc: nc, js: js}, nil
}

func newKafka(logAppendTime bool) *broker {
	return &broker{kind: kindKafka, logAppendTime: logAppendTime}
}

func (b *broker) close() {
	if b.nc != nil {
		b.nc.Close()
	}
	if b.emb != nil {
		b.emb.Shutdown()
	}
}

// url returns the broker address a client connects to.
func (t *target) url() string {
	if t.broker.kind == kindJetStream {
		return t.broker.emb.ClientURL()
	}
	return t.addr
}

// prepare makes a fresh place for run: a stream with the daemon's settings
// (file storage, subjects <base>.>, duplicate window 10m), or a new kfake
// cluster with a 3-partition topic (the daemon's default partitions).
func (b *broker) prepare(ctx context.Context, run string) (*target, error) {
	t := &target{broker: b}
	switch b.kind {
	case kindJetStream:
		t.name = "BENCH_" + strings.ToUpper(run)
		t.base = "bench_" + run
		t.dest = t.base + ".events"
		_, err := b.js.CreateStream(ctx, jetstream.StreamConfig{
			Name:       t.name,
			Subjects:   []string{t.base + ".>"},
			Storage:    jetstream.FileStorage,
			Duplicates: jsDuplicateWindow,
		})
		if err != nil {
			return nil, fmt.Errorf("create stream %s: %w", t.name, err)
		}
	case kindKafka:
		t.name = "bench." + run
		t.dest = t.name
		opts := []kfake.Opt{kfake.NumBrokers(1), kfake.SeedTopics(3, t.name)}
		if b.logAppendTime {
			opts = append(opts, kfake.BrokerConfigs(map[string]string{"log.message.timestamp.type": "LogAppendTime"}))
		}
		c, err := kfake.NewCluster(opts...)
		if err != nil {
			return nil, err
		}
		t.kafka = c
		t.addr = c.ListenAddrs()[0]
	}
	return t, nil
}

// cleanup deletes the stream, or closes the cluster.
func (t *target) cleanup() {
	switch t.broker.kind {
	case kindJetStream:
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = t.broker.js.DeleteStream(ctx, t.name)
	case kindKafka:
		t.kafka.Close()
	}
}

// count returns how many records the broker holds for the run.
func (t *target) count(ctx context.Context) (int64, error) {
	switch t.broker.kind {
	case kindJetStream:
		s, err := t.broker.js.Stream(ctx, t.name)
		if err != nil {
			return 0, err
		}
		info, err := s.Info(ctx)
		if err != nil {
			return 0, err
		}
		return int64(info.State.Msgs), nil
	default:
		cl, err := t.kafkaClient()
		if err != nil {
			return 0, err
		}
		ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, t.name)
		if err != nil {
			return 0, err
		}
		var n int64
		ends.Each(func(o kadm.ListedOffset) { n += o.Offset })
		return n, nil
	}
}

var kafkaClients sync.Map // addr → *kgo.Client, for counting

func (t *target) kafkaClient() (*kgo.Client, error) {
	if c, ok := kafkaClients.Load(t.addr); ok {
		return c.(*kgo.Client), nil
	}
	c, err := kgo.NewClient(kgo.SeedBrokers(t.addr))
	if err != nil {
		return nil, err
	}
	kafkaClients.Store(t.addr, c)
	return c, nil
}

func closeKafkaClient(addr string) {
	if c, ok := kafkaClients.LoadAndDelete(addr); ok {
		c.(*kgo.Client).Close()
	}
}

// progress is what a watch saw: the first poll that found records and the
// first that found all of them.
type progress struct {
	tFirst, tLast time.Time
	cFirst, cLast int64
}

// rate is the records per second between the two polls.
func (p progress) rate() float64 {
	d := p.tLast.Sub(p.tFirst).Seconds()
	if d <= 0 || p.cLast <= p.cFirst {
		return 0
	}
	return float64(p.cLast-p.cFirst) / d
}

// watch polls count every 10ms until it reaches n or ctx ends.
func watch(ctx context.Context, n int64, count func(context.Context) (int64, error)) (progress, error) {
	var p progress
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		c, err := count(ctx)
		now := time.Now()
		if err == nil {
			if c > 0 && p.tFirst.IsZero() {
				p.tFirst, p.cFirst = now, c
			}
			p.cLast = c
			if c >= n {
				p.tLast = now
				return p, nil
			}
		}
		select {
		case <-ctx.Done():
			return p, fmt.Errorf("broker holds %d of %d records: %w", p.cLast, n, ctx.Err())
		case <-tick.C:
		}
	}
}

// consumeLatencies reads n records of the run from the broker and returns,
// for each, the broker's timestamp of the record minus its
// restless-timestamp header (the emulator's meta.timestamp).
//
// JetStream: the stream's store time of the message (set by the server when
// it stored the message, just before it acknowledged the publish), in
// nanoseconds. Kafka: the record's LogAppendTime (the broker's append time,
// in milliseconds).
func (t *target) consumeLatencies(ctx context.Context, n int) ([]time.Duration, error) {
	out := make([]time.Duration, 0, n)
	var bad int
	add := func(at time.Time, hdr string) {
		ts, err := time.Parse(time.RFC3339Nano, hdr)
		if err != nil {
			bad++
			return
		}
		out = append(out, at.Sub(ts))
	}
	switch t.broker.kind {
	case kindJetStream:
		cons, err := t.broker.js.OrderedConsumer(ctx, t.name, jetstream.OrderedConsumerConfig{})
		if err != nil {
			return nil, err
		}
		msgs, err := cons.Messages()
		if err != nil {
			return nil, err
		}
		defer msgs.Stop()
		go func() { <-ctx.Done(); msgs.Stop() }()
		for len(out)+bad < n {
			m, err := msgs.Next()
			if err != nil {
				return out, fmt.Errorf("after %d records: %w", len(out), err)
			}
			md, err := m.Metadata()
			if err != nil {
				return out, err
			}
			add(md.Timestamp, m.Headers().Get("restless-timestamp"))
		}
	default:
		cl, err := kgo.NewClient(kgo.SeedBrokers(t.addr), kgo.ConsumeTopics(t.name),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(100*time.Millisecond))
		if err != nil {
			return nil, err
		}
		defer cl.Close()
		for len(out)+bad < n {
			fs := cl.PollFetches(ctx)
			if err := ctx.Err(); err != nil {
				return out, fmt.Errorf("after %d records: %w", len(out), err)
			}
			var ferr error
			fs.EachError(func(_ string, _ int32, err error) { ferr = errors.Join(ferr, err) })
			if ferr != nil {
				return out, ferr
			}
			fs.EachRecord(func(r *kgo.Record) {
				var hdr string
				for _, h := range r.Headers {
					if h.Key == "restless-timestamp" {
						hdr = string(h.Value)
					}
				}
				add(r.Timestamp, hdr)
			})
		}
	}
	if bad > 0 {
		return out, fmt.Errorf("%d records without a readable restless-timestamp", bad)
	}
	return out, nil
}
