package reliability

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/restless-stream/ingest/emulator"
	"github.com/restless-stream/ingest/pipeline"
)

// TestBadEvents sends every kind of bad event between good ones: a hand-made
// catalogue over SSE, and the emulator's bad-event faults over SSE and
// WebSocket. Each bad event must be counted by its reason and dead-lettered
// with it; the good events around them must land exactly once, in order.
func TestBadEvents(t *testing.T) {
	begin(t)
	u := newUpstream(t)
	dir := t.TempDir()
	const dlq = "restless.dlq"
	const maxEvent = 64 << 10

	// The catalogue. Each entry: SSE id line, event JSON, and its fate.
	id := func(n int) string { return fmt.Sprintf("92000000000%02d", n) }
	type entry struct {
		sseID, json string
		reason      string // "" = lands; "duplicate" = dropped as a duplicate
		eventID     string // the event_id of an event that lands ("" = none)
	}
	sign := func(n int, data string) string { return ev{id: id(n), data: data, secret: hmacSecretA}.json(t) }
	noID := ev{data: `{"order":"no-id"}`, secret: hmacSecretA}.json(t)
	invalidUTF8 := strings.Replace(sign(4, `{"s":"ok"}`), `"ok"`, "\"\xff\xfe\"", 1)
	cat := []entry{
		{sseID: id(1), json: sign(1, `{"order":1}`), eventID: id(1)},
		{sseID: id(2), json: `{"type":"update","meta":{"timestamp":"2026-11-26T10:00:00Z"},"data":{"order":2},"sig`, reason: pipeline.ReasonParseError},
		{sseID: id(3), json: sign(3, `{"order":3}`), eventID: id(3)},
		// Invalid UTF-8 reaches the pipeline byte for byte, as over WebSocket,
		// and is refused as malformed: nothing published differs from the wire.
		{sseID: id(4), json: invalidUTF8, reason: pipeline.ReasonParseError},
		{sseID: id(5), json: noID},
		{sseID: id(3), json: sign(3, `{"order":3}`), reason: "duplicate"},
		{sseID: id(7), json: ev{id: id(7), data: `{"order":7}`, signature: "-"}.json(t), reason: pipeline.ReasonSignatureMissing},
		{sseID: id(8), json: ev{id: id(8), data: `{"order":8}`, signature: strings.Repeat("0", 64)}.json(t), reason: pipeline.ReasonSignatureInvalid},
		{sseID: id(9), json: ev{id: id(9), data: `{"order":9}`, signature: "not-a-signature!"}.json(t), reason: pipeline.ReasonSignatureInvalid},
		{sseID: id(10), json: ev{typ: "delete", id: id(10), data: `{"order":10}`, secret: hmacSecretA}.json(t), reason: pipeline.ReasonParseError},
		{sseID: id(11), json: sign(11, `{"pad":"`+strings.Repeat("p", 2*maxEvent)+`"}`), reason: pipeline.ReasonTooLarge},
		{sseID: id(12), json: sign(12, `[{"op":"replace","path":"/total","value":43}]`), eventID: id(12)}, // JSON_PATCH without a base: passed on as received
		{sseID: id(13), json: fmt.Sprintf(`{"type":"error","meta":{"timestamp":"2026-11-26T10:00:01Z","attempt_id":"a2","status":503,"latency_ms":9,"payload_mode_fallback":null},"data":null,"error":{"message":"upstream down"},"signature":null,"event_id":%q}`, id(13)), eventID: id(13)},
		{sseID: id(14), json: "", reason: pipeline.ReasonParseError}, // "data:" alone: an empty event, bad input
		{sseID: id(15), json: sign(15, `{"order":15}`), eventID: id(15)},
	}
	last := cat[len(cat)-1].sseID
	script := newScripted(t, func(c *sseConn) {
		if c.cursor == last {
			c.w.WriteHeader(http.StatusNoContent)
			return
		}
		if c.cursor != "" {
			http.Error(c.w, "the catalogue is read in one go; cursor "+c.cursor, http.StatusInternalServerError)
			return
		}
		c.start()
		for _, e := range cat {
			_ = c.event(e.sseID, e.json)
		}
	})

	// The emulator's bad-event faults on firehoses, SSE and WebSocket.
	type fhCase struct {
		name, transport string
		fault           emulator.Faults
		every           int
		reason          string
	}
	// n is no multiple of any `every` below: the last event is a good one.
	// (Over WebSocket a malformed last event has no readable cursor, so the
	// reconnect after the end of the stream reads it again, intact, on a
	// connection where it is no longer the k-th: correct, but it would blur
	// the count.)
	const n = 209
	fcases := []fhCase{
		{"malformed_sse", "sse", emulator.Faults{MalformedEvery: 10}, 10, pipeline.ReasonParseError},
		{"malformed_ws", "websocket", emulator.Faults{MalformedEvery: 10}, 10, pipeline.ReasonParseError},
		{"badsig_sse", "sse", emulator.Faults{BadSignatureEvery: 7}, 7, pipeline.ReasonSignatureInvalid},
		{"badsig_ws", "websocket", emulator.Faults{BadSignatureEvery: 7}, 7, pipeline.ReasonSignatureInvalid},
		{"oversize_sse", "sse", emulator.Faults{OversizedEvery: 50, OversizedBytes: 3 * maxEvent}, 50, pipeline.ReasonTooLarge},
		{"oversize_ws", "websocket", emulator.Faults{OversizedEvery: 50, OversizedBytes: 3 * maxEvent}, 50, pipeline.ReasonTooLarge},
		{"repeat_sse", "sse", emulator.Faults{RepeatEvery: 3}, 3, "duplicate"},
		{"repeat_ws", "websocket", emulator.Faults{RepeatEvery: 3}, 3, "duplicate"},
	}
	cfg := daemonCfg{upstream: u.url, checkpoint: filepath.Join(dir, "cp"), http: true, deadLetter: dlq,
		sink: fmt.Sprintf("type: file\n  file: {path: %q}", filepath.Join(dir, "events.jsonl"))}
	cfg.streams = append(cfg.streams, streamCfg{name: "catalogue", url: script.url, secret: hmacSecretA, maxEvent: maxEvent})
	fhs := map[string]firehose{}
	for _, c := range fcases {
		fh := u.newFirehose(t, "fh_"+c.name, hmacSecretB, n, 0, 400)
		if err := u.em.SetFaults(fh.id, c.fault); err != nil {
			t.Fatal(err)
		}
		fhs[c.name] = fh
		cfg.streams = append(cfg.streams, streamCfg{name: c.name, transport: c.transport, streamID: fh.id, secret: hmacSecretB, maxEvent: maxEvent})
	}
	// A healthy stream that never ends keeps the process up for the scrape.
	control := u.newFirehose(t, "fh_bad_control", hmacSecretB, 0, 20, 300)
	cfg.streams = append(cfg.streams, streamCfg{name: "control", streamID: control.id, secret: hmacSecretB})
	p := runDaemon(t, 3*time.Minute, writeFile(t, dir, "ingest.yaml", cfg.yaml()), true)

	// Expected counts per stream and reason.
	wantRejected := map[string]map[string]int{"catalogue": {}}
	wantDup := map[string]int{}
	for _, e := range cat {
		switch e.reason {
		case "":
		case "duplicate":
			wantDup["catalogue"]++
		default:
			wantRejected["catalogue"][e.reason]++
		}
	}
	for _, c := range fcases {
		wantRejected[c.name] = map[string]int{}
		if c.reason == "duplicate" {
			wantDup[c.name] = n / c.every
		} else {
			wantRejected[c.name][c.reason] = n / c.every
		}
	}
	var m metrics
	waitForWhy(t, 90*time.Second, "every stream to be handled", func() string {
		var err error
		if m, err = p.metrics(); err != nil {
			return err.Error()
		}
		for s, byReason := range wantRejected {
			for r, w := range byReason {
				if got := m.rejected(s, r); got < float64(w) {
					return fmt.Sprintf("%s: %v %s, want %d", s, got, r, w)
				}
			}
		}
		for s, w := range wantDup {
			if got := m.stream("ingest_events_duplicate_total", s); got < float64(w) {
				return fmt.Sprintf("%s: %v duplicates, want %d", s, got, w)
			}
		}
		return ""
	})
	for s, byReason := range wantRejected {
		for _, r := range []string{pipeline.ReasonParseError, pipeline.ReasonTooLarge, pipeline.ReasonSignatureMissing, pipeline.ReasonSignatureInvalid} {
			if got := m.rejected(s, r); got != float64(byReason[r]) {
				t.Errorf("%s: ingest_events_rejected_total{reason=%q} = %v, want %d", s, r, got, byReason[r])
			}
		}
	}
	for s, w := range wantDup {
		if got := m.stream("ingest_events_duplicate_total", s); got != float64(w) {
			t.Errorf("%s: ingest_events_duplicate_total = %v, want %d", s, got, w)
		}
	}
	if got := m.stream("ingest_events_without_id_total", "catalogue"); got != 1 {
		t.Errorf("catalogue: ingest_events_without_id_total = %v, want 1", got)
	}
	p.signal(syscall.SIGTERM)
	if code := p.wait(time.Minute); code != 0 {
		t.Fatalf("exit code %d after SIGTERM, want 0", code)
	}
	// INGEST.md: bad input is "counted, logged once with its reason".
	t.Run("logged with its reason", func(t *testing.T) {
		stderr := p.stderr.String()
		for _, r := range []string{pipeline.ReasonParseError, pipeline.ReasonTooLarge, pipeline.ReasonSignatureMissing, pipeline.ReasonSignatureInvalid} {
			if !strings.Contains(strings.Join(streamLog(stderr, "catalogue"), "\n"), r) {
				t.Errorf("no log line of the catalogue stream names the reason %s", r)
			}
		}
	})

	recs := readFileSink(t, filepath.Join(dir, "events.jsonl"))
	var events, dead []landed
	for _, r := range recs {
		if r.dest == dlq {
			dead = append(dead, r)
		} else {
			events = append(events, r)
		}
	}
	got := byStream(events)
	var all tally
	// The catalogue: the good events, in order, each once; the one without
	// an event_id is recognised by its bytes.
	var wantIDs []string
	for _, e := range cat {
		if e.reason == "" && e.eventID != "" {
			wantIDs = append(wantIDs, e.eventID)
		}
	}
	var withID []landed
	noIDSeen := 0
	for _, r := range got["catalogue"] {
		if r.id() == "" {
			if !bytes.Equal(compact(t, r.value), compact(t, []byte(noID))) {
				t.Errorf("catalogue: a record without event_id that is not the event sent without one: %s", r.value)
			}
			noIDSeen++
			continue
		}
		withID = append(withID, r)
	}
	if noIDSeen != 1 {
		t.Errorf("catalogue: the event without event_id landed %d times, want 1", noIDSeen)
	}
	tl := count(wantIDs, withID)
	tl.sent++
	tl.inBroker += int64(noIDSeen)
	checkExactlyOnce(t, "catalogue", tl)
	all.add(tl)
	for _, r := range got["catalogue"] {
		if r.id() == id(12) && !bytes.Contains(r.value, []byte(`"op":"replace"`)) {
			t.Errorf("the JSON_PATCH event was not passed on as received: %s", r.value)
		}
		if r.id() == id(13) && r.headers[pipeline.HeaderVerified] != "false" {
			t.Errorf("the error event is marked verified %q, want false", r.headers[pipeline.HeaderVerified])
		}
	}
	for _, c := range fcases {
		var want []string
		for i, eid := range fhs[c.name].ids() {
			if c.reason == "duplicate" || (i+1)%c.every != 0 {
				want = append(want, eid)
			}
		}
		tl := count(want, got[c.name])
		checkExactlyOnce(t, c.name, tl)
		all.add(tl)
	}
	if cr := got["control"]; len(cr) > 0 {
		last, _ := strconv.ParseInt(cr[len(cr)-1].id(), 10, 64)
		tl := count(firehose{start: control.start, count: last - control.start}.ids(), cr)
		checkExactlyOnce(t, "control", tl)
		all.add(tl)
	}

	// The dead letter: one record per rejection, with its stream and reason.
	gotDead := map[string]map[string]int{}
	for _, d := range dead {
		s, r := d.stream(), d.headers[pipeline.HeaderDLQReason]
		if gotDead[s] == nil {
			gotDead[s] = map[string]int{}
		}
		gotDead[s][r]++
		if d.headers[pipeline.HeaderDLQError] == "" {
			t.Errorf("%s: dead-letter record (%s) without %s", s, r, pipeline.HeaderDLQError)
		}
		if r == pipeline.ReasonTooLarge {
			var raw string
			if err := json.Unmarshal(d.value, &raw); err != nil || len(raw) != maxEvent {
				t.Errorf("%s: too_large dead letter holds %d bytes (%v), want the first max_event_bytes = %d", s, len(raw), err, maxEvent)
			}
		}
	}
	badTotal := 0
	for s, byReason := range wantRejected {
		for r, w := range byReason {
			badTotal += w
			if gotDead[s][r] != w {
				t.Errorf("%s: %d dead-letter records with reason %s, want %d", s, gotDead[s][r], r, w)
			}
		}
	}
	if len(dead) != badTotal {
		t.Errorf("%d dead-letter records, want %d", len(dead), badTotal)
	}
	record(t, Row{Scenario: "5. Bad events (catalogue over SSE, emulator faults over SSE + WebSocket → file)", Runs: len(cat) - 1 + len(fcases),
		Sent: all.sent, InBroker: all.inBroker, Lost: all.lost, Duplicated: all.dup,
		Bound: fmt.Sprintf("0 lost, 0 duplicated; %d bad events → %d dead-lettered with their reason", badTotal, len(dead))})
}

// compact removes the whitespace the file sink may remove.
func compact(t *testing.T, b []byte) []byte {
	t.Helper()
	var out bytes.Buffer
	if err := json.Compact(&out, b); err != nil {
		t.Fatalf("compact %s: %v", b, err)
	}
	return out.Bytes()
}
