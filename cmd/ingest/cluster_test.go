package main

import (
	"context"
	"errors"
	"testing"

	"github.com/restless-stream/ingest"
	"github.com/restless-stream/ingest/checkpoint"
	"github.com/restless-stream/ingest/pipeline"
)

// countingSink counts the records that reach it.
type countingSink struct{ n int }

func (c *countingSink) Write(_ context.Context, recs []ingest.Record) error {
	c.n += len(recs)
	return nil
}
func (c *countingSink) Close(context.Context) error { return nil }

// A replica holding no lease on a stream writes none of its records and
// saves none of its checkpoints; records that name no stream pass.
func TestClusterFencesStreamsNotOwned(t *testing.T) {
	c := &clusterMode{owned: map[string]*ownedStream{}, fenced: checkpoint.NewFenced()}
	inner := &countingSink{}
	s := fencedSink{sink: inner, c: c}
	rec := ingest.Record{Dest: "restless.orders", Headers: []ingest.Header{{Key: pipeline.HeaderStream, Value: "orders"}}}
	if err := s.Write(context.Background(), []ingest.Record{rec}); !errors.Is(err, errNotOwner) {
		t.Errorf("write of a stream not owned: %v, want errNotOwner", err)
	}
	if inner.n != 0 {
		t.Errorf("%d records reached the broker", inner.n)
	}
	if err := s.Write(context.Background(), []ingest.Record{{Dest: "x"}}); err != nil || inner.n != 1 {
		t.Errorf("a record without a stream: %v, %d written", err, inner.n)
	}
	st := clusterStore{c}
	if err := st.Save(context.Background(), "orders", "17"); !errors.Is(err, errNotOwner) {
		t.Errorf("save of a stream not owned: %v, want errNotOwner", err)
	}
	if _, _, err := st.Load(context.Background(), "orders"); !errors.Is(err, errNotOwner) {
		t.Errorf("load of a stream not owned: %v, want errNotOwner", err)
	}
	if c.owns("orders") {
		t.Error("owns a stream without a lease")
	}
}
