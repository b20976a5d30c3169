package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/restless-stream/ingest"
	"github.com/restless-stream/ingest/internal/fielderr"
	"github.com/restless-stream/ingest/internal/natsserver"
	filesink "github.com/restless-stream/ingest/sink/file"
	natssink "github.com/restless-stream/ingest/sink/nats"
)

// sinkCloseTimeout bounds closing a sink. The daemon closes it after the
// pipeline drained, when no Write is left in progress, so it returns at
// once unless something is stuck.
const sinkCloseTimeout = 10 * time.Second

// openSink opens the sink of sink.type. connected reports the broker connection
// for /readyz (nil: always connected).
func (d *daemon) openSink(ctx context.Context) (s sink, connected func() bool, err error) {
	switch d.cfg.Sink.Type {
	case "nats":
		return d.openNATS(ctx)
	case "kafka":
		return d.openKafka(ctx)
	case "file":
		fs, err := filesink.New(d.cfg.Sink.File.Path)
		if err != nil {
			return nil, nil, fmt.Errorf("sink.file.path: %w", err)
		}
		d.closeSink("file", fs)
		return fs, nil, nil
	default: // stdout: Close would only stop taking writes, and never closes standard output
		return filesink.NewWriter(os.Stdout), nil, nil
	}
}

// closeSink registers s to be closed when the daemon closes.
func (d *daemon) closeSink(kind string, s sink) {
	d.closers = append(d.closers, func() {
		ctx, cancel := context.WithTimeout(context.Background(), sinkCloseTimeout)
		defer cancel()
		if err := s.Close(ctx); err != nil {
			d.log.Warn("closing the sink", "sink", kind, "err", err)
		}
	})
}

// destinations lists every topic or subject the streams and the dead letter use.
func (d *daemon) destinations() []string {
	var out []string
	for _, s := range d.cfg.Streams {
		out = append(out, s.Destination)
		if s.Materialize.Destination != "" {
			out = append(out, s.Materialize.Destination)
		}
	}
	if d.cfg.Pipeline.DeadLetter != "" {
		out = append(out, d.cfg.Pipeline.DeadLetter)
	}
	return out
}

// natsJetStream is the JetStream context of the NATS sink, for the NATS KV
// checkpoint store; nil without one.
func (d *daemon) natsJetStream() jetstream.JetStream {
	for _, s := range []sink{d.sink, d.rawSink} {
		if ns, ok := s.(*natssink.Sink); ok {
			return ns.JetStream()
		}
	}
	return nil
}

// natsSinkConfig is sink.nats as the sink's Config, publishing to subjects.
func natsSinkConfig(n NATSSinkConfig, subjects []string) natssink.Config {
	return natssink.Config{
		URLs:            splitList(n.URL),
		Core:            !n.JetStream,
		Stream:          n.Stream,
		BaseSubject:     n.BaseSubject,
		Subjects:        subjects,
		DuplicateWindow: n.DuplicateWindow.D(),
		Replicas:        n.Replicas,
		Token:           n.Token,
		CredentialsFile: n.CredentialsFile,
		TLS:             natssink.TLSConfig{CAFile: n.TLS.CAFile, CertFile: n.TLS.CertFile, KeyFile: n.TLS.KeyFile},
	}
}

// embeddedNATSConfig is the embedded server of sink.nats.
func embeddedNATSConfig(n NATSSinkConfig) natsserver.Config {
	return natsserver.Config{Dir: n.EmbeddedDir, Port: n.EmbeddedPort}
}

func (d *daemon) openNATS(ctx context.Context) (sink, func() bool, error) {
	n := d.cfg.Sink.NATS
	cfg := natsSinkConfig(n, d.destinations())
	if n.Embedded {
		ecfg := embeddedNATSConfig(n)
		ecfg.Logger = d.log
		emb, err := natsserver.Start(ecfg)
		if err != nil {
			return nil, nil, keyedError("sink.nats", natsServerKeys, err)
		}
		d.closers = append(d.closers, emb.Shutdown)
		cfg.URLs = []string{emb.ClientURL()}
		d.log.Info("embedded NATS server with JetStream started", "url", emb.ClientURL(), "dir", n.EmbeddedDir)
	}
	log := d.log
	cfg.OnState = func(c ingest.StateChange) { logSinkState(log, "nats", c) }
	ns, err := natssink.New(ctx, cfg)
	if err != nil {
		return nil, nil, keyedError("sink.nats", natsKeys, err)
	}
	d.rawSink = ns
	d.closeSink("nats", ns)
	return ns, ns.Connected, nil
}

func logSinkState(log *slog.Logger, kind string, c ingest.StateChange) {
	switch c.State {
	case ingest.StateConnected:
		log.Info("sink connected", "sink", kind)
	case ingest.StateFailed:
		log.Error("sink connection closed for good", "sink", kind, "err", c.Err)
	default:
		log.Warn("sink disconnected; reconnecting", "sink", kind, "err", c.Err)
	}
}

// splitList splits a comma-separated list, dropping blanks.
func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// The sinks' Configs validate themselves and name a field at fault by its Go
// path (*ingest.FieldError). These tables give the YAML key, below the
// sink's section, of each Go path the daemon sets; a key ending in "[]" is
// a list and keeps the path's index (Brokers[1] → brokers[1]), any other
// drops it (URLs[1] → url, a comma-separated string).
var (
	natsKeys = map[string]string{
		"URLs":            "url",
		"Core":            "jetstream",
		"Stream":          "stream",
		"BaseSubject":     "base_subject",
		"DuplicateWindow": "duplicate_window",
		"Replicas":        "replicas",
		"Token":           "token",
		"CredentialsFile": "credentials_file",
		"TLS.CAFile":      "tls.ca_file",
		"TLS.CertFile":    "tls.cert_file",
		"TLS.KeyFile":     "tls.key_file",
	}
	natsServerKeys = map[string]string{
		"Dir":  "embedded_dir",
		"Port": "embedded_port",
	}
	kafkaKeys = map[string]string{
		"Brokers":           "brokers[]",
		"RequiredAcks":      "required_acks",
		"Compression":       "compression",
		"CreateTopics":      "create_topics",
		"Partitions":        "partitions",
		"ReplicationFactor": "replication_factor",
		"BatchSize":         "batch_size",
		"BatchTimeout":      "batch_timeout",
		"SASL.Mechanism":    "sasl.mechanism",
		"SASL.Username":     "sasl.username",
		"SASL.Password":     "sasl.password",
		"TLS.Enabled":       "tls.enabled",
		"TLS.CAFile":        "tls.ca_file",
		"TLS.CertFile":      "tls.cert_file",
		"TLS.KeyFile":       "tls.key_file",
	}
)

// yamlKey is the key, below section, of the Go path field by keys; a field
// missing from keys keeps its Go path.
func yamlKey(section string, keys map[string]string, field string) string {
	base, index := field, ""
	if i := strings.IndexByte(field, '['); i >= 0 {
		base, index = field[:i], field[i:]
	}
	key, ok := keys[base]
	if !ok {
		return section + "." + field
	}
	if list, isList := strings.CutSuffix(key, "[]"); isList {
		return section + "." + list + index
	}
	return section + "." + key
}

// addLib adds what a sink's Validate reported, at the YAML keys below
// section.
func (v *validator) addLib(section string, keys map[string]string, err error) {
	fields, others := fielderr.Split(err)
	for _, fe := range fields {
		v.add(yamlKey(section, keys, fe.Field), "%v", fe.Err)
	}
	for _, e := range others {
		v.add(section, "%v", e)
	}
}

// keyedError is err from opening a sink with each field at fault named by
// its YAML key below section.
func keyedError(section string, keys map[string]string, err error) error {
	fields, others := fielderr.Split(err)
	if len(fields) == 0 {
		return fmt.Errorf("%s: %w", section, err)
	}
	out := make([]error, 0, len(fields)+len(others))
	for _, fe := range fields {
		out = append(out, fmt.Errorf("%s: %w", yamlKey(section, keys, fe.Field), fe.Err))
	}
	for _, e := range others {
		out = append(out, fmt.Errorf("%s: %w", section, e))
	}
	return errors.Join(out...)
}
