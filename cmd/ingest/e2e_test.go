package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/restless-stream/ingest/checkpoint"
	"github.com/restless-stream/ingest/client"
	"github.com/restless-stream/ingest/emulator"
	"github.com/restless-stream/ingest/internal/testenv"
	"github.com/restless-stream/ingest/pipeline"
	filesink "github.com/restless-stream/ingest/sink/file"
)

// firehoseStream is a finite signed firehose on the emulator.
type firehoseStream struct {
	name, id, secret string
	start, count     int64
}

func newFirehose(t *testing.T, em *emulator.Emulator, name string, count int64) firehoseStream {
	t.Helper()
	fh := firehoseStream{name: name, id: "fh_" + name, secret: "hmac-" + name + "-7c1d0e", start: 1_700_000_000_000, count: count}
	if _, err := em.CreateFirehose(emulator.FirehoseConfig{ID: fh.id, EventBytes: 600, Count: count, Secret: fh.secret, StartID: fh.start}); err != nil {
		t.Fatal(err)
	}
	return fh
}

// delivered is one record as read back from a broker.
type delivered struct {
	dest    string
	key     string
	headers map[string]string
	value   []byte
}

// checkDelivery asserts that every event of each firehose arrived exactly once,
// in order, with the specified headers and a signature that verifies.
func checkDelivery(t *testing.T, recs []delivered, streams []firehoseStream, dest func(firehoseStream) string) {
	t.Helper()
	byDest := map[string][]delivered{}
	for _, r := range recs {
		byDest[r.dest] = append(byDest[r.dest], r)
	}
	for _, fh := range streams {
		got := byDest[dest(fh)]
		if int64(len(got)) != fh.count {
			t.Errorf("%s: %d records, want %d (every event once)", fh.name, len(got), fh.count)
		}
		v, err := client.NewVerifier([]string{fh.secret})
		if err != nil {
			t.Fatal(err)
		}
		for i, r := range got {
			wantID := strconv.FormatInt(fh.start+int64(i)+1, 10)
			ev, err := client.ParseEvent(r.value)
			if err != nil {
				t.Fatalf("%s record %d: value is not the event: %v", fh.name, i, err)
			}
			if ev.EventID != wantID {
				t.Fatalf("%s record %d: event_id %s, want %s (in order, no gap, no repeat)", fh.name, i, ev.EventID, wantID)
			}
			if err := v.Verify(ev.Data, ev.Signature); err != nil {
				t.Fatalf("%s record %d: signature does not verify: %v", fh.name, i, err)
			}
			want := map[string]string{
				pipeline.HeaderStream: fh.name, pipeline.HeaderEventID: wantID, pipeline.HeaderEventType: "update",
				pipeline.HeaderTimestamp: ev.Meta.Timestamp, pipeline.HeaderVerified: "true", pipeline.HeaderContentType: pipeline.ContentTypeJSON,
			}
			for k, w := range want {
				if r.headers[k] != w {
					t.Fatalf("%s record %d: header %s = %q, want %q", fh.name, i, k, r.headers[k], w)
				}
			}
		}
	}
}

func TestRunIntoJetStream(t *testing.T) {
	testenv.Require(t, testenv.WhatNATS, testenv.DialNATS())
	em := newTestEmulator(t)
	streams := []firehoseStream{newFirehose(t, em, "sse_a", 1500), newFirehose(t, em, "ws_b", 1500)}
	dir := t.TempDir()
	js := uniqueName("E2E_")
	base := strings.ToLower(js)
	cfg := writeConfig(t, dir, fmt.Sprintf(`
restless: {base_url: %[1]s, stream_base_url: %[1]s}
streams:
  - name: sse_a
    stream_id: fh_sse_a
    destination: %[2]s.a
    verify: {secrets: ["${SECRET_A}"]}
    reconnect: {initial: 50ms, max: 200ms}
  - name: ws_b
    transport: websocket
    stream_id: fh_ws_b
    destination: %[2]s.b
    verify: {secrets: ["${SECRET_B}"]}
    reconnect: {initial: 50ms, max: 200ms}
sink:
  type: nats
  nats: {url: nats://127.0.0.1:4222, stream: %[3]s, base_subject: "%[2]s.>", duplicate_window: 1m}
checkpoint: {type: file, dir: %[4]s}
http: {addr: ""}
log: {level: debug, format: json}
`, em.URL(), base, js, filepath.Join(dir, "cp")))

	nc, err := nats.Connect("nats://127.0.0.1:4222")
	if err != nil {
		t.Fatal(err)
	}
	// Cleanups run last-registered first: the stream is deleted, then the
	// connection closed (a defer would close it before the deletion).
	t.Cleanup(nc.Close)
	jsc, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = jsc.DeleteStream(context.Background(), js) })

	env := map[string]string{"RESTLESS_API_KEY": testAPIKey, "SECRET_A": streams[0].secret, "SECRET_B": streams[1].secret}
	secrets := []string{testAPIKey, streams[0].secret, streams[1].secret}
	// Both firehoses end (204 after their last event): the daemon exits 0 by itself.
	code, _, _ := runIngest(t, env, secrets, "run", "-c", cfg)
	if code != 0 {
		t.Fatalf("exit code %d, want 0 after every stream ended", code)
	}

	ctx := ctxT(t, 30*time.Second)
	cons, err := jsc.OrderedConsumer(ctx, js, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	var recs []delivered
	for len(recs) < 3000 {
		batch, err := cons.Fetch(1000, jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for m := range batch.Messages() {
			n++
			h := map[string]string{}
			for k := range m.Headers() {
				h[k] = m.Headers().Get(k)
			}
			if id := h["Nats-Msg-Id"]; id != h[pipeline.HeaderStream]+":"+h[pipeline.HeaderEventID] {
				t.Fatalf("Nats-Msg-Id %q, want <stream>:<event_id>", id)
			}
			recs = append(recs, delivered{dest: m.Subject(), headers: h, value: m.Data()})
		}
		if n == 0 {
			break
		}
	}
	checkDelivery(t, recs, streams, func(f firehoseStream) string {
		return map[string]string{"sse_a": base + ".a", "ws_b": base + ".b"}[f.name]
	})
	// The checkpoint stands at each stream's last event.
	st, err := checkpoint.NewFile(filepath.Join(dir, "cp"))
	if err != nil {
		t.Fatal(err)
	}
	for _, fh := range streams {
		cur, ok, err := st.Load(ctx, fh.name)
		if want := strconv.FormatInt(fh.start+fh.count, 10); err != nil || !ok || cur != want {
			t.Errorf("%s checkpoint = %q, %v, %v; want %s", fh.name, cur, ok, err, want)
		}
	}
}

func TestRunIntoKafka(t *testing.T) {
	em := newTestEmulator(t)
	streams := []firehoseStream{newFirehose(t, em, "orders", 2000), newFirehose(t, em, "payments", 1000)}
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	dir := t.TempDir()
	const password = "kafka-password-never-printed"
	cfg := writeConfig(t, dir, fmt.Sprintf(`
restless: {base_url: %[1]s, stream_base_url: %[1]s}
streams:
  - name: orders
    stream_id: fh_orders
    verify: {secrets: ["${SECRET_ORDERS}"]}
    reconnect: {initial: 50ms, max: 200ms}
  - name: payments
    transport: websocket
    stream_id: fh_payments
    verify: {secrets: ["${SECRET_PAYMENTS}"]}
    reconnect: {initial: 50ms, max: 200ms}
sink:
  type: kafka
  kafka: {brokers: [%[2]s], create_topics: true, partitions: 3}
checkpoint: {type: file, dir: %[3]s}
http: {addr: ""}
`, em.URL(), cluster.ListenAddrs()[0], filepath.Join(dir, "cp")))
	env := map[string]string{"RESTLESS_API_KEY": testAPIKey, "SECRET_ORDERS": streams[0].secret, "SECRET_PAYMENTS": streams[1].secret,
		"INGEST_SINK__KAFKA__SASL__PASSWORD": password}
	code, _, _ := runIngest(t, env, []string{testAPIKey, streams[0].secret, streams[1].secret, password}, "run", "-c", cfg)
	if code != 0 {
		t.Fatalf("exit code %d, want 0 after every stream ended", code)
	}

	cl, err := kgo.NewClient(kgo.SeedBrokers(cluster.ListenAddrs()...),
		kgo.ConsumeTopics("restless.orders", "restless.payments"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx := ctxT(t, 30*time.Second)
	var recs []delivered
	for len(recs) < 3000 && ctx.Err() == nil {
		fs := cl.PollFetches(ctx)
		fs.EachRecord(func(r *kgo.Record) {
			h := map[string]string{}
			for _, x := range r.Headers {
				h[x.Key] = string(x.Value)
			}
			if string(r.Key) != h[pipeline.HeaderStream] {
				t.Fatalf("key %q, want the stream name %q", r.Key, h[pipeline.HeaderStream])
			}
			recs = append(recs, delivered{dest: r.Topic, key: string(r.Key), headers: h, value: r.Value})
		})
	}
	t.Logf("kafka: %d records", len(recs))
	checkDelivery(t, recs, streams, func(f firehoseStream) string { return "restless." + f.name })
}

func TestCheckCommand(t *testing.T) {
	dir := t.TempDir()
	const apiKey, hmac = "rs_check_0123456789abcdef", "hmac-check-secret-42"
	good := writeConfig(t, dir, `
restless: {api_key: "${MY_KEY}"}
streams:
  - name: orders
    stream_id: stream_123
    verify: {secrets: ["`+hmac+`"]}
`)
	env := map[string]string{"MY_KEY": apiKey}
	code, out, _ := runIngest(t, env, []string{apiKey, hmac}, "check", "-c", good)
	if code != 0 {
		t.Fatalf("check good config: exit %d", code)
	}
	for _, want := range []string{"destination: restless.orders", "mode: require", "[REDACTED]", "idle_timeout: 1m0s"} {
		if !strings.Contains(out, want) {
			t.Errorf("effective configuration lacks %q:\n%s", want, out)
		}
	}

	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte(`
restless: {api_key: `+apiKey+`}
streams:
  - name: orders
    stream_id: a
    url: http://x/
    idle_timeout: soon
  - name: orders
    session_id: s
sink: {type: kafka, kafka: {sasl: {mechanism: plain, username: u}}}
`), 0o600)
	code, _, errOut := runIngest(t, nil, []string{apiKey}, "check", "-c", bad)
	if code != 2 {
		t.Fatalf("check bad config: exit %d, want 2", code)
	}
	for _, want := range []string{`streams[0].idle_timeout: "soon" is not a duration (e.g. 30s)`} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errOut)
		}
	}
	bad2 := filepath.Join(dir, "bad2.yaml")
	os.WriteFile(bad2, []byte(`
streams:
  - name: orders
    stream_id: a
    url: http://x/
  - name: orders
    session_id: s
sink: {type: kafka, kafka: {sasl: {mechanism: plain, username: u}}}
`), 0o600)
	code, _, errOut = runIngest(t, map[string]string{"INGEST_LOG__LEVEL": "loud"}, nil, "check", "--config", bad2)
	if code != 2 {
		t.Fatalf("exit %d, want 2", code)
	}
	for _, want := range []string{"streams[0]: stream_id and url", "streams[1].name: \"orders\" duplicates the name of Streams[0]",
		"sink.kafka.sasl.password: required", "log.level: \"loud\" is not one of"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errOut)
		}
	}

	code, _, errOut = runIngest(t, nil, nil, "run")
	if code != 2 || !strings.Contains(errOut, "ingest demo") || !strings.Contains(errOut, "INGEST_CONFIG") {
		t.Errorf("run without config: exit %d, stderr %q; want 2 pointing at ingest demo", code, errOut)
	}
	code, _, errOut = runIngest(t, nil, nil, "run", "-c", filepath.Join(dir, "missing.yaml"))
	if code != 2 || !strings.Contains(errOut, "-c: cannot read") {
		t.Errorf("missing file: exit %d, stderr %q", code, errOut)
	}
	code, out, _ = runIngest(t, nil, nil, "version")
	if code != 0 || !strings.Contains(out, "go1.") {
		t.Errorf("version: exit %d, %q", code, out)
	}
	if code, _, _ = runIngest(t, nil, nil, "frobnicate"); code != 2 {
		t.Errorf("unknown command: exit %d, want 2", code)
	}
}

// TestSIGTERMDrainsAndRestartResumes: under load, SIGTERM drains and exits 0 with
// the checkpoint at the last published event; a restart continues from there
// with no event lost or repeated.
func TestSIGTERMDrainsAndRestartResumes(t *testing.T) {
	em := newTestEmulator(t)
	if _, err := em.CreateFirehose(emulator.FirehoseConfig{ID: "fh_load", EventBytes: 512, Rate: 3000, Secret: "load-secret-1", StartID: 5_000_000}); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	events := filepath.Join(dir, "events.jsonl")
	cp := filepath.Join(dir, "cp")
	cfg := writeConfig(t, dir, fmt.Sprintf(`
restless: {base_url: %[1]s, stream_base_url: %[1]s}
streams:
  - name: load
    stream_id: fh_load
    verify: {secrets: [load-secret-1]}
sink: {type: file, file: {path: %[2]s}}
checkpoint: {type: file, dir: %[3]s}
http: {addr: "127.0.0.1:0"}
log: {level: info}
`, em.URL(), events, cp))
	env := map[string]string{"RESTLESS_API_KEY": testAPIKey}
	secrets := []string{testAPIKey, "load-secret-1"}
	count := func() int {
		lines, _, err := filesink.ReadFile(events)
		if err != nil {
			return 0
		}
		return len(lines)
	}

	var last string
	for run, target := range []int{1500, 3500} {
		p := startIngest(t, env, secrets, "run", "-c", cfg)
		m := p.waitOutput(regexp.MustCompile(`http=http://(127\.0\.0\.1:\d+)`), 20*time.Second)
		waitUntil(t, 30*time.Second, "events in the file", func() bool { return count() >= target })
		resp, err := http.Get("http://" + m[1] + "/readyz")
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("run %d: /readyz = %v, %v; want 200 while streaming", run, resp, err)
		}
		resp.Body.Close()
		p.signal(syscall.SIGTERM)
		if code := p.wait(30 * time.Second); code != 0 {
			t.Fatalf("run %d: exit code %d after SIGTERM, want 0", run, code)
		}
		lines, torn, err := filesink.ReadFile(events)
		if err != nil || torn != 0 {
			t.Fatalf("read events: %v (torn %d)", err, torn)
		}
		last = lines[len(lines)-1].Headers[pipeline.HeaderEventID]
		st, err := checkpoint.NewFile(cp)
		if err != nil {
			t.Fatal(err)
		}
		cur, ok, err := st.Load(context.Background(), "load")
		if err != nil || !ok || cur != last {
			t.Fatalf("run %d: checkpoint %q (%v, %v), want the last published event %s", run, cur, ok, err, last)
		}
	}
	lines, _, _ := filesink.ReadFile(events)
	for i, l := range lines {
		want := strconv.Itoa(5_000_000 + i + 1)
		if got := l.Headers[pipeline.HeaderEventID]; got != want {
			t.Fatalf("record %d: event_id %s, want %s: across the restart nothing is lost or repeated", i, got, want)
		}
	}
	if got := lines[len(lines)-1].Headers[pipeline.HeaderEventID]; got != last {
		t.Fatalf("last %s != %s", got, last)
	}
}

// TestEveryStreamFailingExits1 runs against a server that refuses the key: the
// stream stops for good, the daemon exits 1, and the key is never printed.
func TestEveryStreamFailingExits1(t *testing.T) {
	em := newTestEmulator(t)
	newFirehose(t, em, "denied", 10)
	dir := t.TempDir()
	const wrongKey = "rs_wrong_key_abcdef0123456789"
	cfg := writeConfig(t, dir, fmt.Sprintf(`
restless: {base_url: %[1]s, stream_base_url: %[1]s}
streams: [{name: denied, stream_id: fh_denied}]
sink: {type: stdout}
checkpoint: {type: memory}
http: {addr: ""}
log: {format: json}
`, em.URL()))
	code, _, errOut := runIngest(t, map[string]string{"RESTLESS_API_KEY": wrongKey}, []string{wrongKey}, "run", "-c", cfg)
	if code != 1 {
		t.Fatalf("exit code %d, want 1 when every stream stopped for good", code)
	}
	if !strings.Contains(errOut, "401") {
		t.Errorf("stderr does not say why (401):\n%s", errOut)
	}
}

func TestDemo(t *testing.T) {
	p := startIngest(t, nil, nil, "demo", "--http-addr", "127.0.0.1:0")
	m := p.waitOutput(regexp.MustCompile(`nats sub 'restless\.>' -s nats://127\.0\.0\.1:(\d+)`), 30*time.Second)
	if natsAvailable() && m[1] == "4222" {
		t.Errorf("demo chose port 4222, which is taken")
	}
	if natsAvailable() && !strings.Contains(p.stdout.String(), "port 4222 is taken") {
		t.Errorf("demo does not say that port 4222 is taken")
	}
	p.waitOutput(regexp.MustCompile(`restless\.demo\s+#\d+ update verified`), 30*time.Second)
	p.signal(syscall.SIGINT)
	if code := p.wait(20 * time.Second); code != 0 {
		t.Fatalf("demo exit code %d after SIGINT, want 0", code)
	}
	if !regexp.MustCompile(`demo stopped: \d+ received, [1-9]\d* published`).MatchString(p.stdout.String()) {
		t.Errorf("no final summary with published events")
	}
}
