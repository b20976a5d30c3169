package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/restless-stream/ingest"
	"github.com/restless-stream/ingest/checkpoint"
	"github.com/restless-stream/ingest/client"
	"github.com/restless-stream/ingest/pipeline"
	"github.com/restless-stream/ingest/source/direct"
	"github.com/restless-stream/ingest/source/sse"
	"github.com/restless-stream/ingest/source/ws"
)

// sink is what the daemon needs of a sink: the pipeline's Write, and Close
// (as ingest.ErrClosed describes it).
type sink interface {
	pipeline.Sink
	Close(ctx context.Context) error
}

// daemon is one configured pipeline with its sink, checkpoint store, metrics and
// HTTP server. Build it with newDaemon, run it with run.
type daemon struct {
	cfg     *Config
	log     *slog.Logger
	metrics *Metrics
	ready   *Readiness

	sink    sink
	rawSink sink     // the broker's sink before any decoration
	closers []func() // in reverse order of opening: store, sink, embedded server
	store   checkpoint.Store
	pipe    *pipeline.Pipeline
	http    *httpServer
	api     *client.Client

	// wrapSink, when set, decorates the sink (the demo prints what was published).
	wrapSink func(sink) sink
	// onHTTP, when set, learns the metrics server's address.
	onHTTP func(addr string)
}

// newDaemon opens the sink, the checkpoint store and the HTTP server and builds
// the pipeline. On error everything opened is closed again.
func newDaemon(ctx context.Context, cfg *Config, log *slog.Logger, opts ...func(*daemon)) (_ *daemon, err error) {
	// d is not the named result: "return nil, err" must not clear it before
	// the deferred close runs.
	d := &daemon{cfg: cfg, log: log, metrics: NewMetrics()}
	for _, o := range opts {
		o(d)
	}
	defer func() {
		if err != nil {
			d.close()
		}
	}()
	names := make([]string, len(cfg.Streams))
	for i, s := range cfg.Streams {
		names[i] = s.Name
		d.metrics.Stream(s.Name)
	}
	d.ready = NewReadiness(names)

	d.api, err = client.New(cfg.Restless.APIKey.Reveal(),
		client.WithBaseURL(cfg.Restless.BaseURL),
		client.WithStreamBaseURL(cfg.Restless.StreamBaseURL),
		client.WithUserAgent("restless-ingest/"+version))
	if err != nil {
		return nil, &ConfigError{Errs: []FieldError{{Path: "restless", Msg: err.Error()}}}
	}

	s, connected, err := d.openSink(ctx)
	if err != nil {
		return nil, err
	}
	if d.wrapSink != nil {
		s = d.wrapSink(s)
	}
	d.sink = s
	d.ready.SetSink(connected)
	d.metrics.SetSink(connected)

	if d.store, err = d.openStore(ctx); err != nil {
		return nil, err
	}

	pcfg := pipeline.Config{
		Dedupe:     pipeline.DedupeConfig{Size: cfg.Pipeline.Dedupe.Size, TTL: cfg.Pipeline.Dedupe.TTL.D()},
		Batch:      pipeline.BatchConfig{MaxEvents: cfg.Pipeline.Batch.MaxEvents, MaxWait: cfg.Pipeline.Batch.MaxWait.D()},
		DeadLetter: cfg.Pipeline.DeadLetter,
	}
	for i := range cfg.Streams {
		sc, err := d.streamConfig(i)
		if err != nil {
			return nil, err
		}
		pcfg.Streams = append(pcfg.Streams, sc)
	}
	if d.pipe, err = pipeline.New(pcfg, d.sink, d.store, observer{m: d.metrics, log: d.log}); err != nil {
		return nil, err
	}

	if cfg.HTTP.Addr != "" {
		if d.http, err = startHTTP(cfg.HTTP.Addr, newHTTPHandler(d.metrics, d.ready)); err != nil {
			return nil, err
		}
		if d.onHTTP != nil {
			d.onHTTP(d.http.Addr())
		}
	}
	return d, nil
}

// streamConfig turns streams[i] into the pipeline's stream: its source factory,
// verifier and modes.
func (d *daemon) streamConfig(i int) (pipeline.StreamConfig, error) {
	s := d.cfg.Streams[i]
	at := func(k string) string { return fmt.Sprintf("streams[%d].%s", i, k) }
	sc := pipeline.StreamConfig{
		Name:          s.Name,
		Destination:   s.Destination,
		VerifyMode:    pipeline.VerifyMode(s.Verify.Mode),
		MaxEventBytes: s.MaxEventBytes,
		KeyMode:       pipeline.KeyStream,
	}
	if d.cfg.Sink.Type == "kafka" {
		sc.KeyMode = pipeline.KeyMode(d.cfg.Sink.Kafka.Key)
	}
	if len(s.Verify.Secrets) > 0 && s.Verify.Mode != "off" {
		secrets := make([]string, len(s.Verify.Secrets))
		for j, sec := range s.Verify.Secrets {
			secrets[j] = sec.Reveal()
		}
		v, err := client.NewVerifier(secrets)
		if err != nil {
			return sc, &ConfigError{Errs: []FieldError{{Path: at("verify.secrets"), Msg: err.Error()}}}
		}
		sc.Verifier = v
	}
	open, err := d.sourceFactory(i)
	if err != nil {
		return sc, err
	}
	sc.Open = open
	return sc, nil
}

// sourceFactory returns the function that opens streams[i]'s source at a cursor.
func (d *daemon) sourceFactory(i int) (func(ctx context.Context, cursor string) (pipeline.Source, error), error) {
	s := d.cfg.Streams[i]
	at := func(k string) string { return fmt.Sprintf("streams[%d].%s", i, k) }
	policy := client.Backoff{Initial: s.Reconnect.Initial.D(), Max: s.Reconnect.Max.D(), MaxAttempts: s.Reconnect.MaxAttempts}
	sm := d.metrics.Stream(s.Name)
	onState := func(c ingest.StateChange) {
		sm.State(c)
		d.ready.State(s.Name, c)
		d.logState(s.Name, c)
	}
	base := d.cfg.Restless.StreamBaseURL
	ws_ := s.Transport == "websocket"

	if dc := s.Direct; dc != nil {
		in := client.DirectInput{
			URL:             dc.URL,
			Method:          client.HTTPMethod(dc.Method),
			Headers:         dc.Headers,
			Body:            dc.Body,
			JQFilter:        dc.JQFilter,
			PayloadMode:     client.PayloadMode(dc.PayloadMode),
			PollingInterval: dc.PollingInterval,
		}
		for _, ps := range dc.PollingStrategies {
			in.PollingStrategies = append(in.PollingStrategies, client.PollingStrategy{
				Start: ps.Start, End: ps.End, Days: ps.Days, Timezone: ps.Timezone, PollingInterval: ps.PollingInterval,
			})
		}
		return func(_ context.Context, cursor string) (pipeline.Source, error) {
			src, err := direct.NewSource(direct.Config{
				Client: d.api, Input: in, DedupeKey: dc.DedupeKey, Transport: s.Transport,
				Cursor: cursor, Since: s.Since, Reconnect: policy,
				IdleTimeout: s.IdleTimeout.D(), MaxEventBytes: s.MaxEventBytes, OnState: onState,
			})
			if err != nil {
				return nil, fmt.Errorf("%s: %w", at("direct"), err)
			}
			return src, nil
		}, nil
	}

	url, key := s.URL, "url"
	if s.StreamID != "" || s.SessionID != "" {
		key = "stream_id"
		if s.SessionID != "" {
			key = "session_id"
		}
		build := client.BuildSSEURL
		if ws_ {
			build = client.BuildWebSocketURL
		}
		var err error
		if url, err = build(base, client.RuntimeTarget{StreamID: s.StreamID, SessionID: s.SessionID}); err != nil {
			return nil, &ConfigError{Errs: []FieldError{{Path: at(key), Msg: err.Error()}}}
		}
	}
	return func(_ context.Context, cursor string) (pipeline.Source, error) {
		var src pipeline.Source
		var err error
		if ws_ {
			src, err = ws.NewSource(ws.Config{Client: d.api, URL: url, Cursor: cursor, Since: s.Since, Reconnect: policy,
				IdleTimeout: s.IdleTimeout.D(), MaxEventBytes: s.MaxEventBytes, OnState: onState})
		} else {
			src, err = sse.NewSource(sse.Config{Client: d.api, URL: url, Cursor: cursor, Since: s.Since, Reconnect: policy,
				IdleTimeout: s.IdleTimeout.D(), MaxEventBytes: s.MaxEventBytes, OnState: onState})
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", at(key), err)
		}
		return src, nil
	}, nil
}

// logState logs a source's state change once, at a level that fits it.
func (d *daemon) logState(stream string, c ingest.StateChange) {
	attrs := []any{"stream", stream, "state", c.State.String()}
	if c.Err != nil {
		attrs = append(attrs, "err", c.Err)
	}
	switch c.State {
	case ingest.StateConnected:
		d.log.Info("source connected", attrs...)
	case ingest.StateReconnecting:
		attrs = append(attrs, "attempt", c.Attempt, "delay", c.Delay)
		d.log.Warn("source reconnecting", attrs...)
	case ingest.StateEnded:
		d.log.Info("stream ended by its server", attrs...)
	case ingest.StateFailed:
		d.log.Error("source stopped for good", attrs...)
	case ingest.StateConnecting:
		if c.Err != nil { // a stored cursor that cannot be sent, dropped
			d.log.Warn("source starts without its cursor", attrs...)
			return
		}
		d.log.Debug("source state", attrs...)
	default:
		d.log.Debug("source state", attrs...)
	}
}

// openStore opens the checkpoint store of checkpoint.type.
func (d *daemon) openStore(ctx context.Context) (checkpoint.Store, error) {
	c := d.cfg.Checkpoint
	switch c.Type {
	case "memory":
		return checkpoint.NewMemory(), nil
	case "nats_kv":
		js := d.natsJetStream()
		if js == nil {
			return nil, &ConfigError{Errs: []FieldError{{Path: "checkpoint.type", Msg: "nats_kv needs sink.type nats with sink.nats.jetstream true"}}}
		}
		st, err := checkpoint.NewNATSKV(ctx, js, c.NATSKVBucket)
		if err != nil {
			return nil, fmt.Errorf("checkpoint.nats_kv_bucket: %w", err)
		}
		return st, nil
	default:
		st, err := checkpoint.NewFile(c.Dir)
		if err != nil {
			return nil, fmt.Errorf("checkpoint.dir: %w", err)
		}
		return st, nil
	}
}

// run runs the pipeline until every stream ended or stop is closed; then it
// drains (until force is closed) and closes everything. It returns nil after a
// clean stop or when every stream was ended by its server.
func (d *daemon) run(ctx context.Context, stop, force <-chan struct{}) error {
	defer d.close()
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- d.pipe.Run(runCtx) }()

	d.log.Info("ingest running", d.summary()...)
	select {
	case err := <-done:
		return d.finished(err)
	case <-stop:
	}
	d.log.Info("stopping: draining what was read (signal again to stop at once)")
	shutCtx, cancelShut := context.WithCancel(ctx)
	defer cancelShut()
	go func() {
		select {
		case <-force:
			d.log.Warn("stopping at once: what is not acknowledged is read again on the next start")
			cancelShut()
		case <-shutCtx.Done():
		}
	}()
	shutErr := d.pipe.Shutdown(shutCtx)
	runErr := <-done
	if shutErr != nil {
		return fmt.Errorf("stopped before draining everything: %w", shutErr)
	}
	for _, st := range d.pipe.Status() {
		d.log.Info("stream stopped", "stream", st.Name, "state", st.State.String(), "checkpoint", st.Checkpoint)
	}
	if runErr != nil {
		return d.finished(runErr)
	}
	d.log.Info("stopped cleanly")
	return nil
}

// finished reports how Run ended on its own.
func (d *daemon) finished(err error) error {
	if err == nil {
		d.log.Info("every stream ended; stopping")
		return nil
	}
	var se *pipeline.StreamError
	if errors.As(err, &se) {
		return fmt.Errorf("every stream has stopped: %w", err)
	}
	return err
}

func (d *daemon) summary() []any {
	names := make([]string, len(d.cfg.Streams))
	for i, s := range d.cfg.Streams {
		names[i] = s.Name + "→" + s.Destination
	}
	out := []any{"streams", strings.Join(names, ", "), "sink", d.cfg.Sink.Type, "checkpoint", d.cfg.Checkpoint.Type}
	if d.http != nil {
		out = append(out, "http", "http://"+d.http.Addr())
	}
	return out
}

// close releases everything newDaemon opened, newest first.
func (d *daemon) close() {
	if d.http != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = d.http.Shutdown(ctx)
		cancel()
		d.http = nil
	}
	if d.store != nil {
		if err := d.store.Close(); err != nil {
			d.log.Warn("closing the checkpoint store", "err", err)
		}
		d.store = nil
	}
	for i := len(d.closers) - 1; i >= 0; i-- {
		d.closers[i]()
	}
	d.closers = nil
}

// isTerminal reports whether f is a character device (a terminal).
func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
