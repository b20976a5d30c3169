package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/restless-stream/ingest"
	"github.com/restless-stream/ingest/pipeline"
)

func get(t *testing.T, h http.Handler, path string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	b, _ := io.ReadAll(rec.Body)
	return rec.Code, string(b)
}

func TestMetricsExposeTheSpecifiedNames(t *testing.T) {
	m := NewMetrics()
	s := m.Stream("orders")
	s.Received()
	s.Published(2)
	s.Duplicate()
	s.Rejected(pipeline.ReasonSignatureInvalid, true)
	s.PublishLatency(3 * time.Millisecond)
	s.EventLag(time.Second)
	s.Checkpointed("42", time.Now().Add(-time.Second))
	s.State(ingest.StateChange{State: ingest.StateReconnecting, Attempt: 1})
	s.State(ingest.StateChange{State: ingest.StateConnected})
	sinkUp := false
	m.SetSink(func() bool { return sinkUp })
	h := newHTTPHandler(m, NewReadiness([]string{"orders"}))
	if _, body := get(t, h, "/metrics"); !strings.Contains(body, "ingest_sink_connected 0") {
		t.Errorf("/metrics lacks ingest_sink_connected 0 while the sink is down")
	}
	sinkUp = true // read at the scrape: nothing else has to poll
	code, body := get(t, h, "/metrics")
	if !strings.Contains(body, "ingest_sink_connected 1") {
		t.Errorf("/metrics lacks ingest_sink_connected 1 once the sink is up")
	}
	if code != http.StatusOK {
		t.Fatalf("/metrics: %d", code)
	}
	for _, want := range []string{
		`ingest_events_received_total{stream="orders"} 1`,
		`ingest_events_published_total{stream="orders"} 2`,
		`ingest_events_duplicate_total{stream="orders"} 1`,
		`ingest_events_rejected_total{reason="signature_invalid",stream="orders"} 1`,
		`ingest_events_rejected_total{reason="parse_error",stream="orders"} 0`,
		`ingest_source_connected{stream="orders"} 1`,
		`ingest_source_reconnects_total{stream="orders"} 1`,
		`ingest_sink_publish_seconds_count{stream="orders"} 1`,
		`ingest_event_lag_seconds_count{stream="orders"} 1`,
		`ingest_checkpoint_cursor_age_seconds{stream="orders"}`,
		`ingest_build_info{`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if r, p, d, rej := m.Totals(); r != 1 || p != 2 || d != 1 || rej != 1 {
		t.Errorf("Totals = %d %d %d %d", r, p, d, rej)
	}
}

func TestReadiness(t *testing.T) {
	sinkUp := true
	r := NewReadiness([]string{"a", "b"})
	r.SetSink(func() bool { return sinkUp })
	h := newHTTPHandler(NewMetrics(), r)
	ready := func() bool {
		code, body := get(t, h, "/readyz")
		var rep readyReport
		if err := json.Unmarshal([]byte(body), &rep); err != nil {
			t.Fatalf("/readyz body %q: %v", body, err)
		}
		if rep.Ready != (code == http.StatusOK) {
			t.Fatalf("/readyz code %d disagrees with body %s", code, body)
		}
		return rep.Ready
	}
	steps := []struct {
		name   string
		do     func()
		expect bool
	}{
		{"connecting", func() {}, false},
		{"one connected", func() { r.State("a", ingest.StateChange{State: ingest.StateConnected}) }, false},
		{"both connected", func() { r.State("b", ingest.StateChange{State: ingest.StateConnected}) }, true},
		{"sink down", func() { sinkUp = false }, false},
		{"sink up", func() { sinkUp = true }, true},
		{"b reconnecting within budget", func() {
			r.State("b", ingest.StateChange{State: ingest.StateReconnecting, Attempt: 2, Err: errors.New("eof")})
		}, true},
		{"b failed", func() { r.State("b", ingest.StateChange{State: ingest.StateFailed}) }, false},
		{"b ended", func() { r.State("b", ingest.StateChange{State: ingest.StateEnded}) }, true},
		{"a reconnecting forever", func() { r.State("a", ingest.StateChange{State: ingest.StateReconnecting, Attempt: 99}) }, true},
	}
	for _, s := range steps {
		s.do()
		if got := ready(); got != s.expect {
			t.Errorf("%s: ready = %v, want %v", s.name, got, s.expect)
		}
	}
	if code, body := get(t, h, "/healthz"); code != http.StatusOK || strings.TrimSpace(body) != "ok" {
		t.Errorf("/healthz = %d %q", code, body)
	}
}

func TestLoggerRedactsSecrets(t *testing.T) {
	registerSecrets("log-secret-value-1")
	for _, format := range []string{"text", "json"} {
		var buf bytes.Buffer
		log := newLogger(&buf, LogConfig{Level: "debug", Format: format})
		log.Info("connect", "url", "http://h/?apiKey=log-secret-value-1", "err", errors.New("401 for log-secret-value-1"), "key", ingest.Secret("other"))
		out := buf.String()
		if strings.Contains(out, "log-secret-value-1") || strings.Contains(out, "other") {
			t.Errorf("%s log shows a secret: %s", format, out)
		}
		if !strings.Contains(out, "[REDACTED]") {
			t.Errorf("%s log lacks the redaction marker: %s", format, out)
		}
	}
}

func TestRejectedEventsAreLoggedOnceWithTheirReason(t *testing.T) {
	var buf bytes.Buffer
	o := observer{m: NewMetrics(), log: slog.New(slog.NewJSONHandler(&buf, nil))}
	s := o.Stream("orders")
	s.Rejected(pipeline.Rejection{Reason: pipeline.ReasonSignatureInvalid, Err: "signature does not match", EventID: "17", DeadLettered: true})
	s.WriteFailed(3, errors.New("nats: timeout"))
	s.CheckpointFailed(errors.New("disk full"))

	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("want 3 log lines, got %d:\n%s", len(lines), buf.String())
	}
	var rej map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &rej); err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]any{"msg": "event rejected", "stream": "orders", "reason": "signature_invalid", "event_id": "17", "error": "signature does not match", "dead_lettered": true} {
		if rej[k] != want {
			t.Errorf("rejection line %s = %v, want %v", k, rej[k], want)
		}
	}
	if !strings.Contains(lines[1], "nats: timeout") || !strings.Contains(lines[2], "disk full") {
		t.Errorf("write and checkpoint failures not logged with their errors:\n%s", buf.String())
	}
	if _, _, _, rejected := o.m.Totals(); rejected != 1 {
		t.Errorf("rejected total %d, want 1", rejected)
	}
}

func TestRejectionLogIsRateLimited(t *testing.T) {
	l := logLimit{every: time.Second, burst: 2}
	t0 := time.Unix(1000, 0)
	for i, want := range []bool{true, true, false, false} {
		if ok, _ := l.allow(t0); ok != want {
			t.Fatalf("line %d allowed=%v, want %v", i, ok, want)
		}
	}
	ok, skipped := l.allow(t0.Add(time.Second))
	if !ok || skipped != 2 {
		t.Fatalf("after the period: allowed=%v skipped=%d, want true 2", ok, skipped)
	}
}
