package main

import (
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/restless-stream/ingest/checkpoint"
	"github.com/restless-stream/ingest/client"
	"github.com/restless-stream/ingest/cluster"
	"github.com/restless-stream/ingest/pipeline"
	kafkasink "github.com/restless-stream/ingest/sink/kafka"
	natssink "github.com/restless-stream/ingest/sink/nats"
)

var (
	bucketRE = regexp.MustCompile(`^[a-zA-Z0-9_-]+$`)
	hhmmRE   = regexp.MustCompile(`^([01][0-9]|2[0-3]):[0-5][0-9]$`)
)

// validator collects FieldErrors.
type validator struct{ errs []FieldError }

func (v *validator) add(path, format string, args ...any) {
	v.errs = append(v.errs, FieldError{Path: path, Msg: fmt.Sprintf(format, args...)})
}

func (v *validator) oneOf(path, val string, allowed ...string) {
	for _, a := range allowed {
		if val == a {
			return
		}
	}
	v.add(path, "%q is not one of %s", val, strings.Join(allowed, ", "))
}

// enum checks val with Valid of one of client's enums, so that the
// configuration takes what the client sends and nothing else; values are
// named in the error.
func enum[T interface {
	~string
	Valid() bool
}](v *validator, path, val string, values ...T) {
	if T(val).Valid() {
		return
	}
	names := make([]string, len(values))
	for i, x := range values {
		names[i] = string(x)
	}
	v.add(path, "%q is not one of %s", val, strings.Join(names, ", "))
}

func (v *validator) positive(path string, d Duration) {
	if d <= 0 {
		v.add(path, "%s must be a positive duration (e.g. 30s)", d)
	}
}

func (v *validator) httpURL(path, s string) {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		v.add(path, "%q is not an absolute http(s) URL", s)
	}
}

// normalize fills the derived defaults (destination, verify mode) and validates
// everything; it returns a *ConfigError listing every problem.
func (c *Config) normalize() error {
	v := &validator{}
	v.httpURL("restless.base_url", c.Restless.BaseURL)
	v.httpURL("restless.stream_base_url", c.Restless.StreamBaseURL)

	for i := range c.Streams {
		c.normalizeStream(v, i)
	}
	c.normalizeDiscover(v)
	if p := c.Pipeline; p.DeadLetter != "" {
		c.destination(v, "pipeline.dead_letter", p.DeadLetter)
	}
	// Names, verification, sizes, dedupe and batches are the pipeline's to
	// check, with its own rules.
	c.validatePipeline(v)

	c.normalizeSink(v)
	c.checkRunRules(v)

	cp := c.Checkpoint
	v.oneOf("checkpoint.type", cp.Type, "file", "nats_kv", "kafka", "memory")
	switch cp.Type {
	case "file":
		if cp.Dir == "" {
			v.add("checkpoint.dir", "required when checkpoint.type is file")
		}
	case "nats_kv":
		if c.Sink.Type != "nats" || !c.Sink.NATS.JetStream {
			v.add("checkpoint.type", "nats_kv needs sink.type nats with sink.nats.jetstream true")
		}
		if !bucketRE.MatchString(cp.NATSKVBucket) {
			v.add("checkpoint.nats_kv_bucket", "%q is not a bucket name ([A-Za-z0-9_-]+)", cp.NATSKVBucket)
		}
	case "kafka":
		if c.Sink.Type != "kafka" {
			v.add("checkpoint.type", "kafka needs sink.type kafka (the checkpoints live in the broker the events go to)")
		}
		if err := kafkasink.ValidTopic(cp.KafkaTopic); err != nil {
			v.add("checkpoint.kafka_topic", "%v", err)
		}
	}
	c.normalizeCluster(v)

	if c.HTTP.Addr != "" {
		if _, port, err := net.SplitHostPort(c.HTTP.Addr); err != nil || port == "" {
			v.add("http.addr", "%q is not host:port (or \"\" to disable)", c.HTTP.Addr)
		}
	}
	v.positive("shutdown_timeout", c.ShutdownTimeout)
	v.oneOf("log.level", c.Log.Level, "debug", "info", "warn", "error")
	v.oneOf("log.format", c.Log.Format, "text", "json")
	if c.Log.ProgressInterval < 0 {
		v.add("log.progress_interval", "%s must not be negative (0 = no progress lines)", c.Log.ProgressInterval)
	}

	if len(v.errs) > 0 {
		return &ConfigError{Errs: unique(v.errs)}
	}
	return nil
}

func (c *Config) normalizeStream(v *validator, i int) {
	s := &c.Streams[i]
	at := func(k string) string { return fmt.Sprintf("streams[%d].%s", i, k) }
	v.oneOf(at("transport"), s.Transport, "sse", "websocket")

	var targets []string
	if s.StreamID != "" {
		targets = append(targets, "stream_id")
	}
	if s.SessionID != "" {
		targets = append(targets, "session_id")
	}
	if s.URL != "" {
		targets = append(targets, "url")
	}
	if s.Direct != nil {
		targets = append(targets, "direct")
	}
	switch len(targets) {
	case 0:
		v.add(fmt.Sprintf("streams[%d]", i), "no target: set exactly one of stream_id, session_id, url, direct")
	case 1:
	default:
		v.add(fmt.Sprintf("streams[%d]", i), "%s are set: set exactly one of stream_id, session_id, url, direct", strings.Join(targets, " and "))
	}
	if s.URL != "" {
		u, err := url.Parse(s.URL)
		switch {
		case err != nil || u.Host == "":
			v.add(at("url"), "%q is not an absolute URL", s.URL)
		case u.Scheme == "ws" || u.Scheme == "wss":
			if s.Transport != "websocket" {
				v.add(at("url"), "a %s:// URL needs transport websocket", u.Scheme)
			}
		case u.Scheme != "http" && u.Scheme != "https":
			v.add(at("url"), "scheme %q is not http, https, ws or wss", u.Scheme)
		}
	}
	if d := s.Direct; d != nil {
		v.httpURL(at("direct.url"), d.URL)
		enum(v, at("direct.method"), d.Method, client.MethodGet, client.MethodPost, client.MethodPut,
			client.MethodPatch, client.MethodDelete, client.MethodOptions)
		enum(v, at("direct.payload_mode"), d.PayloadMode, client.PayloadFullData, client.PayloadJSONPatch)
		if d.PollingInterval < 0 {
			v.add(at("direct.polling_interval"), "%g must not be negative (seconds; 0 = server default)", d.PollingInterval)
		}
		for j, ps := range d.PollingStrategies {
			pat := func(k string) string { return fmt.Sprintf("streams[%d].direct.polling_strategies[%d].%s", i, j, k) }
			if !hhmmRE.MatchString(ps.Start) {
				v.add(pat("start"), "%q is not a time of day (HH:MM)", ps.Start)
			}
			if !hhmmRE.MatchString(ps.End) {
				v.add(pat("end"), "%q is not a time of day (HH:MM)", ps.End)
			}
			for k, day := range ps.Days {
				v.oneOf(fmt.Sprintf("streams[%d].direct.polling_strategies[%d].days[%d]", i, j, k), day, "MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN")
			}
			if ps.PollingInterval < 0 {
				v.add(pat("polling_interval"), "%g must not be negative", ps.PollingInterval)
			}
		}
	}

	if s.Destination == "" && s.Name != "" {
		s.Destination = destinationFor(s.Name)
	}
	if s.Destination != "" {
		c.destination(v, at("destination"), s.Destination)
	}
	if m := s.Materialize.Destination; m != "" {
		c.destination(v, at("materialize.destination"), m)
		switch m {
		case s.Destination:
			v.add(at("materialize.destination"), "%q is the stream's own destination: the documents need one of their own", m)
		case c.Pipeline.DeadLetter:
			v.add(at("materialize.destination"), "%q is pipeline.dead_letter: the documents need a destination of their own", m)
		}
		if s.MaxEventBytes > checkpoint.MaxDocumentBytes {
			v.add(at("max_event_bytes"), "%d is more than %d, the largest document a checkpoint holds (with materialize.destination set)", s.MaxEventBytes, checkpoint.MaxDocumentBytes)
		}
	}

	for j, sec := range s.Verify.Secrets {
		if sec == "" {
			v.add(fmt.Sprintf("streams[%d].verify.secrets[%d]", i, j), "empty secret")
		}
	}
	if s.Verify.Mode == "" {
		s.Verify.Mode = "off"
		if len(s.Verify.Secrets) > 0 {
			s.Verify.Mode = "require"
		}
	}

	v.positive(at("reconnect.initial"), s.Reconnect.Initial)
	if s.Reconnect.Max < s.Reconnect.Initial {
		v.add(at("reconnect.max"), "%s is less than reconnect.initial (%s)", s.Reconnect.Max, s.Reconnect.Initial)
	}
	if s.Reconnect.MaxAttempts < 0 {
		v.add(at("reconnect.max_attempts"), "%d must not be negative (0 = forever)", s.Reconnect.MaxAttempts)
	}
	v.positive(at("idle_timeout"), s.IdleTimeout)
	if s.MaxSilence < 0 {
		v.add(at("max_silence"), "%s must not be negative (0s = off)", s.MaxSilence)
	}
	if s.Reconnect.Initial.D() > 0 && s.Reconnect.Initial.D() < client.MinReconnectDelay {
		v.add(at("reconnect.initial"), "%s is below the floor of %s", s.Reconnect.Initial, client.MinReconnectDelay)
	}
}

// destination checks a topic or subject name with the configured sink's
// rule.
func (c *Config) destination(v *validator, path, d string) {
	var err error
	switch c.Sink.Type {
	case "kafka":
		err = kafkasink.ValidTopic(d)
	case "nats":
		err = natssink.ValidSubject(d)
	}
	if err != nil {
		v.add(path, "%v", err)
	}
}

// normalizeSink checks the section of sink.type with the rules of its sink
// (each Config's Validate), reported at the YAML keys.
func (c *Config) normalizeSink(v *validator) {
	s := &c.Sink
	v.oneOf("sink.type", s.Type, "nats", "kafka", "file", "stdout")
	switch s.Type {
	case "nats":
		// Destinations are checked one by one, at their own keys.
		nc := natsSinkConfig(s.NATS, nil)
		if s.NATS.Embedded {
			nc.URLs = nil // the embedded server's URL replaces sink.nats.url
			v.addLib("sink.nats", natsServerKeys, embeddedNATSConfig(s.NATS).Validate())
		}
		v.addLib("sink.nats", natsKeys, nc.Validate())
	case "kafka":
		kc, errs := kafkaSinkConfig(s.Kafka)
		v.errs = append(v.errs, errs...)
		v.addLib("sink.kafka", kafkaKeys, kc.Validate())
		v.oneOf("sink.kafka.key", s.Kafka.Key, string(pipeline.KeyStream), string(pipeline.KeyEventID), string(pipeline.KeyNone))
	case "file":
		if s.File.Path == "" {
			v.add("sink.file.path", "required when sink.type is file")
		}
	}
}

// normalizeDiscover checks the discover section and fills its verify mode.
func (c *Config) normalizeDiscover(v *validator) {
	d := &c.Discover
	v.positive("discover.interval", d.Interval)
	if d.Status != "any" {
		enum(v, "discover.status", d.Status, client.StatusActive, client.StatusInactive, "any")
	}
	v.oneOf("discover.transport", d.Transport, "sse", "websocket")
	if d.Destination != "" {
		c.destination(v, "discover.destination", d.Destination)
	}
	for j, sec := range d.Verify.Secrets {
		if sec == "" {
			v.add(fmt.Sprintf("discover.verify.secrets[%d]", j), "empty secret")
		}
	}
	if d.Verify.Mode == "" {
		d.Verify.Mode = "off"
		if len(d.Verify.Secrets) > 0 {
			d.Verify.Mode = "require"
		}
	}
	v.oneOf("discover.verify.mode", d.Verify.Mode, "require", "optional", "off")
	if d.Verify.Mode != "off" && len(d.Verify.Secrets) == 0 {
		v.add("discover.verify.mode", "%q needs discover.verify.secrets", d.Verify.Mode)
	}
}

// Kafka brokers refuse a group session timeout below their
// group.min.session.timeout.ms, 6s by default: a Kafka replica set's
// cluster.lease_ttl (its session timeout) may not be shorter.
const minKafkaLeaseTTL = 6 * time.Second

// normalizeCluster checks the cluster section and what cluster mode needs
// of the sink and the checkpoint store.
func (c *Config) normalizeCluster(v *validator) {
	cl := c.Cluster
	if err := cluster.ValidateName(cl.Name); err != nil {
		v.add("cluster.name", "%q is not a cluster name: 1 to 64 characters from [a-z0-9_-]", cl.Name)
	}
	if cl.Member != "" {
		if err := cluster.ValidateMember(cl.Member); err != nil {
			v.add("cluster.member", "%s", strings.TrimPrefix(err.Error(), "cluster: "))
		}
	}
	if ttl := cl.LeaseTTL.D(); ttl < minLeaseTTL || ttl > maxLeaseTTL {
		v.add("cluster.lease_ttl", "%s is outside [%s, %s]", cl.LeaseTTL, Duration(minLeaseTTL), Duration(maxLeaseTTL))
	} else if cl.Enabled && c.Sink.Type == "kafka" && ttl < minKafkaLeaseTTL {
		v.add("cluster.lease_ttl", "%s is below %s, the smallest group session timeout Kafka brokers accept by default (group.min.session.timeout.ms); the lease TTL is the group's session timeout", cl.LeaseTTL, Duration(minKafkaLeaseTTL))
	}
	if !cl.Enabled {
		return
	}
	switch c.Sink.Type {
	case "nats":
		if !c.Sink.NATS.JetStream {
			v.add("cluster.enabled", "cluster mode needs sink.nats.jetstream true: the replicas coordinate through a JetStream key-value bucket")
		} else if c.Checkpoint.Type != "nats_kv" {
			v.add("checkpoint.type", "%q: cluster mode with the NATS sink needs checkpoint.type nats_kv, a store every replica reads", c.Checkpoint.Type)
		}
	case "kafka":
		if c.Checkpoint.Type != "kafka" {
			v.add("checkpoint.type", "%q: cluster mode with the Kafka sink needs checkpoint.type kafka, a store every replica reads", c.Checkpoint.Type)
		}
	default:
		v.add("cluster.enabled", "cluster mode needs sink.type nats (JetStream) or kafka, the broker the replicas coordinate through; not %s", c.Sink.Type)
	}
}

// The bounds of cluster.lease_ttl, the cluster package's.
const (
	minLeaseTTL = time.Second
	maxLeaseTTL = 10 * time.Minute
)
