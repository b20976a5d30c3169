package main

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/restless-stream/ingest"
	"github.com/restless-stream/ingest/pipeline"
)

// TestReadinessDegraded: a stream that rejects every event (a wrong secret) or
// cannot reconnect makes /readyz 503 with the reason, and sets
// ingest_stream_degraded; a published event or a connection clears it.
func TestReadinessDegraded(t *testing.T) {
	m := NewMetrics()
	r := NewReadiness([]string{"a"})
	deg := NewDegradation([]string{"a"})
	r.degraded = deg
	m.Registry.MustRegister(deg)
	h := newHTTPHandler(m, r)
	obs := observer{m: m, log: discardLogger(), deg: deg}.Stream("a")
	r.State("a", ingest.StateChange{State: ingest.StateConnected})

	check := func(step string, wantReady bool, wantReason string) {
		t.Helper()
		code, body := get(t, h, "/readyz")
		var rep readyReport
		if err := json.Unmarshal([]byte(body), &rep); err != nil {
			t.Fatal(err)
		}
		if rep.Ready != wantReady || (code == http.StatusOK) != wantReady || !strings.Contains(rep.Streams["a"].Degraded, wantReason) {
			t.Errorf("%s: /readyz %d %s; want ready %v, degraded %q", step, code, body, wantReady, wantReason)
		}
		_, metrics := get(t, h, "/metrics")
		want := `ingest_stream_degraded{stream="a"} 0`
		if !wantReady {
			want = `ingest_stream_degraded{stream="a"} 1`
		}
		if !strings.Contains(metrics, want) {
			t.Errorf("%s: metrics lack %s", step, want)
		}
	}
	check("connected", true, "")
	for range rejectAllAfter - 1 {
		obs.Rejected(pipeline.Rejection{Reason: "signature_invalid"})
	}
	check("a few rejected", true, "")
	obs.Rejected(pipeline.Rejection{Reason: "signature_invalid"})
	check("every event rejected", false, "rejecting every event")
	obs.Published(1)
	check("published again", true, "")

	onState := func(c ingest.StateChange) { r.State("a", c); deg.Attempt("a", c.Attempt) }
	onState(ingest.StateChange{State: ingest.StateReconnecting, Attempt: reconnectDegradedAfter - 1})
	check("reconnecting briefly", true, "")
	onState(ingest.StateChange{State: ingest.StateReconnecting, Attempt: reconnectDegradedAfter})
	check("reconnecting for long", false, "cannot reconnect")
	onState(ingest.StateChange{State: ingest.StateConnected})
	check("reconnected", true, "")
}

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
