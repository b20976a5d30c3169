package main

import (
	"strconv"
	"time"

	"github.com/restless-stream/ingest"
	"github.com/restless-stream/ingest/client"
)

// Config is the daemon's configuration, exactly the YAML of INGEST.md. The koanf
// tags are the YAML keys; the yaml tags print the effective configuration.
type Config struct {
	Restless   RestlessConfig   `koanf:"restless" yaml:"restless"`
	Streams    []StreamConfig   `koanf:"streams" yaml:"streams"`
	Discover   DiscoverConfig   `koanf:"discover" yaml:"discover"`
	Pipeline   PipelineConfig   `koanf:"pipeline" yaml:"pipeline"`
	Sink       SinkConfig       `koanf:"sink" yaml:"sink"`
	Checkpoint CheckpointConfig `koanf:"checkpoint" yaml:"checkpoint"`
	Cluster    ClusterConfig    `koanf:"cluster" yaml:"cluster"`
	HTTP       HTTPConfig       `koanf:"http" yaml:"http"`
	Log        LogConfig        `koanf:"log" yaml:"log"`
	// ShutdownTimeout bounds the drain after SIGINT/SIGTERM; past it the daemon
	// stops at once and exits 1. Default 30s.
	ShutdownTimeout Duration `koanf:"shutdown_timeout" yaml:"shutdown_timeout"`

	// ignoredEnv are the INGEST_ variables that name no key (see IgnoredEnv).
	ignoredEnv []string
	// baseDir is the directory relative paths were resolved against ("" = none).
	baseDir string
}

// RestlessConfig is how the hosted service (or the emulator) is reached.
type RestlessConfig struct {
	// APIKey authenticates REST calls (x-api-key) and runtime streams (Bearer).
	// Falls back to RESTLESS_API_KEY when unset.
	APIKey ingest.Secret `koanf:"api_key" yaml:"api_key"`
	// BaseURL of the REST management API. Default https://api.restlessapi.stream.
	BaseURL string `koanf:"base_url" yaml:"base_url"`
	// StreamBaseURL of the runtime streams. Default https://stream.restlessapi.stream.
	StreamBaseURL string `koanf:"stream_base_url" yaml:"stream_base_url"`
}

// StreamConfig is one upstream subscription.
type StreamConfig struct {
	// Name is required, unique and matches [a-z0-9_-]+.
	Name string `koanf:"name" yaml:"name"`
	// Transport is sse (default) or websocket.
	Transport string `koanf:"transport" yaml:"transport"`
	// Exactly one target: StreamID, SessionID, URL or Direct.
	StreamID  string        `koanf:"stream_id" yaml:"stream_id,omitempty"`
	SessionID string        `koanf:"session_id" yaml:"session_id,omitempty"`
	URL       string        `koanf:"url" yaml:"url,omitempty"`
	Direct    *DirectConfig `koanf:"direct" yaml:"direct,omitempty"`
	// Since is the start position when no checkpoint exists.
	Since string `koanf:"since" yaml:"since"`
	// Destination is the topic or subject. Default "restless.<name>".
	Destination string          `koanf:"destination" yaml:"destination"`
	Verify      VerifyConfig    `koanf:"verify" yaml:"verify"`
	Reconnect   ReconnectConfig `koanf:"reconnect" yaml:"reconnect"`
	// IdleTimeout: no byte for this long means reconnect. Default 60s.
	IdleTimeout Duration `koanf:"idle_timeout" yaml:"idle_timeout"`
	// MaxSilence: no event (heartbeats do not count) for this long means
	// reconnect. Default 0, off.
	MaxSilence Duration `koanf:"max_silence" yaml:"max_silence"`
	// MaxEventBytes bounds one event. Default 4194304.
	MaxEventBytes int `koanf:"max_event_bytes" yaml:"max_event_bytes"`
	// Materialize publishes the stream's whole current document (a
	// JSON_PATCH stream's patches applied) after each event.
	Materialize MaterializeConfig `koanf:"materialize" yaml:"materialize"`
}

// MaterializeConfig is streams[].materialize.
type MaterializeConfig struct {
	// Destination of the documents; "" (the default) is off.
	Destination string `koanf:"destination" yaml:"destination"`
}

// DirectConfig streams any REST endpoint without a managed stream.
type DirectConfig struct {
	URL               string                  `koanf:"url" yaml:"url"`
	Method            string                  `koanf:"method" yaml:"method"`
	Headers           map[string]string       `koanf:"headers" yaml:"headers"`
	Body              any                     `koanf:"body" yaml:"body"`
	JQFilter          string                  `koanf:"jq_filter" yaml:"jq_filter"`
	PayloadMode       string                  `koanf:"payload_mode" yaml:"payload_mode"`
	PollingInterval   float64                 `koanf:"polling_interval" yaml:"polling_interval"`
	PollingStrategies []PollingStrategyConfig `koanf:"polling_strategies" yaml:"polling_strategies"`
	// DedupeKey set: open (or reuse) a direct session and follow its URL.
	DedupeKey string `koanf:"dedupe_key" yaml:"dedupe_key"`
}

// PollingStrategyConfig is a time window with its own polling interval.
type PollingStrategyConfig struct {
	Start           string   `koanf:"start" yaml:"start"`
	End             string   `koanf:"end" yaml:"end"`
	Days            []string `koanf:"days" yaml:"days"`
	Timezone        string   `koanf:"timezone" yaml:"timezone"`
	PollingInterval float64  `koanf:"polling_interval" yaml:"polling_interval"`
}

// VerifyConfig controls HMAC verification of a stream's events.
type VerifyConfig struct {
	// Secrets are one or more HMAC secrets (several during a rotation).
	Secrets []ingest.Secret `koanf:"secrets" yaml:"secrets"`
	// Mode is require, optional or off; default require when secrets are set, else off.
	Mode string `koanf:"mode" yaml:"mode"`
}

// ReconnectConfig is the jittered exponential reconnect policy.
type ReconnectConfig struct {
	Initial Duration `koanf:"initial" yaml:"initial"` // default 1s
	Max     Duration `koanf:"max" yaml:"max"`         // default 30s
	// MaxAttempts bounds consecutive failed attempts; 0 = forever.
	MaxAttempts int `koanf:"max_attempts" yaml:"max_attempts"`
}

// DiscoverConfig follows the account's managed streams: every stream that
// matches is ingested as if configured, under the name "d-<stream id>".
type DiscoverConfig struct {
	Enabled bool `koanf:"enabled" yaml:"enabled"`
	// Interval is how often the stream list is read (every page). Default 60s.
	Interval Duration `koanf:"interval" yaml:"interval"`
	// Status is ACTIVE (default), INACTIVE or any.
	Status string `koanf:"status" yaml:"status"`
	// NamePrefix keeps only streams whose Restless name starts with it.
	NamePrefix string `koanf:"name_prefix" yaml:"name_prefix"`
	// Transport is sse (default) or websocket.
	Transport string `koanf:"transport" yaml:"transport"`
	// Destination of every discovered stream; default "restless.<name>".
	Destination string       `koanf:"destination" yaml:"destination"`
	Verify      VerifyConfig `koanf:"verify" yaml:"verify"`
}

// PipelineConfig tunes the per-stream lanes.
type PipelineConfig struct {
	Dedupe DedupeConfig `koanf:"dedupe" yaml:"dedupe"`
	Batch  BatchConfig  `koanf:"batch" yaml:"batch"`
	// DeadLetter is the destination of rejected events; "" = count and drop.
	DeadLetter string `koanf:"dead_letter" yaml:"dead_letter"`
}

// DedupeConfig bounds the per-stream window of published event ids.
type DedupeConfig struct {
	Size int      `koanf:"size" yaml:"size"` // default 100000
	TTL  Duration `koanf:"ttl" yaml:"ttl"`   // default 24h
}

// BatchConfig bounds a batch handed to the sink.
type BatchConfig struct {
	MaxEvents int      `koanf:"max_events" yaml:"max_events"` // default 512
	MaxWait   Duration `koanf:"max_wait" yaml:"max_wait"`     // default 5ms
}

// SinkConfig selects and configures the broker.
type SinkConfig struct {
	// Type is nats (default), kafka, file or stdout.
	Type  string          `koanf:"type" yaml:"type"`
	NATS  NATSSinkConfig  `koanf:"nats" yaml:"nats"`
	Kafka KafkaSinkConfig `koanf:"kafka" yaml:"kafka"`
	File  FileSinkConfig  `koanf:"file" yaml:"file"`
}

// NATSSinkConfig configures the NATS sink.
type NATSSinkConfig struct {
	URL       string `koanf:"url" yaml:"url"`             // default nats://127.0.0.1:4222
	JetStream bool   `koanf:"jetstream" yaml:"jetstream"` // default true
	Stream    string `koanf:"stream" yaml:"stream"`       // default RESTLESS
	// BaseSubject is the wildcard subject the stream always has besides the
	// destinations. Default "restless.>".
	BaseSubject     string        `koanf:"base_subject" yaml:"base_subject"`
	DuplicateWindow Duration      `koanf:"duplicate_window" yaml:"duplicate_window"` // default 10m
	Replicas        int           `koanf:"replicas" yaml:"replicas"`                 // default 1
	Embedded        bool          `koanf:"embedded" yaml:"embedded"`
	EmbeddedDir     string        `koanf:"embedded_dir" yaml:"embedded_dir"`   // default ./data/nats
	EmbeddedPort    int           `koanf:"embedded_port" yaml:"embedded_port"` // default 4222
	Token           ingest.Secret `koanf:"token" yaml:"token"`
	CredentialsFile string        `koanf:"credentials_file" yaml:"credentials_file"`
	TLS             TLSConfig     `koanf:"tls" yaml:"tls"`
}

// KafkaSinkConfig configures the Kafka sink.
type KafkaSinkConfig struct {
	Brokers           []string       `koanf:"brokers" yaml:"brokers"`             // default [127.0.0.1:9092]
	RequiredAcks      string         `koanf:"required_acks" yaml:"required_acks"` // all | one | none; default all
	Compression       string         `koanf:"compression" yaml:"compression"`     // none | gzip | snappy | lz4 | zstd; default snappy
	Key               string         `koanf:"key" yaml:"key"`                     // stream | event_id | none; default stream
	CreateTopics      bool           `koanf:"create_topics" yaml:"create_topics"`
	Partitions        int            `koanf:"partitions" yaml:"partitions"`                 // default 3
	ReplicationFactor int            `koanf:"replication_factor" yaml:"replication_factor"` // default 1
	BatchSize         int            `koanf:"batch_size" yaml:"batch_size"`                 // default 1000
	BatchTimeout      Duration       `koanf:"batch_timeout" yaml:"batch_timeout"`           // default 5ms; accepted, unused: the sink sends each write at once
	SASL              SASLConfig     `koanf:"sasl" yaml:"sasl"`
	TLS               KafkaTLSConfig `koanf:"tls" yaml:"tls"`
}

// KafkaTLSConfig is TLSConfig plus Enabled, for brokers with publicly signed
// certificates (TLS with the system roots and no file).
type KafkaTLSConfig struct {
	// Enabled turns TLS on without any file; any file set turns it on too.
	Enabled  bool   `koanf:"enabled" yaml:"enabled"`
	CAFile   string `koanf:"ca_file" yaml:"ca_file"`
	CertFile string `koanf:"cert_file" yaml:"cert_file"`
	KeyFile  string `koanf:"key_file" yaml:"key_file"`
}

// SASLConfig is Kafka SASL authentication; Mechanism "" disables it.
type SASLConfig struct {
	Mechanism string        `koanf:"mechanism" yaml:"mechanism"` // plain | scram-sha-256 | scram-sha-512
	Username  string        `koanf:"username" yaml:"username"`
	Password  ingest.Secret `koanf:"password" yaml:"password"`
}

// TLSConfig names PEM files; all empty = plain TCP.
type TLSConfig struct {
	CAFile   string `koanf:"ca_file" yaml:"ca_file"`
	CertFile string `koanf:"cert_file" yaml:"cert_file"`
	KeyFile  string `koanf:"key_file" yaml:"key_file"`
}

// Enabled reports whether any TLS setting is present.
func (t TLSConfig) Enabled() bool { return t.CAFile != "" || t.CertFile != "" || t.KeyFile != "" }

// FileSinkConfig configures the file sink.
type FileSinkConfig struct {
	Path string `koanf:"path" yaml:"path"` // default ./events.jsonl
}

// CheckpointConfig selects where each stream's last event_id is kept.
type CheckpointConfig struct {
	Type         string `koanf:"type" yaml:"type"`                     // file | nats_kv | kafka | memory; default file
	Dir          string `koanf:"dir" yaml:"dir"`                       // default ./data/checkpoints
	NATSKVBucket string `koanf:"nats_kv_bucket" yaml:"nats_kv_bucket"` // default restless_checkpoints
	// KafkaTopic is the compacted topic of checkpoint.type kafka, created
	// when missing. Default restless_ingest_checkpoints.
	KafkaTopic string `koanf:"kafka_topic" yaml:"kafka_topic"`
	// RequireExisting refuses to start a stream that has no checkpoint (for
	// production, where a fresh start means a gap). Default false.
	RequireExisting bool `koanf:"require_existing" yaml:"require_existing"`
}

// ClusterConfig shares the streams between the replicas of the same name
// that publish to the same broker (INGEST.md, "Several replicas").
type ClusterConfig struct {
	Enabled bool   `koanf:"enabled" yaml:"enabled"` // default false
	Name    string `koanf:"name" yaml:"name"`       // [a-z0-9_-]+; default ingest
	// Member is this replica's id; "" means the host name, "-" and a random
	// suffix.
	Member string `koanf:"member" yaml:"member"`
	// LeaseTTL is how long a silent replica keeps its streams. Default 10s.
	LeaseTTL Duration `koanf:"lease_ttl" yaml:"lease_ttl"`
}

// HTTPConfig is the metrics and health server.
type HTTPConfig struct {
	Addr string `koanf:"addr" yaml:"addr"` // default 127.0.0.1:9464; "" disables
}

// LogConfig selects the slog handler.
type LogConfig struct {
	Level  string `koanf:"level" yaml:"level"`   // debug | info | warn | error; default info
	Format string `koanf:"format" yaml:"format"` // text | json; default text
	// ProgressInterval is how often each stream logs a progress line at
	// info; 0 = never. Default 1m.
	ProgressInterval Duration `koanf:"progress_interval" yaml:"progress_interval"`
}

// Duration is a time.Duration written in Go syntax (30s, 24h) in YAML.
type Duration time.Duration

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// MarshalText writes Go syntax, so the effective config reads like the input.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

func (d Duration) String() string { return time.Duration(d).String() }

// defaultsYAML are the built-in defaults, the lowest layer of the configuration.
// Per-stream defaults are in streamDefaultsYAML and apply to every stream.
const defaultsYAML = `
restless:
  api_key: ""
  base_url: https://api.restlessapi.stream
  stream_base_url: https://stream.restlessapi.stream
discover:
  enabled: false
  interval: 60s
  status: ACTIVE
  name_prefix: ""
  transport: sse
  destination: ""
  verify: {secrets: [], mode: ""}
pipeline:
  dedupe: {size: 100000, ttl: 24h}
  batch: {max_events: 512, max_wait: 5ms}
  dead_letter: ""
sink:
  type: nats
  nats:
    url: nats://127.0.0.1:4222
    jetstream: true
    stream: RESTLESS
    base_subject: restless.>
    duplicate_window: 10m
    replicas: 1
    embedded: false
    embedded_dir: ./data/nats
    embedded_port: 4222
    token: ""
    credentials_file: ""
    tls: {ca_file: "", cert_file: "", key_file: ""}
  kafka:
    brokers: [127.0.0.1:9092]
    required_acks: all
    compression: snappy
    key: stream
    create_topics: false
    partitions: 3
    replication_factor: 1
    batch_size: 1000
    batch_timeout: 5ms
    sasl: {mechanism: "", username: "", password: ""}
    tls: {enabled: false, ca_file: "", cert_file: "", key_file: ""}
  file: {path: ./events.jsonl}
checkpoint:
  type: file
  dir: ./data/checkpoints
  nats_kv_bucket: restless_checkpoints
  kafka_topic: restless_ingest_checkpoints
  require_existing: false
cluster:
  enabled: false
  name: ingest
  member: ""
  lease_ttl: 10s
http:
  addr: 127.0.0.1:9464
log: {level: info, format: text, progress_interval: 1m}
shutdown_timeout: 30s
`

// streamDefaultsYAML fills every key a stream leaves unset.
var streamDefaultsYAML = `
transport: sse
since: ""
destination: ""
verify: {secrets: [], mode: ""}
reconnect: {initial: 1s, max: 30s, max_attempts: 0}
idle_timeout: 60s
max_silence: 0s
max_event_bytes: ` + strconv.Itoa(client.DefaultMaxEventBytes) + `
materialize: {destination: ""}
`

// directDefaultsYAML fills every key a direct target leaves unset.
const directDefaultsYAML = `
method: GET
headers: {}
body: null
jq_filter: ""
payload_mode: FULL_DATA
polling_interval: 0
polling_strategies: []
dedupe_key: ""
`

// destinationFor is the default destination of a stream.
func destinationFor(name string) string { return client.DefaultDestination(name) }
