package main

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/restless-stream/ingest"
	"github.com/restless-stream/ingest/pipeline"
)

func TestKeyOf(t *testing.T) {
	cases := []struct{ goPath, key string }{
		{"Streams[2].MaxEventBytes", "streams[2].max_event_bytes"},
		{"Streams[0].Verify.Secrets[1]", "streams[0].verify.secrets[1]"},
		{"Streams[0].Direct.PollingStrategies[1].Days[2]", "streams[0].direct.polling_strategies[1].days[2]"},
		{"Pipeline.Dedupe.TTL", "pipeline.dedupe.ttl"},
		{"Sink.Kafka.Brokers[1]", "sink.kafka.brokers[1]"},
		{"Sink.Kafka.TLS.CAFile", "sink.kafka.tls.ca_file"},
		{"Sink.NATS.DuplicateWindow", "sink.nats.duplicate_window"},
		{"Streams", "streams"},
		{"", ""},
	}
	for _, c := range cases {
		if got, ok := keyIn(reflect.TypeFor[Config](), c.goPath); got != c.key || !ok {
			t.Errorf("keyIn(%q) = %q, %v; want %q", c.goPath, got, ok, c.key)
		}
	}
	// A path that leaves Config's fields keeps its rest, visibly.
	for goPath, want := range map[string]string{
		"Streams[0].Nope":        "streams[0].Nope",
		"Pipeline.Dedupe.Size.X": "pipeline.dedupe.size.X",
		"Log[3]":                 "log[3]",
	} {
		if got, ok := keyIn(reflect.TypeFor[Config](), goPath); got != want || ok {
			t.Errorf("keyIn(%q) = %q, %v; want %q, false", goPath, got, ok, want)
		}
	}
}

func TestFieldMapMove(t *testing.T) {
	m := fieldMap{
		{From: "Streams[].Open", To: notConfigured},
		{From: "Streams[].VerifyMode", To: "Streams[].Verify.Mode"},
		{From: "Streams[].KeyMode", To: "Sink.Kafka.Key"},
		{From: "Dedupe", To: "Pipeline.Dedupe"},
	}
	cases := []struct {
		from, to string
		kept     bool
	}{
		{"Streams[3].VerifyMode", "Streams[3].Verify.Mode", true},
		{"Streams[3].KeyMode", "Sink.Kafka.Key", true},
		{"Streams[3].Open", "", false},
		{"Streams[3].Name", "Streams[3].Name", true},
		{"Dedupe.Size", "Pipeline.Dedupe.Size", true},
		{"Dedupeish", "Dedupeish", true}, // a prefix only at a field's boundary
		{"Batch.MaxEvents", "Batch.MaxEvents", true},
	}
	for _, c := range cases {
		if got, ok := m.move(c.from); got != c.to || ok != c.kept {
			t.Errorf("move(%q) = %q, %v; want %q, %v", c.from, got, ok, c.to, c.kept)
		}
	}
	// A library Config that sits whole inside Config, as a sink's does.
	sink := fieldMap{{From: "", To: "Sink.Kafka"}, {From: "RequiredAcks", To: "Sink.Kafka.RequiredAcks"}}
	for from, want := range map[string]string{
		"Brokers[1]":   "Sink.Kafka.Brokers[1]",
		"TLS.CAFile":   "Sink.Kafka.TLS.CAFile",
		"RequiredAcks": "Sink.Kafka.RequiredAcks",
		"":             "Sink.Kafka",
	} {
		if got, _ := sink.move(from); got != want {
			t.Errorf("move(%q) = %q, want %q", from, got, want)
		}
	}
}

func TestLibraryErrors(t *testing.T) {
	err := errors.Join(
		ingest.FieldErrorf("Streams[1].VerifyMode", "bad"),
		ingest.FieldErrorf("Streams[0].Open", "required"),
		ingest.FieldErrorf("Streams[0].KeyMode", `"x" is wrong`),
		ingest.FieldErrorf("Streams[1].KeyMode", `"x" is wrong`),
		ingest.FieldErrorf("Dedupe.Size", "too big"),
		errors.New("not a field error"),
	)
	got := libraryErrors(err, pipelineFields)
	want := []FieldError{
		{Path: "streams[1].verify.mode", Msg: "bad"},
		{Path: "sink.kafka.key", Msg: `"x" is wrong`},
		{Path: "pipeline.dedupe.size", Msg: "too big"},
		{Path: "(top level)", Msg: "not a field error"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("libraryErrors =\n%v\nwant\n%v", got, want)
	}
	// A library's Validate may join joins (a nested Config's errors).
	nested := errors.Join(errors.Join(ingest.FieldErrorf("Batch.MaxEvents", "a"), ingest.FieldErrorf("Batch.MaxWait", "b")), ingest.FieldErrorf("DeadLetter", "c"))
	var paths []string
	for _, fe := range libraryErrors(nested, pipelineFields) {
		paths = append(paths, fe.Path)
	}
	if got, want := strings.Join(paths, ","), "pipeline.batch.max_events,pipeline.batch.max_wait,pipeline.dead_letter"; got != want {
		t.Errorf("nested joins map to %s, want %s", got, want)
	}
	if libraryErrors(nil, pipelineFields) != nil {
		t.Error("no error gives field errors")
	}
}

// TestPipelineFieldsComplete: every field of pipeline.Config has a YAML key,
// is set by the daemon itself, or is one the daemon leaves at its default.
// A field added to the pipeline must be placed here before its errors can
// reach a user under a key that does not exist.
func TestPipelineFieldsComplete(t *testing.T) {
	leftAtDefault := map[string]bool{"Retry": true, "CheckpointInterval": true, "Buffer": true}
	var walk func(t reflect.Type, path string)
	walk = func(typ reflect.Type, path string) {
		for i := range typ.NumField() {
			f := typ.Field(i)
			p := path + f.Name
			if leftAtDefault[p] {
				continue
			}
			switch {
			case f.Type.Kind() == reflect.Slice && f.Type.Elem().Kind() == reflect.Struct:
				walk(f.Type.Elem(), p+"[0].")
				continue
			case f.Type.Kind() == reflect.Struct && f.Type.PkgPath() == typ.PkgPath():
				walk(f.Type, p+".")
				continue
			}
			to, kept := pipelineFields.move(p)
			if !kept {
				continue
			}
			if key, ok := keyIn(reflect.TypeFor[Config](), to); !ok {
				t.Errorf("pipeline.Config field %s lands at %s (key %q), which Config does not have", p, to, key)
			}
		}
	}
	walk(reflect.TypeFor[pipeline.Config](), "")
}

// TestLoadPipelineRules: the pipeline's own rules reach the user at the
// keys that set them.
func TestLoadPipelineRules(t *testing.T) {
	cases := []struct{ yaml, path, msg string }{
		{minimalYAML + "    max_event_bytes: -1\n", "streams[0].max_event_bytes", "negative"},
		{minimalYAML + "pipeline: {batch: {max_events: 2000000}}\n", "pipeline.batch.max_events", "more than 1000000"},
		{minimalYAML + "pipeline: {dedupe: {size: -5}}\n", "pipeline.dedupe.size", "negative"},
		{minimalYAML + "    verify: {secrets: [s], mode: sometimes}\n", "streams[0].verify.mode", "not one of require, optional, off"},
		{"log: {level: info}\n", "streams", "ingest demo"},
		{minimalYAML + "    max_event_bytes: 0\n", "streams[0].max_event_bytes", "0 is not allowed"},
		{minimalYAML + "pipeline: {dedupe: {size: 0}}\n", "pipeline.dedupe.size", "default (100000)"},
		{minimalYAML + "pipeline: {dedupe: {ttl: 0s}}\n", "pipeline.dedupe.ttl", "0 is not allowed"},
		{minimalYAML + "pipeline: {batch: {max_events: 0}}\n", "pipeline.batch.max_events", "0 is not allowed"},
	}
	for _, c := range cases {
		_, err := load(t, c.yaml)
		var ce *ConfigError
		if !errors.As(err, &ce) {
			t.Fatalf("%s: err = %v, want a *ConfigError", c.path, err)
		}
		found := false
		for _, fe := range ce.Errs {
			found = found || (fe.Path == c.path && strings.Contains(fe.Msg, c.msg))
		}
		if !found {
			t.Errorf("no error at %s containing %q; got:\n%v", c.path, c.msg, err)
		}
	}
	// One stream's bad key is reported once for the key, not once per stream.
	_, err := load(t, minimalYAML+"  - {name: b, stream_id: s2}\nsink: {type: kafka, kafka: {key: random}}\n")
	var ce *ConfigError
	if !errors.As(err, &ce) {
		t.Fatalf("err = %v", err)
	}
	n := 0
	for _, fe := range ce.Errs {
		if fe.Path == "sink.kafka.key" {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d errors at sink.kafka.key, want 1:\n%v", n, err)
	}
}

// TestDefaultsAreThePipelines: the daemon's defaults for the pipeline's keys
// are the pipeline's own.
func TestDefaultsAreThePipelines(t *testing.T) {
	cfg := mustLoad(t, minimalYAML)
	p := cfg.Pipeline
	if p.Dedupe.Size != pipeline.DefaultDedupeSize || p.Dedupe.TTL.D() != pipeline.DefaultDedupeTTL ||
		p.Batch.MaxEvents != pipeline.DefaultBatchMaxEvents || p.Batch.MaxWait.D() != pipeline.DefaultBatchMaxWait ||
		cfg.Streams[0].MaxEventBytes != pipeline.DefaultMaxEventBytes {
		t.Errorf("defaults %+v, max_event_bytes %d; the pipeline's are %d, %v, %d, %v, %d", p, cfg.Streams[0].MaxEventBytes,
			pipeline.DefaultDedupeSize, pipeline.DefaultDedupeTTL, pipeline.DefaultBatchMaxEvents, pipeline.DefaultBatchMaxWait, pipeline.DefaultMaxEventBytes)
	}
}
