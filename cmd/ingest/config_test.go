package main

import (
	"errors"
	"strings"
	"testing"
	"time"
)

const minimalYAML = `
streams:
  - name: orders
    stream_id: stream_123
`

func load(t *testing.T, yaml string, ov ...Override) (*Config, error) {
	t.Helper()
	return LoadConfig(LoadOptions{File: "test.yaml", Data: []byte(yaml), Overrides: ov})
}

func mustLoad(t *testing.T, yaml string, ov ...Override) *Config {
	t.Helper()
	cfg, err := load(t, yaml, ov...)
	if err != nil {
		t.Fatalf("LoadConfig: %v", err)
	}
	return cfg
}

func TestLoadDefaults(t *testing.T) {
	cfg := mustLoad(t, minimalYAML)
	s := cfg.Streams[0]
	checks := []struct {
		name      string
		got, want any
	}{
		{"transport", s.Transport, "sse"},
		{"destination", s.Destination, "restless.orders"},
		{"verify.mode", s.Verify.Mode, "off"},
		{"reconnect.initial", s.Reconnect.Initial.D(), time.Second},
		{"reconnect.max", s.Reconnect.Max.D(), 30 * time.Second},
		{"idle_timeout", s.IdleTimeout.D(), 60 * time.Second},
		{"max_event_bytes", s.MaxEventBytes, 4194304},
		{"dedupe.size", cfg.Pipeline.Dedupe.Size, 100000},
		{"dedupe.ttl", cfg.Pipeline.Dedupe.TTL.D(), 24 * time.Hour},
		{"batch.max_events", cfg.Pipeline.Batch.MaxEvents, 512},
		{"batch.max_wait", cfg.Pipeline.Batch.MaxWait.D(), 5 * time.Millisecond},
		{"sink.type", cfg.Sink.Type, "nats"},
		{"nats.jetstream", cfg.Sink.NATS.JetStream, true},
		{"cluster.enabled", cfg.Cluster.Enabled, false},
		{"cluster.name", cfg.Cluster.Name, "ingest"},
		{"cluster.member", cfg.Cluster.Member, ""},
		{"cluster.lease_ttl", cfg.Cluster.LeaseTTL.D(), 10 * time.Second},
		{"checkpoint.kafka_topic", cfg.Checkpoint.KafkaTopic, "restless_ingest_checkpoints"},
		{"nats.duplicate_window", cfg.Sink.NATS.DuplicateWindow.D(), 10 * time.Minute},
		{"kafka.required_acks", cfg.Sink.Kafka.RequiredAcks, "all"},
		{"kafka.brokers", strings.Join(cfg.Sink.Kafka.Brokers, ","), "127.0.0.1:9092"},
		{"checkpoint.type", cfg.Checkpoint.Type, "file"},
		{"http.addr", cfg.HTTP.Addr, "127.0.0.1:9464"},
		{"log.format", cfg.Log.Format, "text"},
		{"base_url", cfg.Restless.BaseURL, "https://api.restlessapi.stream"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
}

func TestLoadVerifyModeDefaultsToRequireWithSecrets(t *testing.T) {
	cfg := mustLoad(t, `
streams:
  - name: a
    stream_id: s
    verify: {secrets: [one, two]}
`)
	if got := cfg.Streams[0].Verify.Mode; got != "require" {
		t.Errorf("verify.mode = %q, want require", got)
	}
}

// TestLoadPrecedence checks defaults < file < environment < flags.
func TestLoadPrecedence(t *testing.T) {
	yaml := minimalYAML + `
log: {level: warn, format: json}
sink: {type: kafka}
`
	t.Setenv("INGEST_LOG__LEVEL", "error")
	t.Setenv("INGEST_SINK__KAFKA__BROKERS", "k1:9092, k2:9092")
	t.Setenv("INGEST_SINK__KAFKA__PARTITIONS", "6")
	t.Setenv("INGEST_STREAMS__0__IDLE_TIMEOUT", "15s")
	cfg := mustLoad(t, yaml, Override{Key: "log.level", Value: "debug", Origin: "flag --log-level"})
	if cfg.Log.Level != "debug" {
		t.Errorf("log.level = %q, want the flag's debug", cfg.Log.Level)
	}
	if cfg.Log.Format != "json" {
		t.Errorf("log.format = %q, want the file's json", cfg.Log.Format)
	}
	if got := strings.Join(cfg.Sink.Kafka.Brokers, ","); got != "k1:9092,k2:9092" {
		t.Errorf("brokers = %q", got)
	}
	if cfg.Sink.Kafka.Partitions != 6 {
		t.Errorf("partitions = %d, want 6 from the environment", cfg.Sink.Kafka.Partitions)
	}
	if cfg.Streams[0].IdleTimeout.D() != 15*time.Second || cfg.Streams[0].Name != "orders" {
		t.Errorf("stream 0 = %+v, want the file's stream with the environment's idle_timeout", cfg.Streams[0])
	}
	cfg = mustLoad(t, yaml)
	if cfg.Log.Level != "error" {
		t.Errorf("log.level = %q, want the environment's error over the file's warn", cfg.Log.Level)
	}
}

func TestLoadStreamsFromEnvironmentOnly(t *testing.T) {
	t.Setenv("INGEST_STREAMS__0__NAME", "env")
	t.Setenv("INGEST_STREAMS__0__URL", "http://127.0.0.1:1/?streamId=x")
	cfg := mustLoad(t, "log: {level: info}\n")
	if len(cfg.Streams) != 1 || cfg.Streams[0].Name != "env" || cfg.Streams[0].Transport != "sse" {
		t.Fatalf("streams = %+v", cfg.Streams)
	}
}

func TestLoadExpandsVariables(t *testing.T) {
	t.Setenv("ORDERS_STREAM", "stream_999")
	t.Setenv("PARTS", "7")
	t.Setenv("HMAC", "s3cr3t-value")
	cfg := mustLoad(t, `
streams:
  - name: orders
    stream_id: ${ORDERS_STREAM}
    destination: "orders.${ORDERS_STREAM}"
    verify: {secrets: ["${HMAC}"]}
restless: {api_key: "$${literal}"}
sink:
  kafka:
    partitions: ${PARTS}
    replication_factor: ${MISSING_RF:-2}
`)
	s := cfg.Streams[0]
	if s.StreamID != "stream_999" || s.Destination != "orders.stream_999" {
		t.Errorf("stream = %+v", s)
	}
	if got := cfg.Restless.APIKey.Reveal(); got != "${literal}" {
		t.Errorf("api_key = %q, want the literal ${literal}", got)
	}
	if s.Verify.Secrets[0].Reveal() != "s3cr3t-value" {
		t.Errorf("secret not expanded")
	}
	if cfg.Sink.Kafka.Partitions != 7 || cfg.Sink.Kafka.ReplicationFactor != 2 {
		t.Errorf("partitions, replication = %d, %d", cfg.Sink.Kafka.Partitions, cfg.Sink.Kafka.ReplicationFactor)
	}
}

func TestLoadAPIKeyFallback(t *testing.T) {
	t.Setenv("RESTLESS_API_KEY", "rs_from_env")
	if got := mustLoad(t, minimalYAML).Restless.APIKey.Reveal(); got != "rs_from_env" {
		t.Errorf("api_key = %q, want RESTLESS_API_KEY", got)
	}
	if got := mustLoad(t, minimalYAML+"restless: {api_key: rs_file}\n").Restless.APIKey.Reveal(); got != "rs_file" {
		t.Errorf("api_key = %q, want the file's", got)
	}
}

// TestLoadMistakes is the table of classic mistakes: each must be rejected with a
// message that names the key and says what was expected.
func TestLoadMistakes(t *testing.T) {
	tests := []struct {
		name, yaml string
		env        map[string]string
		path, msg  string
	}{
		{"no streams", "log: {level: info}\n", nil, "streams", "at least one stream"},
		{"bad duration", minimalYAML + "    idle_timeout: abc\n", nil, "streams[0].idle_timeout", `"abc" is not a duration (e.g. 30s)`},
		{"duration without unit", minimalYAML + "    idle_timeout: 30\n", nil, "streams[0].idle_timeout", "is not a duration"},
		{"negative duration", minimalYAML + "    idle_timeout: -5s\n", nil, "streams[0].idle_timeout", "positive duration"},
		{"negative max_silence", minimalYAML + "    max_silence: -1s\n", nil, "streams[0].max_silence", "must not be negative"},
		{"reconnect below the floor", minimalYAML + "    reconnect: {initial: 1ns}\n", nil, "streams[0].reconnect.initial", "below the floor"},
		{"typo", minimalYAML + "    idel_timeout: 5s\n", nil, "streams[0].idel_timeout", "did you mean idle_timeout"},
		{"unknown top-level", minimalYAML + "sinks: {}\n", nil, "sinks", "did you mean sink"},
		{"unknown section key", minimalYAML + "pipeline: {batch: {max: 3}}\n", nil, "pipeline.batch.max", "unknown key"},
		{"wrong case", minimalYAML + "Sink: {type: kafka}\n", nil, "Sink", "unknown key"},
		{"string for int", minimalYAML + "sink: {kafka: {partitions: \"3\"}}\n", nil, "sink.kafka.partitions", `"3" is not an integer`},
		{"string for bool", minimalYAML + "sink: {nats: {jetstream: \"yes\"}}\n", nil, "sink.nats.jetstream", "is not a boolean"},
		{"scalar for list", minimalYAML + "sink: {kafka: {brokers: a:1}}\n", nil, "sink.kafka.brokers", "is not a list"},
		{"list for mapping", minimalYAML + "pipeline: [1]\n", nil, "pipeline", "is not a mapping"},
		{"no target", "streams: [{name: a}]\n", nil, "streams[0]", "exactly one of stream_id, session_id, url, direct"},
		{"two targets", "streams: [{name: a, stream_id: s, url: 'http://h/'}]\n", nil, "streams[0]", "stream_id and url"},
		{"duplicate name", minimalYAML + "  - name: orders\n    session_id: x\n", nil, "streams[1].name", "duplicates the name of Streams[0]"},
		{"bad name", "streams: [{name: Orders!, stream_id: s}]\n", nil, "streams[0].name", "is not one of [a-z0-9_-]"},
		{"missing name", "streams: [{stream_id: s}]\n", nil, "streams[0].name", "required"},
		{"bad transport", minimalYAML + "    transport: grpc\n", nil, "streams[0].transport", "sse, websocket"},
		{"ws url with sse", "streams: [{name: a, url: 'ws://h/ws'}]\n", nil, "streams[0].url", "transport websocket"},
		{"direct without url", "streams: [{name: a, direct: {method: GET}}]\n", nil, "streams[0].direct.url", "absolute http(s) URL"},
		{"direct bad method", "streams: [{name: a, direct: {url: 'https://x/', method: FETCH}}]\n", nil, "streams[0].direct.method", "GET, POST"},
		{"require without secrets", minimalYAML + "    verify: {mode: require}\n", nil, "streams[0].verify.mode", "needs a Verifier"},
		{"bad sink type", minimalYAML + "sink: {type: redis}\n", nil, "sink.type", "nats, kafka, file, stdout"},
		{"bad acks", minimalYAML + "sink: {type: kafka, kafka: {required_acks: two}}\n", nil, "sink.kafka.required_acks", "all, one, none"},
		{"sasl without password", minimalYAML + "sink: {type: kafka, kafka: {sasl: {mechanism: plain, username: u}}}\n", nil, "sink.kafka.sasl.password", "required"},
		{"bad topic", minimalYAML + "    destination: 'a b'\nsink: {type: kafka}\n", nil, "streams[0].destination", "Kafka topic"},
		{"wildcard subject", minimalYAML + "    destination: 'a.>'\n", nil, "streams[0].destination", "NATS subject"},
		{"nats_kv with kafka", minimalYAML + "sink: {type: kafka}\ncheckpoint: {type: nats_kv}\n", nil, "checkpoint.type", "sink.type nats"},
		{"kafka checkpoint with nats", minimalYAML + "checkpoint: {type: kafka}\n", nil, "checkpoint.type", "sink.type kafka"},
		{"bad checkpoint topic", minimalYAML + "sink: {type: kafka}\ncheckpoint: {type: kafka, kafka_topic: 'a b'}\n", nil, "checkpoint.kafka_topic", "Kafka topic"},
		{"cluster with file sink", minimalYAML + "sink: {type: file}\ncluster: {enabled: true}\n", nil, "cluster.enabled", "not file"},
		{"cluster with stdout sink", minimalYAML + "sink: {type: stdout}\ncluster: {enabled: true}\n", nil, "cluster.enabled", "not stdout"},
		{"cluster with core nats", minimalYAML + "sink: {nats: {jetstream: false}}\ncluster: {enabled: true}\n", nil, "cluster.enabled", "jetstream true"},
		{"cluster with file checkpoints", minimalYAML + "cluster: {enabled: true}\n", nil, "checkpoint.type", "needs checkpoint.type nats_kv"},
		{"cluster kafka with nats_kv", minimalYAML + "sink: {type: kafka}\ncheckpoint: {type: nats_kv}\ncluster: {enabled: true}\n", nil, "checkpoint.type", "needs checkpoint.type kafka"},
		{"bad cluster name", minimalYAML + "cluster: {name: Ingest}\n", nil, "cluster.name", "[a-z0-9_-]"},
		{"bad cluster member", minimalYAML + "cluster: {member: 'a b'}\n", nil, "cluster.member", "not one of"},
		{"lease_ttl too short", minimalYAML + "cluster: {lease_ttl: 500ms}\n", nil, "cluster.lease_ttl", "outside [1s, 10m0s]"},
		{"lease_ttl too long", minimalYAML + "cluster: {lease_ttl: 1h}\n", nil, "cluster.lease_ttl", "outside"},
		{"kafka lease_ttl below session timeout", minimalYAML + "sink: {type: kafka}\ncheckpoint: {type: kafka}\ncluster: {enabled: true, lease_ttl: 3s}\n", nil, "cluster.lease_ttl", "group.min.session.timeout.ms"},
		{"bad http addr", minimalYAML + "http: {addr: nope}\n", nil, "http.addr", "host:port"},
		{"bad log format", minimalYAML + "log: {format: xml}\n", nil, "log.format", "text, json"},
		{"unset variable", "streams: [{name: a, stream_id: '${NOPE_NOT_SET_X}'}]\n", nil, "streams[0].stream_id", "is not set"},
		{"not yaml", "streams: [\n", nil, "test.yaml", "not valid YAML"},
		{"not a mapping", "- a\n- b\n", nil, "test.yaml", "not valid YAML"},
		{"env bad int", minimalYAML, map[string]string{"INGEST_SINK__KAFKA__PARTITIONS": "many"}, "sink.kafka.partitions", "INGEST_SINK__KAFKA__PARTITIONS"},
		{"env index gap", minimalYAML, map[string]string{"INGEST_STREAMS__3__NAME": "x"}, "streams[3]", "index out of range"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			_, err := load(t, tt.yaml)
			var ce *ConfigError
			if !errors.As(err, &ce) {
				t.Fatalf("err = %v, want a *ConfigError", err)
			}
			for _, fe := range ce.Errs {
				if fe.Path == tt.path && strings.Contains(fe.Msg, tt.msg) {
					return
				}
			}
			t.Errorf("no error at %s containing %q; got:\n%v", tt.path, tt.msg, err)
			if exitCode(err) != exitUsage {
				t.Errorf("exit code %d, want 2", exitCode(err))
			}
		})
	}
}

func TestLoadReportsEveryProblem(t *testing.T) {
	_, err := load(t, `
streams:
  - name: a
    stream_id: s
    idel_timeout: 1s
    idle_timeout: abc
sink: {kafka: {partitions: "3"}}
`)
	var ce *ConfigError
	if !errors.As(err, &ce) || len(ce.Errs) != 3 {
		t.Fatalf("want three problems, got %v", err)
	}
}

func TestEffectiveYAMLRedactsSecrets(t *testing.T) {
	cfg := mustLoad(t, `
restless: {api_key: rs_0123456789abcdef}
streams:
  - name: a
    stream_id: s
    verify: {secrets: [hmac-secret-one]}
sink:
  nats: {token: nats-token-xyz}
  kafka: {sasl: {mechanism: plain, username: u, password: kafka-pass-xyz}}
`)
	out, err := cfg.effectiveYAML()
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"rs_0123456789abcdef", "hmac-secret-one", "nats-token-xyz", "kafka-pass-xyz"} {
		if strings.Contains(string(out), s) {
			t.Errorf("effective configuration shows secret %q", s)
		}
	}
	if !strings.Contains(string(out), "[REDACTED]") {
		t.Errorf("no [REDACTED] marker in\n%s", out)
	}
	// The printed configuration loads again (it is a valid input), secrets aside.
	if _, err := load(t, string(out)); err != nil {
		t.Errorf("effective configuration does not load again: %v", err)
	}
}

// FuzzLoadConfig: the loader never panics, and every rejection names a key.
func FuzzLoadConfig(f *testing.F) {
	f.Add([]byte(minimalYAML))
	f.Add([]byte("streams: [{name: a, direct: {url: 'https://x/', body: {a: [1, 2]}, polling_strategies: [{start: '08:00', days: [MON]}]}}]\n"))
	f.Add([]byte("sink: {kafka: {brokers: [a:1], partitions: 3}}\nstreams: [{name: b, url: 'ws://x/', transport: websocket, idle_timeout: 1h}]\n"))
	f.Add([]byte("streams:\n  - name: ${X:-y}\n    stream_id: '$${z}'\n"))
	f.Add([]byte("? [a]\n: b\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := LoadConfig(LoadOptions{File: "fuzz.yaml", Data: data})
		if err == nil {
			if len(cfg.Streams) == 0 {
				t.Fatal("accepted a configuration without streams")
			}
			if _, err := cfg.effectiveYAML(); err != nil {
				t.Fatalf("effectiveYAML: %v", err)
			}
			return
		}
		var ce *ConfigError
		if !errors.As(err, &ce) || len(ce.Errs) == 0 {
			t.Fatalf("rejection is not a *ConfigError: %v", err)
		}
		for _, fe := range ce.Errs {
			if fe.Path == "" || fe.Msg == "" {
				t.Fatalf("rejection names no key: %#v", fe)
			}
		}
	})
}

func TestLoadDirectKeepsHeaderNamesWithDots(t *testing.T) {
	cfg := mustLoad(t, `
streams:
  - name: d
    direct:
      url: https://api.example.com/orders
      headers: {X.Trace-Id: "1", Accept: application/json}
      body: {status: open, n: [1, 2]}
      polling_interval: 30
`)
	d := cfg.Streams[0].Direct
	if d.Headers["X.Trace-Id"] != "1" || d.Headers["Accept"] != "application/json" {
		t.Errorf("headers = %v", d.Headers)
	}
	if d.Method != "GET" || d.PayloadMode != "FULL_DATA" || d.PollingInterval != 30 {
		t.Errorf("direct = %+v", d)
	}
	if m, ok := d.Body.(map[string]any); !ok || m["status"] != "open" {
		t.Errorf("body = %#v", d.Body)
	}
}
