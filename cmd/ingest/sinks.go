package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/restless-stream/ingest"
	"github.com/restless-stream/ingest/internal/natsserver"
	filesink "github.com/restless-stream/ingest/sink/file"
	natssink "github.com/restless-stream/ingest/sink/nats"
)

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
		d.closers = append(d.closers, func() { _ = fs.Close() })
		return fs, nil, nil
	default: // stdout
		return nopCloser{filesink.NewWriter(os.Stdout)}, nil, nil
	}
}

// nopCloser leaves standard output open.
type nopCloser struct{ *filesink.Sink }

func (nopCloser) Close() error { return nil }

// destinations lists every topic or subject the streams and the dead letter use.
func (d *daemon) destinations() []string {
	var out []string
	for _, s := range d.cfg.Streams {
		out = append(out, s.Destination)
	}
	if d.cfg.Pipeline.DeadLetter != "" {
		out = append(out, d.cfg.Pipeline.DeadLetter)
	}
	return out
}

// natsSink remembers the NATS sink for the NATS KV checkpoint store.
func (d *daemon) natsJetStream() jetstream.JetStream {
	for _, s := range []sink{d.sink, d.rawSink} {
		if ns, ok := s.(*natssink.Sink); ok {
			return ns.JetStream()
		}
	}
	return nil
}

func (d *daemon) openNATS(ctx context.Context) (sink, func() bool, error) {
	n := d.cfg.Sink.NATS
	urls := splitList(n.URL)
	if n.Embedded {
		emb, err := natsserver.Start(natsserver.Config{
			Dir:    n.EmbeddedDir,
			Port:   n.EmbeddedPort,
			Logger: d.log,
		})
		if err != nil {
			return nil, nil, fmt.Errorf("sink.nats.embedded: %w", err)
		}
		d.closers = append(d.closers, emb.Shutdown)
		urls = []string{emb.ClientURL()}
		d.log.Info("embedded NATS server with JetStream started", "url", emb.ClientURL(), "dir", n.EmbeddedDir)
	}
	log := d.log
	ns, err := natssink.New(ctx, natssink.Config{
		URLs:            urls,
		JetStream:       n.JetStream,
		Stream:          n.Stream,
		BaseSubject:     n.BaseSubject,
		Subjects:        d.destinations(),
		DuplicateWindow: n.DuplicateWindow.D(),
		Token:           n.Token,
		CredentialsFile: n.CredentialsFile,
		TLS:             natssink.TLSConfig{CAFile: n.TLS.CAFile, CertFile: n.TLS.CertFile, KeyFile: n.TLS.KeyFile},
		OnState: func(c ingest.StateChange) {
			logSinkState(log, "nats", c)
		},
	})
	if err != nil {
		return nil, nil, fmt.Errorf("sink.nats: %w", err)
	}
	d.rawSink = ns
	d.closers = append(d.closers, func() { _ = ns.Close() })
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
