package main

import (
	"testing"

	"github.com/restless-stream/ingest/client"
	"github.com/restless-stream/ingest/pipeline"
)

// TestConfigDefaultsAreTheLibraries ties the defaults written in the
// configuration's YAML layers to the constants of the libraries that apply
// them, so that the effective configuration `ingest check` prints is what
// runs.
func TestConfigDefaultsAreTheLibraries(t *testing.T) {
	cfg := mustLoad(t, minimalYAML)
	s := cfg.Streams[0]
	checks := []struct {
		name      string
		got, want any
	}{
		{"restless.base_url", cfg.Restless.BaseURL, client.DefaultBaseURL},
		{"restless.stream_base_url", cfg.Restless.StreamBaseURL, client.DefaultStreamBaseURL},
		{"destination", s.Destination, client.DefaultDestination(s.Name)},
		{"max_event_bytes", s.MaxEventBytes, client.DefaultMaxEventBytes},
		{"idle_timeout", s.IdleTimeout.D(), client.DefaultIdleTimeout},
		{"reconnect.initial", s.Reconnect.Initial.D(), client.DefaultBackoffInitial},
		{"reconnect.max", s.Reconnect.Max.D(), client.DefaultBackoffMax},
		{"pipeline.dedupe.size", cfg.Pipeline.Dedupe.Size, pipeline.DefaultDedupeSize},
		{"pipeline.dedupe.ttl", cfg.Pipeline.Dedupe.TTL.D(), pipeline.DefaultDedupeTTL},
		{"pipeline.batch.max_events", cfg.Pipeline.Batch.MaxEvents, pipeline.DefaultBatchMaxEvents},
		{"pipeline.batch.max_wait", cfg.Pipeline.Batch.MaxWait.D(), pipeline.DefaultBatchMaxWait},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v (%T), want the library default %v (%T)", c.name, c.got, c.got, c.want, c.want)
		}
	}
}
