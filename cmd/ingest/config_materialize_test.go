package main

import (
	"errors"
	"strings"
	"testing"
)

func TestMaterializeConfig(t *testing.T) {
	cfg := mustLoad(t, `
streams:
  - name: prices
    url: http://127.0.0.1:8787/?streamId=s1
    materialize: {destination: restless.prices.doc}
  - name: plain
    url: http://127.0.0.1:8787/?streamId=s2
pipeline: {dead_letter: restless.dlq}
`)
	if got := cfg.Streams[0].Materialize.Destination; got != "restless.prices.doc" {
		t.Fatalf("materialize.destination = %q", got)
	}
	if got := cfg.Streams[1].Materialize.Destination; got != "" {
		t.Fatalf("default materialize.destination = %q, want off", got)
	}
	pc, errs := cfg.pipelineConfig()
	if len(errs) > 0 || pc.Streams[0].Materialize != "restless.prices.doc" || pc.Streams[1].Materialize != "" {
		t.Fatalf("pipeline config %+v %v", pc.Streams, errs)
	}
	d := &daemon{cfg: cfg}
	if got := strings.Join(d.destinations(), ","); !strings.Contains(got, "restless.prices.doc") {
		t.Fatalf("destinations %s: the documents' subject is missing (the JetStream stream must cover it)", got)
	}

	for yaml, want := range map[string]string{
		`materialize: {destination: restless.prices}`:                 "the stream's own destination",
		`materialize: {destination: restless.dlq}`:                    "pipeline.dead_letter",
		`materialize: {destination: "bad subject"}`:                   "",
		`materialize: {destination: x, extra: 1}`:                     "",
		`{materialize: {destination: x}, max_event_bytes: 999999999}`: "largest document",
	} {
		body := "    " + yaml
		if strings.HasPrefix(yaml, "{") {
			body = "    materialize: {destination: x}\n    max_event_bytes: 999999999"
		}
		_, err := load(t, "streams:\n  - name: prices\n    url: http://127.0.0.1:8787/?streamId=s1\n"+body+"\npipeline: {dead_letter: restless.dlq}\n")
		var ce *ConfigError
		if !errors.As(err, &ce) {
			t.Errorf("%s: err = %v, want a *ConfigError", yaml, err)
			continue
		}
		if !strings.Contains(err.Error(), "streams[0].m") || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want streams[0]…: %s", yaml, err, want)
		}
	}
}
