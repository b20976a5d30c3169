package main

import (
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/restless-stream/ingest"
	"github.com/restless-stream/ingest/internal/natsserver"
	kafkasink "github.com/restless-stream/ingest/sink/kafka"
	natssink "github.com/restless-stream/ingest/sink/nats"
)

// setPaths lists the Go path of every field of v (a struct, nested structs
// walked) that is not its zero value.
func setPaths(v reflect.Value, prefix string) []string {
	var out []string
	for i := range v.NumField() {
		f, fv := v.Type().Field(i), v.Field(i)
		path := f.Name
		if prefix != "" {
			path = prefix + "." + f.Name
		}
		if f.Type.Kind() == reflect.Struct {
			out = append(out, setPaths(fv, path)...)
		} else if !fv.IsZero() {
			out = append(out, path)
		}
	}
	return out
}

// hasField reports whether the dotted Go path names a field of t.
func hasField(t reflect.Type, path string) bool {
	for name := range strings.SplitSeq(path, ".") {
		f, ok := t.FieldByName(name)
		if !ok {
			return false
		}
		t = f.Type
	}
	return true
}

// TestSinkKeyTables: every field the daemon sets in a sink's Config has a
// YAML key in its table, every Go path of a table is a field of that Config,
// and every YAML key is a key of the configuration.
func TestSinkKeyTables(t *testing.T) {
	yamlKeys := configKeys(reflect.TypeFor[Config](), "")
	all := NATSSinkConfig{
		URL: "nats://a:1", Stream: "S", BaseSubject: "b.>", DuplicateWindow: Duration(time.Minute), Embedded: true,
		EmbeddedDir: "d", EmbeddedPort: 1, Token: "t", CredentialsFile: "c", TLS: TLSConfig{CAFile: "ca", CertFile: "c", KeyFile: "k"},
	}
	kafka := KafkaSinkConfig{
		Brokers: []string{"a:1"}, RequiredAcks: "one", Compression: "gzip", Key: "none", CreateTopics: true, Partitions: 1,
		ReplicationFactor: 1, BatchSize: 1, BatchTimeout: 1, SASL: SASLConfig{Mechanism: "plain", Username: "u", Password: "p"},
		TLS: KafkaTLSConfig{Enabled: true, CAFile: "ca", CertFile: "c", KeyFile: "k"},
	}
	kc, errs := kafkaSinkConfig(kafka)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	tests := []struct {
		section string
		keys    map[string]string
		lib     any
	}{
		{"sink.nats", natsKeys, natsSinkConfig(all, nil)},
		{"sink.nats", natsServerKeys, embeddedNATSConfig(all)},
		{"sink.kafka", kafkaKeys, kc},
	}
	for _, tt := range tests {
		lib := reflect.TypeOf(tt.lib)
		set := setPaths(reflect.ValueOf(tt.lib), "")
		if tt.section == "sink.nats" && lib == reflect.TypeFor[natssink.Config]() {
			set = append(set, "Core") // set for jetstream: false
		}
		for _, path := range set {
			if _, ok := tt.keys[path]; !ok {
				t.Errorf("%s: the daemon sets %s.%s, which has no YAML key in the table", tt.section, lib, path)
			}
		}
		for path, key := range tt.keys {
			if !hasField(lib, path) {
				t.Errorf("%s: the table names %s, which %s does not have", tt.section, path, lib)
			}
			if full := tt.section + "." + strings.TrimSuffix(key, "[]"); !slices.Contains(yamlKeys, full) {
				t.Errorf("the table names %s, which the configuration does not have", full)
			}
		}
	}
}

func TestYAMLKey(t *testing.T) {
	tests := []struct{ field, want string }{
		{"Brokers[2]", "sink.kafka.brokers[2]"},
		{"SASL.Password", "sink.kafka.sasl.password"},
		{"WriteTimeout", "sink.kafka.WriteTimeout"}, // not set by the daemon: the Go path
	}
	for _, tt := range tests {
		if got := yamlKey("sink.kafka", kafkaKeys, tt.field); got != tt.want {
			t.Errorf("yamlKey(%s) = %s, want %s", tt.field, got, tt.want)
		}
	}
	if got := yamlKey("sink.nats", natsKeys, "URLs[1]"); got != "sink.nats.url" {
		t.Errorf("yamlKey(URLs[1]) = %s, want sink.nats.url (a comma-separated string)", got)
	}
}

// TestSinkMistakes: what the sinks' own rules refuse is reported at the
// YAML key, all at once.
func TestSinkMistakes(t *testing.T) {
	tests := []struct {
		name, yaml string
		want       map[string]string // path → part of the message
	}{
		{"kafka", minimalYAML + "sink:\n  type: kafka\n  kafka: {brokers: [ok:9092, bad], compression: brotli, partitions: -1, tls: {cert_file: c.pem}, sasl: {mechanism: gssapi, username: u, password: p}}\n", map[string]string{
			"sink.kafka.brokers[1]":     `"bad" is not host:port`,
			"sink.kafka.compression":    "none, gzip, snappy, lz4, zstd",
			"sink.kafka.partitions":     "negative",
			"sink.kafka.tls.key_file":   "required with a client certificate",
			"sink.kafka.sasl.mechanism": "plain, scram-sha-256, scram-sha-512",
			"sink.kafka.tls.cert_file":  "cannot read c.pem",
		}},
		{"nats", minimalYAML + "sink:\n  nats: {url: 'nats://ok:4222, nope', stream: a.b, base_subject: 'a.>.b', duplicate_window: -1s, tls: {key_file: k.pem}}\n", map[string]string{
			"sink.nats.url":              `"nope" is not a NATS URL`,
			"sink.nats.stream":           "not a JetStream stream name",
			"sink.nats.base_subject":     "> is not its last token",
			"sink.nats.duplicate_window": "negative",
			"sink.nats.tls.cert_file":    "required with a client key",
			"sink.nats.tls.key_file":     "cannot read k.pem",
		}},
		{"embedded", minimalYAML + "sink:\n  nats: {url: 'not checked', embedded: true, embedded_port: 70000, embedded_dir: ''}\n", map[string]string{
			"sink.nats.embedded_port": "not a port",
			"sink.nats.embedded_dir":  "required",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := load(t, tt.yaml)
			var ce *ConfigError
			if !errors.As(err, &ce) {
				t.Fatalf("err = %v, want a *ConfigError", err)
			}
			got := map[string]string{}
			for _, fe := range ce.Errs {
				got[fe.Path] = fe.Msg
			}
			for path, msg := range tt.want {
				if !strings.Contains(got[path], msg) {
					t.Errorf("%s: %q, want it to say %q", path, got[path], msg)
				}
			}
			if len(ce.Errs) != len(tt.want) {
				t.Errorf("%d errors, want %d:\n%v", len(ce.Errs), len(tt.want), err)
			}
		})
	}
}

// TestKeyedError: an error from opening a sink names the YAML key of each
// field at fault, and keeps the others under the section.
func TestKeyedError(t *testing.T) {
	err := keyedError("sink.kafka", kafkaKeys, errors.Join(
		ingest.FieldErrorf("TLS.CAFile", "no such file"),
		errors.New("kafka: reach brokers"),
	))
	if got := err.Error(); got != "sink.kafka.tls.ca_file: no such file\nsink.kafka: kafka: reach brokers" {
		t.Fatalf("keyedError = %q", got)
	}
	_, err = natsserver.Start(natsserver.Config{Dir: t.TempDir(), Port: -1})
	if got := keyedError("sink.nats", natsServerKeys, err).Error(); !strings.HasPrefix(got, "sink.nats.embedded_port: ") {
		t.Fatalf("keyedError = %q", got)
	}
	var fe *ingest.FieldError
	if _, err := kafkasink.New(t.Context(), kafkasink.Config{TLS: kafkasink.TLSConfig{CAFile: "/nonexistent/ca.pem"}}); !errors.As(err, &fe) ||
		!strings.HasPrefix(keyedError("sink.kafka", kafkaKeys, err).Error(), "sink.kafka.tls.ca_file: ") {
		t.Fatalf("New = %v", err)
	}
}
