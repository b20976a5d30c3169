package main

import (
	"fmt"

	"github.com/restless-stream/ingest/client"
	"github.com/restless-stream/ingest/pipeline"
)

// pipelineFields is where each field of pipeline.Config sits in Config.
// Retry, CheckpointInterval and Buffer are not configurable: the daemon
// leaves them zero (the pipeline's defaults), which is always valid.
var pipelineFields = fieldMap{
	{From: "Streams[].Open", To: notConfigured}, // the daemon's source factory
	{From: "Streams[].VerifyMode", To: "Streams[].Verify.Mode"},
	{From: "Streams[].Verifier", To: "Streams[].Verify.Secrets"},
	{From: "Streams[].KeyMode", To: "Sink.Kafka.Key"},
	{From: "Streams[].Materialize", To: "Streams[].Materialize.Destination"},
	{From: "Dedupe", To: "Pipeline.Dedupe"},
	{From: "Batch", To: "Pipeline.Batch"},
	{From: "DeadLetter", To: "Pipeline.DeadLetter"},
	{From: "KeepRunning", To: "Discover.Enabled"},
}

// pipelineConfig is the pipeline's part of c: everything but each stream's
// Open, which the daemon sets when it starts. c must be normalized (its
// derived defaults filled). What a key means in the pipeline's terms can
// fail to translate: those errors come at their keys.
func (c *Config) pipelineConfig() (pipeline.Config, []FieldError) {
	pc := pipeline.Config{
		Dedupe:     pipeline.DedupeConfig{Size: c.Pipeline.Dedupe.Size, TTL: c.Pipeline.Dedupe.TTL.D()},
		Batch:      pipeline.BatchConfig{MaxEvents: c.Pipeline.Batch.MaxEvents, MaxWait: c.Pipeline.Batch.MaxWait.D()},
		DeadLetter: c.Pipeline.DeadLetter,
		// With discovery the set may be empty, and fill later.
		KeepRunning: c.Discover.Enabled,
	}
	var errs []FieldError
	errs = append(errs, notZero("pipeline.dedupe.size", pc.Dedupe.Size, pipeline.DefaultDedupeSize)...)
	errs = append(errs, notZero("pipeline.dedupe.ttl", pc.Dedupe.TTL, pipeline.DefaultDedupeTTL)...)
	errs = append(errs, notZero("pipeline.batch.max_events", pc.Batch.MaxEvents, pipeline.DefaultBatchMaxEvents)...)
	for i, s := range c.Streams {
		errs = append(errs, notZero(fmt.Sprintf("streams[%d].max_event_bytes", i), s.MaxEventBytes, pipeline.DefaultMaxEventBytes)...)
		sc := pipeline.StreamConfig{
			Name:          s.Name,
			Destination:   s.Destination,
			VerifyMode:    pipeline.VerifyMode(s.Verify.Mode),
			MaxEventBytes: s.MaxEventBytes,
			KeyMode:       pipeline.KeyStream,
			Materialize:   s.Materialize.Destination,
		}
		if c.Sink.Type == "kafka" {
			sc.KeyMode = pipeline.KeyMode(c.Sink.Kafka.Key)
		}
		if len(s.Verify.Secrets) > 0 && s.Verify.Mode != "off" {
			secrets := make([]string, len(s.Verify.Secrets))
			for j, sec := range s.Verify.Secrets {
				secrets[j] = sec.Reveal()
			}
			v, err := client.NewVerifier(secrets)
			if err != nil {
				errs = append(errs, FieldError{Path: fmt.Sprintf("streams[%d].verify.secrets", i), Msg: err.Error()})
			}
			sc.Verifier = v
		}
		pc.Streams = append(pc.Streams, sc)
	}
	return pc, errs
}

// notZero refuses a 0 at path. The YAML carries every key with its
// default, so a 0 there was written by hand; the pipeline would take it for
// "unset" and use its default, which is not what a 0 size or age reads as
// (no limit, no dedupe).
func notZero[T comparable](path string, v, def T) []FieldError {
	var zero T
	if v != zero {
		return nil
	}
	return []FieldError{{Path: path, Msg: fmt.Sprintf("0 is not allowed: leave the key out for the default (%v)", def)}}
}

// validatePipeline checks the pipeline's part of c with the pipeline's own
// rules (pipeline.Config.Validate), reported at YAML keys.
func (c *Config) validatePipeline(v *validator) {
	pc, errs := c.pipelineConfig()
	errs = append(errs, libraryErrors(pc.Validate(), pipelineFields)...)
	for i := range errs {
		if errs[i].Path == "streams" {
			errs[i].Msg += " (see `ingest demo` for a configuration-free start)"
		}
	}
	v.errs = append(v.errs, errs...)
}
