package pipeline

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/restless-stream/ingest"
	"github.com/restless-stream/ingest/checkpoint"
	"github.com/restless-stream/ingest/pipeline/internal/dedupe"
)

// TestConfigErrors: Validate names each field at fault by its Go path, all
// of them at once, and New refuses what Validate refuses.
func TestConfigErrors(t *testing.T) {
	open := func(context.Context, string) (Source, error) { return nil, nil }
	v := testConfig(t, "x", nil).Streams[0].Verifier
	one := func(s StreamConfig) []StreamConfig { return []StreamConfig{s} }
	cases := []struct {
		name  string
		cfg   Config
		field string
		want  string
	}{
		{"no streams", Config{}, "Streams", "at least one stream is required"},
		{"bad name", Config{Streams: one(StreamConfig{Name: "Orders", Open: open})}, "Streams[0].Name", "not one of [a-z0-9_-]"},
		{"empty name", Config{Streams: one(StreamConfig{Open: open})}, "Streams[0].Name", "required"},
		{"twice", Config{Streams: []StreamConfig{{Name: "a", Open: open}, {Name: "a", Open: open}}}, "Streams[1].Name", `"a" duplicates the name of Streams[0]`},
		{"no open", Config{Streams: one(StreamConfig{Name: "a"})}, "Streams[0].Open", "required"},
		{"require without verifier", Config{Streams: one(StreamConfig{Name: "a", Open: open, VerifyMode: VerifyRequire})}, "Streams[0].VerifyMode", "needs a Verifier"},
		{"optional without verifier", Config{Streams: one(StreamConfig{Name: "a", Open: open, VerifyMode: VerifyOptional})}, "Streams[0].VerifyMode", "needs a Verifier"},
		{"bad verify mode", Config{Streams: one(StreamConfig{Name: "a", Open: open, Verifier: v, VerifyMode: "sometimes"})}, "Streams[0].VerifyMode", "not one of require, optional, off"},
		{"bad key mode", Config{Streams: one(StreamConfig{Name: "a", Open: open, KeyMode: "random"})}, "Streams[0].KeyMode", "not one of stream, event_id, none"},
		{"negative size", Config{Streams: one(StreamConfig{Name: "a", Open: open, MaxEventBytes: -1})}, "Streams[0].MaxEventBytes", "negative"},
		{"negative batch", Config{Streams: one(StreamConfig{Name: "a", Open: open}), Batch: BatchConfig{MaxEvents: -1}}, "Batch.MaxEvents", "negative"},
		{"huge batch", Config{Streams: one(StreamConfig{Name: "a", Open: open}), Batch: BatchConfig{MaxEvents: MaxBatchEvents + 1}}, "Batch.MaxEvents", "more than"},
		{"negative wait", Config{Streams: one(StreamConfig{Name: "a", Open: open}), Batch: BatchConfig{MaxWait: -1}}, "Batch.MaxWait", "negative"},
		{"huge buffer", Config{Streams: one(StreamConfig{Name: "a", Open: open}), Buffer: MaxBatchEvents + 1}, "Buffer", "more than"},
		{"huge window", Config{Streams: one(StreamConfig{Name: "a", Open: open}), Dedupe: DedupeConfig{Size: 1 << 31}}, "Dedupe.Size", "more than"},
		{"negative ttl", Config{Streams: one(StreamConfig{Name: "a", Open: open}), Dedupe: DedupeConfig{TTL: -1}}, "Dedupe.TTL", "negative"},
		{"negative interval", Config{Streams: one(StreamConfig{Name: "a", Open: open}), CheckpointInterval: -1}, "CheckpointInterval", "negative"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if !hasFieldError(c.cfg.Validate(), c.field, c.want) {
				t.Errorf("Validate = %v, want %s: …%s…", c.cfg.Validate(), c.field, c.want)
			}
			if _, err := New(c.cfg, &fakeSink{}, checkpoint.NewMemory(), nil); !hasFieldError(err, c.field, c.want) {
				t.Errorf("New = %v, want %s: …%s…", err, c.field, c.want)
			}
		})
	}

	// Every problem at once, each with its own path.
	all := Config{Streams: []StreamConfig{{Name: "a"}, {Name: "B!", Open: open, KeyMode: "x"}}, Batch: BatchConfig{MaxEvents: -1}}
	errs := all.Validate().(interface{ Unwrap() []error }).Unwrap()
	var fields []string
	for _, fe := range fieldErrors(all.Validate()) {
		fields = append(fields, fe.Field)
	}
	if len(fields) != len(errs) {
		t.Errorf("%d errors, of which %d field errors", len(errs), len(fields))
	}
	if got, want := strings.Join(fields, ","), "Streams[0].Open,Streams[1].Name,Streams[1].KeyMode,Batch.MaxEvents"; got != want {
		t.Errorf("fields %s, want %s", got, want)
	}

	good := Config{Streams: []StreamConfig{{Name: "a", Open: open}}}
	if _, err := New(good, nil, checkpoint.NewMemory(), nil); err == nil {
		t.Error("nil sink accepted")
	}
	if _, err := New(good, &fakeSink{}, nil, nil); err == nil {
		t.Error("nil store accepted")
	}
	// Defaults.
	n := validConfig(t, good)
	s := n.Streams[0]
	if s.Destination != "restless.a" || s.VerifyMode != VerifyOff || s.KeyMode != KeyStream || s.MaxEventBytes != DefaultMaxEventBytes ||
		n.Batch.MaxEvents != 512 || n.Batch.MaxWait != 5*time.Millisecond || n.Dedupe.Size != 100000 || n.Dedupe.TTL != 24*time.Hour ||
		n.Buffer != 512 {
		t.Errorf("defaults %+v / %+v", n, s)
	}
	good.Streams[0].Verifier = v
	if n := validConfig(t, good); n.Streams[0].VerifyMode != VerifyRequire {
		t.Error("a Verifier does not default the mode to require")
	}
}

// hasFieldError reports whether err holds a *ingest.FieldError for field
// whose message contains want.
func hasFieldError(err error, field, want string) bool {
	for _, fe := range fieldErrors(err) {
		if fe.Field == field && strings.Contains(fe.Err.Error(), want) {
			return true
		}
	}
	return false
}

// fieldErrors lists the field errors in the tree of err.
func fieldErrors(err error) []*ingest.FieldError {
	switch x := err.(type) {
	case *ingest.FieldError:
		return []*ingest.FieldError{x}
	case interface{ Unwrap() []error }:
		var out []*ingest.FieldError
		for _, e := range x.Unwrap() {
			out = append(out, fieldErrors(e)...)
		}
		return out
	case interface{ Unwrap() error }:
		return fieldErrors(x.Unwrap())
	}
	return nil
}

// TestMaxDedupeSize: the bound Validate applies is the one the window has.
func TestMaxDedupeSize(t *testing.T) {
	if MaxDedupeSize != dedupe.MaxSize {
		t.Fatalf("MaxDedupeSize %d, the window's MaxSize %d", MaxDedupeSize, dedupe.MaxSize)
	}
}
