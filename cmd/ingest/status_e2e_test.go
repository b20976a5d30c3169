package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/restless-stream/ingest/emulator"
)

// startStatusDaemon runs `ingest run` against em with the given streams
// (YAML list items), the file sink and file checkpoints, and returns the
// process and its http.addr.
func startStatusDaemon(t *testing.T, em *emulator.Emulator, streams string, secrets []string) (*proc, string) {
	t.Helper()
	dir := t.TempDir()
	cfg := writeConfig(t, dir, fmt.Sprintf(`
restless: {base_url: %[1]s, stream_base_url: %[1]s}
streams:
%[2]s
sink: {type: file, file: {path: %[3]s}}
checkpoint: {type: file, dir: %[4]s}
http: {addr: "127.0.0.1:0"}
`, em.URL(), streams, filepath.Join(dir, "events.jsonl"), filepath.Join(dir, "cp")))
	p := startIngest(t, map[string]string{"RESTLESS_API_KEY": testAPIKey}, append([]string{testAPIKey}, secrets...), "run", "-c", cfg)
	m := p.waitOutput(regexp.MustCompile(`http=http://(127\.0\.0\.1:\d+)`), 20*time.Second)
	return p, m[1]
}

// getBody fetches url and returns its body; a non-200 answer fails t.
func getBody(t *testing.T, url string) []byte {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s, %v", url, resp.Status, err)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("GET %s: Content-Type %q", url, ct)
	}
	return body
}

// streamFieldTypes is the schema of one object of GET /v1/streams (INGEST.md).
var streamFieldTypes = map[string]string{
	"name":             "string",
	"owner":            "string",
	"state":            "string",
	"cursor":           "string",
	"checkpoint":       "string",
	"events_published": "integer",
	"events_rejected":  "integer",
	"last_event_at":    "time or null",
	"lag_seconds":      "number",
	"last_error":       "string or null",
}

// checkStreamsSchema checks every object of a /v1/streams answer field by
// field: every field there, of its JSON type, and no other.
func checkStreamsSchema(t *testing.T, raw []byte) {
	t.Helper()
	var objs []map[string]json.RawMessage
	if err := json.Unmarshal(raw, &objs); err != nil {
		t.Fatalf("/v1/streams is not an array of objects: %v\n%s", err, raw)
	}
	for i, o := range objs {
		for k := range o {
			if _, ok := streamFieldTypes[k]; !ok {
				t.Errorf("stream %d: field %q is not in INGEST.md", i, k)
			}
		}
		for k, typ := range streamFieldTypes {
			v, ok := o[k]
			if !ok {
				t.Errorf("stream %d: field %q missing", i, k)
				continue
			}
			if err := checkJSONType(v, typ); err != nil {
				t.Errorf("stream %d: field %q = %s: %v", i, k, v, err)
			}
		}
		var state string
		_ = json.Unmarshal(o["state"], &state)
		if !slices.Contains(streamStates, state) {
			t.Errorf("stream %d: state %q is not one of %v", i, state, streamStates)
		}
	}
}

// checkJSONType reports whether v (one JSON value) is of typ.
func checkJSONType(v json.RawMessage, typ string) error {
	v = bytes.TrimSpace(v)
	if string(v) == "null" {
		if strings.HasSuffix(typ, " or null") {
			return nil
		}
		return fmt.Errorf("null, want %s", typ)
	}
	typ = strings.TrimSuffix(typ, " or null")
	switch typ {
	case "string", "time":
		var s string
		if err := json.Unmarshal(v, &s); err != nil {
			return fmt.Errorf("want a %s", typ)
		}
		if typ == "time" {
			if _, err := time.Parse(time.RFC3339, s); err != nil {
				return fmt.Errorf("not RFC 3339: %v", err)
			}
		}
	case "integer", "number":
		if len(v) == 0 || v[0] == '"' || v[0] == '{' || v[0] == '[' || v[0] == 't' || v[0] == 'f' {
			return fmt.Errorf("want a %s", typ)
		}
		var n json.Number
		if err := json.Unmarshal(v, &n); err != nil {
			return fmt.Errorf("want a %s: %v", typ, err)
		}
		if typ == "integer" {
			if _, err := n.Int64(); err != nil {
				return fmt.Errorf("want an integer")
			}
		}
	default:
		return fmt.Errorf("unknown type %q in the test", typ)
	}
	return nil
}

// TestStatusEndpointsAndCommand runs the daemon on three streams that settle
// in known states (connected with events, connected with only rejected
// events, stopped on a 404), checks /v1/streams field by field and
// /v1/cluster, and checks `ingest status` against the JSON.
func TestStatusEndpointsAndCommand(t *testing.T) {
	em := newTestEmulator(t)
	for _, s := range []emulator.StreamSpec{
		{ID: "st_quiet", URL: em.URL() + "/_emulator/demo/orders", Inactive: true, Secret: "quiet-secret-1"},
		{ID: "st_forged", URL: em.URL() + "/_emulator/demo/orders", Inactive: true, Secret: "forged-secret-2"},
	} {
		if _, err := em.CreateStream(s); err != nil {
			t.Fatal(err)
		}
	}
	const wrongSecret = "not-the-secret-3"
	_, addr := startStatusDaemon(t, em, `
  - {name: quiet, stream_id: st_quiet, verify: {secrets: [quiet-secret-1]}}
  - {name: forged, stream_id: st_forged, verify: {secrets: [`+wrongSecret+`]}}
  - {name: gone, stream_id: st_missing}`, []string{"quiet-secret-1", "forged-secret-2", wrongSecret})
	base := "http://" + addr

	byName := func(raw []byte) map[string]StreamStatus {
		var list []StreamStatus
		if err := json.Unmarshal(raw, &list); err != nil {
			t.Fatalf("decode /v1/streams: %v\n%s", err, raw)
		}
		out := map[string]StreamStatus{}
		for _, s := range list {
			out[s.Name] = s
		}
		return out
	}
	waitUntil(t, 20*time.Second, "quiet and forged connected", func() bool {
		s := byName(getBody(t, base+"/v1/streams"))
		return s["quiet"].State == streamConnected && s["forged"].State == streamConnected
	})
	var last string
	for i := range 3 {
		id, err := em.Publish("st_quiet", []byte(fmt.Sprintf(`{"n":%d}`, i)))
		if err != nil {
			t.Fatal(err)
		}
		last = id
	}
	var forgedLast string
	for i := range 2 {
		id, err := em.Publish("st_forged", []byte(fmt.Sprintf(`{"n":%d}`, i)))
		if err != nil {
			t.Fatal(err)
		}
		forgedLast = id
	}
	var raw []byte
	// Rejected events advance the checkpoint too, after they are counted:
	// settled means forged's checkpoint reached its last event as well.
	waitUntil(t, 20*time.Second, "every stream settled", func() bool {
		raw = getBody(t, base+"/v1/streams")
		s := byName(raw)
		return s["quiet"].EventsPublished == 3 && s["quiet"].Checkpoint == last &&
			s["forged"].EventsRejected == 2 && s["forged"].Checkpoint == forgedLast && s["gone"].State == streamStopped
	})
	checkStreamsSchema(t, raw)
	for _, secret := range []string{testAPIKey, "quiet-secret-1", "forged-secret-2", wrongSecret} {
		if bytes.Contains(raw, []byte(secret)) {
			t.Errorf("/v1/streams shows the secret %q", secret)
		}
	}

	streams := byName(raw)
	if len(streams) != 3 {
		t.Fatalf("%d streams, want 3:\n%s", len(streams), raw)
	}
	q, f, g := streams["quiet"], streams["forged"], streams["gone"]
	if q.State != streamConnected || q.Cursor != last || q.EventsRejected != 0 || q.LastEventAt == nil || q.LastError != nil {
		t.Errorf("quiet: %+v; want connected at %s, a last event, no error", q, last)
	}
	if since := time.Since(*q.LastEventAt); since < 0 || since > time.Minute {
		t.Errorf("quiet: last_event_at %v is not about now", q.LastEventAt)
	}
	if f.State != streamConnected || f.EventsPublished != 0 || f.Cursor != forgedLast {
		t.Errorf("forged: %+v; want connected at %s with nothing published", f, forgedLast)
	}
	if g.State != streamStopped || g.LastError == nil || !strings.Contains(*g.LastError, "404") || g.LastEventAt != nil || g.Cursor != "" {
		t.Errorf("gone: %+v; want stopped with the 404 as last_error, no event", g)
	}
	owner := q.Owner
	for _, s := range streams {
		if s.Owner == "" || s.Owner != owner {
			t.Errorf("%s: owner %q, want this process's %q", s.Name, s.Owner, owner)
		}
	}

	// /v1/cluster: a cluster of one, this process with every stream.
	var cl map[string]json.RawMessage
	if err := json.Unmarshal(getBody(t, base+"/v1/cluster"), &cl); err != nil || len(cl) != 1 || cl["members"] == nil {
		t.Fatalf("/v1/cluster: %v, %v: want exactly {\"members\": ...}", cl, err)
	}
	var members []map[string]json.RawMessage
	if err := json.Unmarshal(cl["members"], &members); err != nil || len(members) != 1 {
		t.Fatalf("/v1/cluster members: %s (%v): want one member", cl["members"], err)
	}
	var m MemberStatus
	_ = json.Unmarshal(cl["members"], &[]*MemberStatus{&m})
	if len(members[0]) != 2 || m.ID != owner || !slices.Equal(m.Streams, []string{"forged", "gone", "quiet"}) {
		t.Errorf("/v1/cluster member %s: want id %q and streams [forged gone quiet] and nothing else", cl["members"], owner)
	}

	// ingest status, between two identical answers so that both see the same.
	code, out, errOut := runIngest(t, nil, nil, "status", "--addr", addr)
	if code != 0 {
		t.Fatalf("status: exit %d, %s", code, errOut)
	}
	if again := getBody(t, base+"/v1/streams"); !bytes.Equal(again, raw) {
		t.Fatalf("the streams moved while the test read them:\n%s\n%s", raw, again)
	}
	checkStatusTable(t, out, raw)

	code, out, _ = runIngest(t, nil, nil, "status", "--addr", base, "--json")
	if code != 0 || out != string(raw) {
		t.Errorf("status --json: exit %d, printed\n%s\nwant the answer as received:\n%s", code, out, raw)
	}

	// A daemon that is not there: exit 1 and a message that says so.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()
	code, _, errOut = runIngest(t, nil, nil, "status", "--addr", closed)
	if code != 1 || !strings.Contains(errOut, "cannot reach the daemon at http://"+closed) {
		t.Errorf("status of no daemon: exit %d, %q; want 1 and a message naming the address", code, errOut)
	}
	if code, _, _ = runIngest(t, nil, nil, "status", "--addr", "ftp://x"); code != 2 {
		t.Errorf("status --addr ftp://x: exit %d, want 2", code)
	}
}

// checkStatusTable checks `ingest status`'s table against the JSON it shows:
// the header, then one row per stream in the same order with every field.
func checkStatusTable(t *testing.T, table string, raw []byte) {
	t.Helper()
	var list []StreamStatus
	if err := json.Unmarshal(raw, &list); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimRight(table, "\n"), "\n")
	if len(lines) != len(list)+1 {
		t.Fatalf("status printed %d lines, want a header and %d rows:\n%s", len(lines), len(list), table)
	}
	if got := strings.Join(strings.Fields(lines[0]), " "); got != strings.Join(statusColumns, " ") {
		t.Errorf("header %q", lines[0])
	}
	for i, s := range list {
		f := strings.Fields(lines[i+1])
		if len(f) < 10 {
			t.Errorf("row %d: %q has fewer than 10 columns", i, lines[i+1])
			continue
		}
		orDash := func(v string) string {
			if v == "" {
				return "-"
			}
			return v
		}
		want := []string{s.Name, s.Owner, s.State, orDash(s.Cursor), orDash(s.Checkpoint),
			strconv.FormatInt(s.EventsPublished, 10), strconv.FormatInt(s.EventsRejected, 10)}
		if s.LastEventAt == nil {
			want = append(want, "-")
		} else {
			want = append(want, s.LastEventAt.UTC().Truncate(time.Second).Format(time.RFC3339))
		}
		want = append(want, strconv.FormatFloat(s.LagSeconds, 'f', 3, 64)+"s")
		if s.LastError == nil {
			want = append(want, "-")
		} else {
			want = append(want, strings.Join(strings.Fields(*s.LastError), " "))
		}
		got := append(f[:9:9], strings.Join(f[9:], " "))
		for c := range want {
			if got[c] != want[c] {
				t.Errorf("row %d (%s), column %s: %q, JSON says %q", i, s.Name, statusColumns[c], got[c], want[c])
			}
		}
	}
}
