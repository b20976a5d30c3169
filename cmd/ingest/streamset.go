package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/restless-stream/ingest"
	"github.com/restless-stream/ingest/client"
	"github.com/restless-stream/ingest/pipeline"
)

// stopTimeout bounds the drain of one stream that a reload or a discovery
// removes or restarts; past it the stream stops at once (what was not
// acknowledged is read again from its checkpoint).
const stopTimeout = 30 * time.Second

// streamSet keeps the pipeline's lanes equal to the desired stream set:
// the configured streams plus the discovered ones, less those this
// process does not own. Reload and discovery change the desired set and
// call apply, which starts, drains or restarts lanes by the difference.
type streamSet struct {
	d   *daemon
	log *slog.Logger

	// owns says which of the desired streams this process runs: every one
	// in a single process. Cluster mode replaces it with the coordinator's
	// assignment and calls apply when the assignment changes.
	owns func(name string) bool
	// onDesired, when set, learns the desired stream names at every apply:
	// cluster mode gives them to the coordinator, so that reload and
	// discovery change what the replicas share.
	onDesired func(names []string)

	mu         sync.Mutex // serializes apply, guards what follows
	cfg        *Config    // the configuration in effect (reload changes streams, discover, log.level)
	discovered []StreamConfig
	running    map[string]StreamConfig // each lane the set runs, by its effective config
	kick       chan struct{}           // a reload changed discover: list now

	reloads *prometheus.CounterVec
}

func newStreamSet(d *daemon) *streamSet {
	s := &streamSet{
		d: d, log: d.log, cfg: d.cfg,
		owns:    func(string) bool { return true },
		running: map[string]StreamConfig{},
		kick:    make(chan struct{}, 1),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: metricsNamespace, Name: "config_reloads_total",
			Help: "Configuration reloads, by result (ok: applied; invalid: the previous configuration kept).",
		}, []string{"result"}),
	}
	s.reloads.WithLabelValues("ok")
	s.reloads.WithLabelValues("invalid")
	d.metrics.Registry.MustRegister(s.reloads)
	if d.cl != nil {
		s.owns = d.cl.owns
		s.onDesired = func(names []string) {
			if err := d.cl.setStreams(names); err != nil {
				s.log.Error("cluster: the stream set was not shared", "err", err)
			}
		}
		return s
	}
	for _, sc := range d.cfg.Streams {
		s.running[sc.Name] = sc
	}
	return s
}

// setOwner replaces the ownership filter and applies the set again: the
// seam for cluster mode, whose coordinator divides the desired streams
// (every replica computes the same desired set, from the same file and the
// same account) and calls this when this replica's share changes. A stream
// no longer owned is drained here before its new owner resumes it from the
// checkpoint; a coordinator that learns it was fenced stops such a stream
// with pipeline.Abort instead, before calling setOwner.
func (s *streamSet) setOwner(ctx context.Context, owns func(name string) bool) {
	s.mu.Lock()
	s.owns = owns
	s.mu.Unlock()
	s.apply(ctx)
}

// desired is the stream set the configuration and discovery ask for, each
// with the path it is configured at. A configured stream wins over a
// discovered one with the same stream_id (or name).
func (s *streamSet) desired() (want []StreamConfig, paths map[string]string) {
	paths = map[string]string{}
	ids := map[string]bool{}
	for i, sc := range s.cfg.Streams {
		want = append(want, sc)
		paths[sc.Name] = fmt.Sprintf("streams[%d]", i)
		if sc.StreamID != "" {
			ids[sc.StreamID] = true
		}
	}
	for _, sc := range s.discovered {
		if ids[sc.StreamID] || paths[sc.Name] != "" {
			continue
		}
		want = append(want, sc)
		paths[sc.Name] = "discover"
	}
	return want, paths
}

// apply brings the lanes to the desired set: streams removed drain, save
// their checkpoint and stop; streams whose effective configuration changed
// drain and start again with the new one; new streams start; unchanged
// streams are not touched and keep their connection.
func (s *streamSet) apply(ctx context.Context) {
	s.mu.Lock()
	defer s.mu.Unlock()
	want, paths := s.desired()
	if s.onDesired != nil {
		names := make([]string, len(want))
		for i, sc := range want {
			names[i] = sc.Name
		}
		s.onDesired(names)
	}
	// A lane that left the pipeline without this set stopping it (cluster
	// mode aborts a stream it lost) is not running any more.
	live := map[string]bool{}
	for _, st := range s.d.pipe.Status() {
		live[st.Name] = true
	}
	for name := range s.running {
		if !live[name] {
			delete(s.running, name)
			s.d.ready.Remove(name)
		}
	}
	wanted := map[string]StreamConfig{}
	for _, sc := range want {
		if s.owns(sc.Name) {
			wanted[sc.Name] = sc
		}
	}
	// Run must not end while a stream is being replaced.
	release := s.d.pipe.Hold()
	defer release()

	for name := range s.running {
		if _, ok := wanted[name]; !ok {
			s.stop(ctx, name, "removed")
			delete(s.running, name)
			s.d.ready.Remove(name)
		}
	}
	for _, sc := range want {
		if _, ok := wanted[sc.Name]; !ok {
			continue
		}
		old, ok := s.running[sc.Name]
		if ok && reflect.DeepEqual(old, sc) {
			continue
		}
		if ok {
			s.stop(ctx, sc.Name, "changed")
			delete(s.running, sc.Name)
		}
		if err := s.start(sc, paths[sc.Name]); err != nil {
			if !errors.Is(err, pipeline.ErrStopped) {
				s.log.Error("stream not started", "stream", sc.Name, "err", err)
			}
			continue
		}
		s.running[sc.Name] = sc
		verb := "stream added"
		if ok {
			verb = "stream restarted with its new configuration"
		}
		s.log.Info(verb, "stream", sc.Name, "destination", sc.Destination, "from", paths[sc.Name])
		if why := s.newDestination(sc.Destination); why != "" {
			s.log.Warn("the stream's destination is new to the sink: "+why, "stream", sc.Name, "destination", sc.Destination)
		}
	}
}

// newDestination says why a destination that was not known when the sink
// opened may not take records until a restart ("" when it will): the
// JetStream stream's subjects and the created Kafka topics are set when the
// sink opens.
func (s *streamSet) newDestination(dest string) string {
	if slices.Contains(s.d.destinations(), dest) {
		return ""
	}
	sc := s.cfg.Sink
	switch {
	case sc.Type == "nats" && sc.NATS.JetStream:
		if base, ok := strings.CutSuffix(sc.NATS.BaseSubject, ">"); ok && strings.HasPrefix(dest, base) {
			return ""
		}
		return "the JetStream stream " + sc.NATS.Stream + " takes its subjects when the daemon starts; restart it, or add the subject to the stream"
	case sc.Type == "kafka" && sc.Kafka.CreateTopics:
		return "sink.kafka.create_topics creates topics when the daemon starts; the topic must exist, or restart the daemon"
	}
	return ""
}

// stop drains the named stream's lane and removes it from the pipeline.
func (s *streamSet) stop(ctx context.Context, name, why string) {
	// A drain under way finishes even when the daemon begins to stop: the
	// daemon's own stop drains too, and its second signal (which ends the
	// pipeline's writing) ends this one at once.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), stopTimeout)
	defer cancel()
	var st pipeline.StreamStatus
	err := s.d.pipe.Stop(ctx, name, pipeline.Drain)
	for _, x := range s.d.pipe.Status() {
		if x.Name == name {
			st = x
		}
	}
	switch {
	case errors.Is(err, pipeline.ErrUnknownStream):
	case err != nil:
		s.log.Warn("stream stopped before draining everything", "stream", name, "reason", why, "err", err)
	default:
		s.log.Info("stream drained and stopped", "stream", name, "reason", why, "checkpoint", st.Checkpoint)
	}
}

// start adds the lane of sc, configured at path.
func (s *streamSet) start(sc StreamConfig, path string) error {
	c := *s.cfg
	c.Streams = []StreamConfig{sc}
	pcfg, errs := c.pipelineConfig()
	if len(errs) > 0 {
		return &ConfigError{Errs: errs}
	}
	ps := pcfg.Streams[0]
	open, err := s.d.sourceFactory(sc, path)
	if err != nil {
		return err
	}
	if path == "discover" {
		open = endOnNotFound(open)
	}
	ps.Open = open
	s.d.metrics.Stream(sc.Name)
	s.d.ready.Add(sc.Name)
	return s.d.pipe.Start(ps)
}

// endOnNotFound turns a 404 from a discovered stream's runtime into the end
// of the stream: the service deleted it, and the next list removes it.
func endOnNotFound(open func(context.Context, string) (pipeline.Source, error)) func(context.Context, string) (pipeline.Source, error) {
	return func(ctx context.Context, cursor string) (pipeline.Source, error) {
		src, err := open(ctx, cursor)
		if errors.Is(err, client.ErrNotFound) {
			return nil, ingest.ErrStreamEnded
		}
		if err != nil {
			return nil, err
		}
		return notFoundEnds{src}, nil
	}
}

type notFoundEnds struct{ pipeline.Source }

func (n notFoundEnds) Next(ctx context.Context) (ingest.Frame, error) {
	f, err := n.Source.Next(ctx)
	if err != nil && errors.Is(err, client.ErrNotFound) {
		return f, ingest.ErrStreamEnded
	}
	return f, err
}

// discoveredName is the name of a discovered stream: "d-" and its id,
// lower-cased, every character outside [a-z0-9_-] replaced by "-".
func discoveredName(id string) string {
	var b strings.Builder
	b.WriteString("d-")
	for _, r := range strings.ToLower(id) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') || r == '_' || r == '-' {
			b.WriteRune(r)
		} else {
			b.WriteByte('-')
		}
	}
	return b.String()
}

// discoveredStream is the stream configuration of a discovered stream:
// the discover section's settings and every other key at its default.
func discoveredStream(st client.Stream, d DiscoverConfig) StreamConfig {
	name := discoveredName(st.ID)
	dest := d.Destination
	if dest == "" {
		dest = destinationFor(name)
	}
	return StreamConfig{
		Name:          name,
		Transport:     d.Transport,
		StreamID:      st.ID,
		Destination:   dest,
		Verify:        VerifyConfig{Secrets: append([]ingest.Secret(nil), d.Verify.Secrets...), Mode: d.Verify.Mode},
		Reconnect:     ReconnectConfig{Initial: Duration(time.Second), Max: Duration(30 * time.Second)},
		IdleTimeout:   Duration(60 * time.Second),
		MaxEventBytes: client.DefaultMaxEventBytes,
	}
}

// discover reads the account's streams every discover.interval while
// discovery is enabled, until ctx ends.
func (s *streamSet) discover(ctx context.Context) {
	var lastErr string
	for {
		s.mu.Lock()
		dc := s.cfg.Discover
		s.mu.Unlock()
		if dc.Enabled {
			found, err := s.list(ctx, dc)
			switch {
			case ctx.Err() != nil:
				return
			case err != nil:
				// Kept: the current set. Logged once per distinct failure.
				if k := errorKind(err); k != lastErr {
					lastErr = k
					s.log.Warn("discovery: reading the account's streams failed; keeping the current set, retrying at the next interval", "err", err)
				}
			default:
				if lastErr != "" {
					s.log.Info("discovery: reading the account's streams works again")
					lastErr = ""
				}
				s.setDiscovered(ctx, found)
			}
		} else {
			s.setDiscovered(ctx, nil)
		}
		t := time.NewTimer(dc.Interval.D())
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		case <-s.kick:
			t.Stop()
		}
	}
}

// setDiscovered makes found the discovered set and applies it if it
// changed.
func (s *streamSet) setDiscovered(ctx context.Context, found []StreamConfig) {
	s.mu.Lock()
	same := reflect.DeepEqual(s.discovered, found) || (len(s.discovered) == 0 && len(found) == 0)
	s.discovered = found
	s.mu.Unlock()
	if !same {
		s.apply(ctx)
	}
}

// list reads every page of the account's streams and keeps those that
// match the discover section.
func (s *streamSet) list(ctx context.Context, dc DiscoverConfig) ([]StreamConfig, error) {
	ctx, cancel := context.WithTimeout(ctx, max(dc.Interval.D(), 10*time.Second))
	defer cancel()
	var found []StreamConfig
	for st, err := range s.d.api.Streams.All(ctx, 100) {
		if err != nil {
			return nil, err
		}
		if st.ID == "" || (dc.Status != "any" && string(st.Status) != dc.Status) || !strings.HasPrefix(st.Name, dc.NamePrefix) {
			continue
		}
		found = append(found, discoveredStream(st, dc))
	}
	return found, nil
}

// errorKind tells failures apart for logging once per distinct failure:
// an HTTP status, a timeout, or the error's type.
func errorKind(err error) string {
	var ae *client.APIError
	switch {
	case errors.As(err, &ae):
		return "HTTP " + strconv.Itoa(ae.StatusCode)
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	}
	return fmt.Sprintf("%T", err)
}

// reload loads the configuration again and applies what may change while
// running: streams, discover and log.level. An invalid file changes
// nothing; a change anywhere else is logged as needing a restart.
func (s *streamSet) reload(ctx context.Context, load func() (*Config, error), level *slog.LevelVar) {
	cfg, err := load()
	if err != nil {
		s.reloads.WithLabelValues("invalid").Inc()
		var ce *ConfigError
		if errors.As(err, &ce) {
			for _, fe := range ce.Errs {
				s.log.Error("reload: invalid configuration", "key", fe.Path, "problem", fe.Msg)
			}
		} else {
			s.log.Error("reload: invalid configuration", "err", err)
		}
		s.log.Error("reload: the configuration in effect is kept")
		return
	}
	s.mu.Lock()
	old := s.cfg
	next := *old
	next.Streams, next.Discover, next.Log.Level = cfg.Streams, cfg.Discover, cfg.Log.Level
	for _, sec := range restartSections(old, cfg) {
		s.log.Warn("reload: this change needs a restart and is ignored until then", "key", sec)
	}
	if next.Log.Level != old.Log.Level && level != nil {
		level.Set(parseLevel(next.Log.Level))
		s.log.Info("reload: log level changed", "level", next.Log.Level)
	}
	discoverChanged := !reflect.DeepEqual(next.Discover, old.Discover)
	s.cfg = &next
	s.mu.Unlock()
	s.reloads.WithLabelValues("ok").Inc()
	s.log.Info("reload: configuration applied")
	if discoverChanged {
		select {
		case s.kick <- struct{}{}:
		default:
		}
	}
	s.apply(ctx)
}

// restartSections lists the keys whose change a reload cannot apply: every
// top-level section but streams and discover, and log.format.
func restartSections(old, cfg *Config) []string {
	var out []string
	ov, nv := reflect.ValueOf(*old), reflect.ValueOf(*cfg)
	t := ov.Type()
	for i := range t.NumField() {
		if !t.Field(i).IsExported() {
			continue // derived at load (the ignored variables, the base directory)
		}
		key, _, _ := strings.Cut(t.Field(i).Tag.Get("koanf"), ",")
		switch key {
		case "streams", "discover", "log":
			continue
		}
		if !reflect.DeepEqual(ov.Field(i).Interface(), nv.Field(i).Interface()) {
			out = append(out, key)
		}
	}
	if old.Log.Format != cfg.Log.Format {
		out = append(out, "log.format")
	}
	return out
}
