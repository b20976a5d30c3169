package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/restless-stream/ingest"
	"github.com/restless-stream/ingest/checkpoint"
	"github.com/restless-stream/ingest/client"
	"github.com/restless-stream/ingest/pipeline"
	kafkasink "github.com/restless-stream/ingest/sink/kafka"
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
	lock    *checkpoint.DirLock // checkpoint.dir, held while the daemon runs
	lease   *checkpoint.Lease   // the streams' lease on a nats_kv store
	pipe    *pipeline.Pipeline
	http    *httpServer
	status  *statusBoard // what /v1/streams and /v1/cluster show; nil without http.addr
	api     *client.Client
	set     *streamSet   // the running stream set: reload and discovery
	cl      *clusterMode // cluster mode; nil without

	// reload, when set, asks for a reload of the configuration with
	// loadConfig (SIGHUP, --watch-config); level is log.level's LevelVar.
	reload     <-chan struct{}
	loadConfig func() (*Config, error)
	level      *slog.LevelVar

	// wrapSink, when set, decorates the sink (the demo prints what was published).
	wrapSink func(sink) sink
	// onHTTP, when set, learns the metrics server's address.
	onHTTP func(addr string)
	// onState, when set, learns every source state change (check --connect).
	onState func(stream string, c ingest.StateChange)
	// deg marks streams that reject everything or cannot reconnect.
	deg *Degradation
	// cursors are the streams' resume positions as their sources hold them.
	cursors map[string]*streamCursor
}

// newDaemon opens the sink, the checkpoint store and the HTTP server and builds
// the pipeline. On error everything opened is closed again.
func newDaemon(ctx context.Context, cfg *Config, log *slog.Logger, opts ...func(*daemon)) (_ *daemon, err error) {
	// d is not the named result: "return nil, err" must not clear it before
	// the deferred close runs.
	d := &daemon{cfg: cfg, log: log, metrics: NewMetrics(), cursors: map[string]*streamCursor{}}
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
		d.cursors[s.Name] = &streamCursor{}
	}
	if cfg.Cluster.Enabled {
		names = nil // the coordinator says which streams run here
	}
	d.ready = NewReadiness(names)
	d.deg = NewDegradation(names)
	d.ready.degraded = d.deg
	d.metrics.Registry.MustRegister(d.deg)

	d.api, err = client.New(cfg.Restless.APIKey.Reveal(),
		client.WithBaseURL(cfg.Restless.BaseURL),
		client.WithStreamBaseURL(cfg.Restless.StreamBaseURL),
		client.WithUserAgent("restless-ingest/"+version))
	if err != nil {
		return nil, &ConfigError{Errs: []FieldError{{Path: "restless", Msg: err.Error()}}}
	}

	// The HTTP server first: while the broker is unreachable at start,
	// /readyz answers 503 (and /metrics works) as during a later outage.
	d.ready.SetSink(func() bool { return false })
	// Until the pipeline exists, the status endpoints list no stream.
	member := memberID()
	if cfg.Cluster.Enabled {
		d.cl = newClusterMode(d)
		member = d.cl.member
	}
	d.status = newStatusBoard(member, d.metrics, func() []pipeline.StreamStatus { return nil })
	if cfg.HTTP.Addr != "" {
		if d.http, err = startHTTP(cfg.HTTP.Addr, newHTTPHandler(d.metrics, d.ready, d.status.routes)); err != nil {
			return nil, err
		}
		if d.onHTTP != nil {
			d.onHTTP(d.http.Addr())
		}
	}
	if err := d.openBackendsRetrying(ctx); err != nil {
		return nil, err
	}

	pcfg, errs := cfg.pipelineConfig()
	if len(errs) > 0 {
		return nil, &ConfigError{Errs: errs}
	}
	if d.cl != nil {
		// The lanes start as the coordinator assigns the streams, and the
		// set may be empty meanwhile.
		pcfg.Streams, pcfg.KeepRunning = nil, true
	}
	for i := range pcfg.Streams {
		if pcfg.Streams[i].Open, err = d.sourceFactory(cfg.Streams[i], fmt.Sprintf("streams[%d]", i)); err != nil {
			return nil, err
		}
	}
	if d.pipe, err = pipeline.New(pcfg, d.sink, d.store, observer{m: d.metrics, log: d.log, ready: d.ready, deg: d.deg}); err != nil {
		return nil, err
	}
	d.set = newStreamSet(d)
	d.status.SetLanes(func() []pipeline.StreamStatus { return d.pipe.Status() })
	return d, nil
}

// sourceFactory returns the function that opens stream s's source at a
// cursor; path is where s is configured (streams[2], or discover).
func (d *daemon) sourceFactory(s StreamConfig, path string) (func(ctx context.Context, cursor string) (pipeline.Source, error), error) {
	at := func(k string) string { return path + "." + k }
	policy := client.Backoff{Initial: s.Reconnect.Initial.D(), Max: s.Reconnect.Max.D(), MaxAttempts: s.Reconnect.MaxAttempts}
	sm := d.metrics.Stream(s.Name)
	onState := func(c ingest.StateChange) {
		sm.State(c)
		d.ready.State(s.Name, c)
		d.deg.Attempt(s.Name, c.Attempt)
		d.logState(s.Name, c)
		if d.onState != nil {
			d.onState(s.Name, c)
		}
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
				IdleTimeout: s.IdleTimeout.D(), MaxSilence: s.MaxSilence.D(), MaxEventBytes: s.MaxEventBytes, OnState: onState,
			})
			if err != nil {
				return nil, fmt.Errorf("%s: %w", at("direct"), err)
			}
			return d.trackCursor(s.Name, cursor, src), nil
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
				IdleTimeout: s.IdleTimeout.D(), MaxSilence: s.MaxSilence.D(), MaxEventBytes: s.MaxEventBytes, OnState: onState})
		} else {
			src, err = sse.NewSource(sse.Config{Client: d.api, URL: url, Cursor: cursor, Since: s.Since, Reconnect: policy,
				IdleTimeout: s.IdleTimeout.D(), MaxSilence: s.MaxSilence.D(), MaxEventBytes: s.MaxEventBytes, OnState: onState})
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", at(key), err)
		}
		return d.trackCursor(s.Name, cursor, src), nil
	}, nil
}

// logState logs a source's state change once, at a level that fits it.
func (d *daemon) logState(stream string, c ingest.StateChange) {
	attrs := []any{"stream", stream, "state", c.State.String()}
	if c.Err != nil {
		attrs = append(attrs, "err", c.Err)
	}
	cursor := ""
	if sc := d.cursors[stream]; sc != nil {
		cursor = sc.get()
	}
	switch c.State {
	case ingest.StateConnected:
		if cursor != "" {
			attrs = append(attrs, "resumed_from", cursor)
		} else {
			attrs = append(attrs, "resumed_from", "none (live or since)")
		}
		d.log.Info("source connected", attrs...)
	case ingest.StateReconnecting:
		attrs = append(attrs, "attempt", c.Attempt, "delay", c.Delay)
		if cursor != "" {
			attrs = append(attrs, "resume_from", cursor)
		}
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
	if d.cl != nil {
		return d.cl.open(ctx)
	}
	switch c.Type {
	case "memory":
		return checkpoint.NewMemory(), nil
	case "kafka":
		ks, ok := d.rawSink.(*kafkasink.Sink)
		if !ok {
			return nil, &ConfigError{Errs: []FieldError{{Path: "checkpoint.type", Msg: "kafka needs sink.type kafka"}}}
		}
		st, err := checkpoint.NewKafka(ctx, checkpoint.KafkaConfig{Client: ks.Client(), Topic: c.KafkaTopic})
		if err != nil {
			return nil, fmt.Errorf("checkpoint.kafka_topic: %w", err)
		}
		return st, nil
	case "nats_kv":
		js := d.natsJetStream()
		if js == nil {
			return nil, &ConfigError{Errs: []FieldError{{Path: "checkpoint.type", Msg: "nats_kv needs sink.type nats with sink.nats.jetstream true"}}}
		}
		st, err := checkpoint.NewNATSKV(ctx, js, c.NATSKVBucket)
		if err != nil {
			return nil, fmt.Errorf("checkpoint.nats_kv_bucket: %w", err)
		}
		if err := d.leaseStreams(ctx, js); err != nil {
			return nil, err
		}
		return st, nil
	default:
		// Before NewFile, which removes the temporary files of a crash: they
		// may be another daemon's saves in progress.
		if err := d.lockCheckpointDir(); err != nil {
			return nil, err
		}
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
	var bg sync.WaitGroup
	defer bg.Wait()
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- d.pipe.Run(runCtx) }()
	pr := &progressReporter{log: d.log, metrics: d.metrics, status: d.pipe.Status, every: d.cfg.Log.ProgressInterval.D(),
		cursor: func(stream string) string { return d.cursors[stream].get() }}
	go pr.run(runCtx)

	// Cluster mode: the coordinator runs until the daemon has left the
	// cluster (or stops at once); its goroutines end before close.
	var clusterFailed <-chan error
	if d.cl != nil {
		clCtx, stopCluster := context.WithCancel(runCtx)
		defer stopCluster()
		var clWG sync.WaitGroup
		defer clWG.Wait()
		d.cl.start(clCtx, &clWG)
		clusterFailed = d.cl.runErr
	}

	// Reload and discovery change the stream set until the daemon stops.
	setCtx, stopSet := context.WithCancel(runCtx)
	defer stopSet()
	bg.Go(func() { d.set.discover(setCtx) })
	if d.reload != nil && d.loadConfig != nil {
		bg.Go(func() {
			for {
				select {
				case <-setCtx.Done():
					return
				case <-d.reload:
					d.log.Info("reloading the configuration")
					d.set.reload(setCtx, d.loadConfig, d.level)
				}
			}
		})
	}

	d.log.Info("ingest running", d.summary()...)
	select {
	case err := <-done:
		return d.finished(err)
	case <-d.leaseLost():
		cancel()
		<-done
		return fmt.Errorf("stopped at once: %w", d.lease.Err())
	case err := <-clusterFailed:
		cancel()
		<-done
		return fmt.Errorf("stopped at once: %w", err)
	case <-stop:
	}
	stopSet()
	timeout := d.cfg.ShutdownTimeout.D()
	start := time.Now()
	if d.cl != nil {
		// Hand every stream over first: each drains and saves, then the
		// next owner resumes it. What is left after shutdown_timeout stops
		// as below.
		leaveCtx, cancelLeave := context.WithTimeout(ctx, timeout)
		go func() {
			select {
			case <-force:
				cancelLeave()
			case <-leaveCtx.Done():
			}
		}()
		err := d.cl.leave(leaveCtx)
		cancelLeave()
		if err != nil {
			d.log.Warn("the handover did not finish within shutdown_timeout; the other replicas take the rest over after lease_ttl", "err", err)
		}
		timeout = max(timeout-time.Since(start), time.Second)
	}
	d.log.Info("stopping: draining what was read (signal again to stop at once)", "shutdown_timeout", timeout)
	shutCtx, cancelShut := context.WithCancel(ctx)
	defer cancelShut()
	go func() {
		t := time.NewTimer(timeout)
		defer t.Stop()
		select {
		case <-force:
			d.log.Warn("stopping at once: what is not acknowledged is read again on the next start")
			cancelShut()
		case <-t.C:
			d.log.Warn("shutdown_timeout reached before everything was written; stopping at once: what is not acknowledged is read again on the next start",
				"shutdown_timeout", timeout)
			cancelShut()
		case <-shutCtx.Done():
		}
	}()
	shutErr := d.pipe.Shutdown(shutCtx)
	cancel() // Run returns once Shutdown has; this makes sure
	runErr := <-done
	if shutErr != nil {
		return fmt.Errorf("stopped before draining everything (shutdown_timeout %s or a second signal): %w", timeout, shutErr)
	}
	for _, st := range d.pipe.Status() {
		d.log.Info("stream stopped", "stream", st.Name, "state", st.State.String(), "checkpoint", st.Checkpoint)
	}
	if runErr != nil {
		// A last checkpoint that could not be saved is said here too
		// (pipeline.CheckpointError): the exit status is 1.
		return fmt.Errorf("stopped, not cleanly: %w", runErr)
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
	d.closeBackends()
}

// closeBackends closes the checkpoint store, then the sink and what it needs,
// newest first.
func (d *daemon) closeBackends() {
	if d.store != nil {
		if err := d.store.Close(); err != nil {
			d.log.Warn("closing the checkpoint store", "err", err)
		}
		d.store = nil
	}
	if d.cl != nil {
		d.cl.close()
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
