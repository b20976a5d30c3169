package pipeline

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"testing/synctest"

	"github.com/restless-stream/ingest"
	"github.com/restless-stream/ingest/checkpoint"
)

// TestStatusReceivedAheadOfAcknowledged: while the sink refuses events
// past 70, the reader has read all 100; Status says so, with the time the
// last was received, and keeps the acknowledged position at 70.
func TestStatusReceivedAheadOfAcknowledged(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sink := &fakeSink{fail: func(_ int, recs []ingest.Record) error {
			werrs := make(ingest.WriteErrors, len(recs))
			failed := false
			for i, r := range recs {
				id, _ := r.Header(HeaderEventID)
				if k, _ := strconv.Atoi(id); k > 70 {
					werrs[i], failed = errors.New("broker gone"), true
				}
			}
			if failed {
				return werrs
			}
			return nil
		}}
		cfg := testConfig(t, "orders", &fakeSource{frames: frames(seq(1, 100)...)})
		cfg.Batch.MaxEvents = 10
		cfg.Buffer = 200
		p := mustNew(t, cfg, sink, checkpoint.NewMemory(), nil)
		if st := p.Status()[0]; st.Received != "" || !st.ReceivedAt.IsZero() {
			t.Fatalf("before Run: %+v", st)
		}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error)
		go func() { done <- p.Run(ctx) }()
		synctest.Wait()
		st := p.Status()[0]
		if st.Received != "100" || st.Acknowledged != "70" || st.ReceivedAt.IsZero() {
			t.Errorf("status %+v: want received 100, acknowledged 70, a receive time", st)
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	})
}
