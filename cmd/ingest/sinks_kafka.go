package main

import (
	"context"
	"fmt"

	kafkasink "github.com/restless-stream/ingest/sink/kafka"
)

// openKafka opens the Kafka sink and checks (or, with create_topics, creates)
// every destination topic, so a missing topic fails at start, naming it.
func (d *daemon) openKafka(ctx context.Context) (sink, func() bool, error) {
	k := d.cfg.Sink.Kafka
	ks, err := kafkasink.New(ctx, kafkasink.Config{
		Brokers:           k.Brokers,
		RequiredAcks:      k.RequiredAcks,
		Compression:       k.Compression,
		CreateTopics:      k.CreateTopics,
		Partitions:        k.Partitions,
		ReplicationFactor: k.ReplicationFactor,
		BatchSize:         k.BatchSize,
		BatchTimeout:      k.BatchTimeout.D(),
		SASL:              kafkasink.SASLConfig{Mechanism: k.SASL.Mechanism, Username: k.SASL.Username, Password: k.SASL.Password},
		TLS:               kafkasink.TLSConfig{Enabled: k.TLS.Enabled, CAFile: k.TLS.CAFile, CertFile: k.TLS.CertFile, KeyFile: k.TLS.KeyFile},
	})
	if err != nil {
		return nil, nil, fmt.Errorf("sink.kafka: %w", err)
	}
	d.rawSink = ks
	d.closers = append(d.closers, func() { _ = ks.Close() })
	if err := ks.EnsureTopics(ctx, d.destinations()); err != nil {
		hint := ""
		if !k.CreateTopics {
			hint = " (create them, or set sink.kafka.create_topics: true)"
		}
		return nil, nil, fmt.Errorf("sink.kafka: topics: %w%s", err, hint)
	}
	return ks, ks.Connected, nil
}
