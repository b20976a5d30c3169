package pipeline

import (
	"strings"
	"testing"

	"github.com/restless-stream/ingest"
	"github.com/restless-stream/ingest/checkpoint"
	"github.com/restless-stream/ingest/client"
)

// errorEventWith is an error event carrying data, signed with secret ("":
// unsigned).
func errorEventWith(id, data, secret string) []byte {
	sig := ""
	if secret != "" {
		s, err := client.ComputeSignatureRaw(secret, []byte(data))
		if err != nil {
			panic(err)
		}
		sig = `"signature":"` + s + `",`
	}
	return []byte(`{"type":"error","meta":{"timestamp":"2026-06-07T00:49:36.562+00:00","status":502},` +
		`"data":` + data + `,"error":{"message":"bad gateway"},` + sig + `"event_id":"` + id + `"}`)
}

// TestErrorEventsVerified: an error event is published unverified only
// while it carries no data (its error object and meta); one whose data is
// not null is verified like an update, so that in require mode nothing
// unverified carries data into the destination.
func TestErrorEventsVerified(t *testing.T) {
	cases := []struct {
		name     string
		ev       []byte
		mode     VerifyMode
		reason   string // "" = published
		verified string // restless-verified of the published record
	}{
		{"no data", event("2", errorEvent()), VerifyRequire, "", "false"},
		{"data, unsigned", errorEventWith("2", `{"role":"admin"}`, ""), VerifyRequire, ReasonSignatureMissing, ""},
		{"data, wrong signature", errorEventWith("2", `{"role":"admin"}`, "not-the-secret"), VerifyRequire, ReasonSignatureInvalid, ""},
		{"data, signed", errorEventWith("2", `{"role":"admin"}`, testSecret), VerifyRequire, "", "true"},
		{"data, wrong signature, optional", errorEventWith("2", `{"role":"admin"}`, "not-the-secret"), VerifyOptional, ReasonSignatureInvalid, ""},
		{"data, unsigned, optional", errorEventWith("2", `{"role":"admin"}`, ""), VerifyOptional, "", "false"},
		{"data, unsigned, off", errorEventWith("2", `{"role":"admin"}`, ""), VerifyOff, "", "false"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			src := &fakeSource{frames: []ingest.Frame{frame(event("1")), frame(c.ev), frame(event("3"))}, end: ingest.ErrStreamEnded}
			cfg := testConfig(t, "orders", src)
			cfg.Streams[0].VerifyMode = c.mode
			sink, obs := &fakeSink{}, newCounters()
			if err := mustNew(t, cfg, sink, checkpoint.NewMemory(), obs).Run(t.Context()); err != nil {
				t.Fatal(err)
			}
			var got *ingest.Record
			recs := sink.records()
			for i := range recs {
				if id, _ := recs[i].Header(HeaderEventID); id == "2" {
					got = &recs[i]
				}
			}
			if c.reason != "" {
				if got != nil {
					t.Fatalf("published %s, want it rejected (%s)", got.Value, c.reason)
				}
				if obs.rejected[c.reason] != 1 {
					t.Errorf("rejected %v, want one %s", obs.rejected, c.reason)
				}
				return
			}
			if got == nil {
				t.Fatalf("not published; rejected %v", obs.rejected)
			}
			if v, _ := got.Header(HeaderVerified); v != c.verified {
				t.Errorf("restless-verified %q, want %q", v, c.verified)
			}
			if typ, _ := got.Header(HeaderEventType); !strings.EqualFold(typ, "error") {
				t.Errorf("restless-event-type %q, want error", typ)
			}
		})
	}
}
