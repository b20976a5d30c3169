package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/segmentio/kafka-go/compress"
	"github.com/segmentio/kafka-go/compress/snappy"

	kafkasink "github.com/restless-stream/ingest/sink/kafka"
)

// kafkaSinkConfig is sink.kafka as the sink's Config; the values the sink
// cannot parse are reported at their keys.
func kafkaSinkConfig(k KafkaSinkConfig) (kafkasink.Config, []FieldError) {
	var errs []FieldError
	acks, err := kafkasink.ParseRequiredAcks(k.RequiredAcks)
	if err != nil {
		errs = append(errs, FieldError{Path: "sink.kafka.required_acks", Msg: err.Error()})
	}
	codec, err := kafkasink.ParseCompression(k.Compression)
	if err != nil {
		errs = append(errs, FieldError{Path: "sink.kafka.compression", Msg: err.Error()})
	}
	return kafkasink.Config{
		Brokers:           k.Brokers,
		RequiredAcks:      acks,
		Compression:       codec,
		CreateTopics:      k.CreateTopics,
		Partitions:        k.Partitions,
		ReplicationFactor: k.ReplicationFactor,
		BatchSize:         k.BatchSize,
		//lint:ignore SA1019 unused by the sink, but still checked by its Validate so that a bad value is reported
		BatchTimeout: k.BatchTimeout.D(),
		SASL:         kafkasink.SASLConfig{Mechanism: k.SASL.Mechanism, Username: k.SASL.Username, Password: k.SASL.Password},
		TLS:          kafkasink.TLSConfig{Enabled: k.TLS.Enabled, CAFile: k.TLS.CAFile, CertFile: k.TLS.CertFile, KeyFile: k.TLS.KeyFile},
	}, errs
}

// standardSnappy sets kafka-go's snappy codec, which is one for the whole
// process, to standard snappy's speed, once and before any Kafka sink
// exists: kafka-go's default encoder costs about a third more CPU per
// record for slightly smaller batches (docs/decisions/0001-kafka-client.md).
// The output is plain snappy either way. The daemon owns its process, so
// the choice is made here and not by the sink package.
var standardSnappy = sync.OnceFunc(func() {
	compress.SnappyCodec.Compression = snappy.FasterCompression
})

// kafkaProbeTimeout bounds asking the brokers whether they answer, for
// /readyz and the sink_connected gauge.
const kafkaProbeTimeout = 2 * time.Second

// openKafka opens the Kafka sink and checks (or, with create_topics, creates)
// every destination topic, so a missing topic fails at start, naming it.
func (d *daemon) openKafka(ctx context.Context) (sink, func() bool, error) {
	k := d.cfg.Sink.Kafka
	cfg, errs := kafkaSinkConfig(k)
	if len(errs) > 0 {
		return nil, nil, &ConfigError{Errs: errs}
	}
	standardSnappy()
	ks, err := kafkasink.New(ctx, cfg)
	if err != nil {
		return nil, nil, keyedError("sink.kafka", kafkaKeys, err)
	}
	d.rawSink = ks
	d.closeSink("kafka", ks)
	if err := ks.EnsureTopics(ctx, d.destinations()); err != nil {
		hint := ""
		if !k.CreateTopics {
			hint = " (create them, or set sink.kafka.create_topics: true)"
		}
		return nil, nil, fmt.Errorf("sink.kafka: topics: %w%s", err, hint)
	}
	connected := func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), kafkaProbeTimeout)
		defer cancel()
		return ks.Connected(ctx)
	}
	return ks, connected, nil
}
