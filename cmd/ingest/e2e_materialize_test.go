package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/restless-stream/ingest/checkpoint"
	"github.com/restless-stream/ingest/client"
	"github.com/restless-stream/ingest/emulator"
	"github.com/restless-stream/ingest/internal/testenv"
	"github.com/restless-stream/ingest/pipeline"
)

// upstreamDoc is the upstream's document at version v: every part of it
// depends on v, so a document patched from the wrong one never equals it.
func upstreamDoc(v int64) string {
	items := make([]string, 0, v%7)
	for i := int64(0); i < v%7; i++ {
		items = append(items, fmt.Sprintf(`{"id":"o%d","total":%d.5,"tag":"<&> %d"}`, i, v*10+i, v))
	}
	return fmt.Sprintf(`{"v":%d,"items":[%s],"parity":%q,"nested":{"k%d":%d}}`, v, strings.Join(items, ","), []string{"even", "odd"}[v%2], v%3, v)
}

func docVersion(t *testing.T, b []byte) int64 {
	t.Helper()
	var d struct {
		V *int64 `json:"v"`
	}
	if err := json.Unmarshal(b, &d); err != nil || d.V == nil {
		t.Fatalf("document %s has no version: %v", b, err)
	}
	return *d.V
}

func sameJSONDoc(a, b []byte) bool {
	var va, vb any
	return json.Unmarshal(a, &va) == nil && json.Unmarshal(b, &vb) == nil && reflect.DeepEqual(va, vb)
}

// TestMaterializeIntoJetStream: an emulator JSON_PATCH stream whose
// upstream document keeps changing, through the daemon binary into
// JetStream with materialize.destination set: every published document is
// the upstream's document of its version, across a kill -9 and a restart,
// and with corrupted patches injected, which are dead-lettered as
// patch_failed, publish no document, and are followed by a resynchronised
// document after the stream reconnects.
func TestMaterializeIntoJetStream(t *testing.T) {
	testenv.Require(t, testenv.WhatNATS, testenv.DialNATS())
	var version atomic.Int64
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, upstreamDoc(version.Load()))
	}))
	defer up.Close()
	em := newTestEmulator(t)
	info, err := em.CreateStream(emulator.StreamSpec{ID: "st_mat", Name: "prices", URL: up.URL, PayloadMode: client.PayloadJSONPatch, PollingInterval: 0.01})
	if err != nil {
		t.Fatal(err)
	}
	bumpCtx, stopBump := context.WithCancel(context.Background())
	bumped := make(chan struct{})
	startBump := func() {
		defer close(bumped)
		tick := time.NewTicker(30 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-tick.C:
				version.Add(1)
			case <-bumpCtx.Done():
				return
			}
		}
	}
	defer func() {
		stopBump()
		select {
		case <-bumped:
		case <-time.After(time.Second): // never started
		}
	}()

	dir := t.TempDir()
	js := uniqueName("E2EMAT_")
	base := strings.ToLower(js)
	cfg := writeConfig(t, dir, fmt.Sprintf(`
restless: {base_url: %[1]s, stream_base_url: %[1]s}
streams:
  - name: prices
    stream_id: %[5]s
    destination: %[2]s.ev
    materialize: {destination: %[2]s.doc}
    reconnect: {initial: 50ms, max: 200ms}
pipeline: {dead_letter: %[2]s.dlq}
sink:
  type: nats
  nats: {url: nats://127.0.0.1:4222, stream: %[3]s, base_subject: "%[2]s.>", duplicate_window: 5m}
checkpoint: {type: file, dir: %[4]s}
http: {addr: ""}
log: {level: debug, format: json}
`, em.URL(), base, js, filepath.Join(dir, "cp"), info.ID))

	nc, err := nats.Connect("nats://127.0.0.1:4222")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	jsc, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = jsc.DeleteStream(context.Background(), js) })
	lastDoc := func() (int64, bool) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		s, err := jsc.Stream(ctx, js)
		if err != nil {
			return 0, false
		}
		m, err := s.GetLastMsgForSubject(ctx, base+".doc")
		if err != nil {
			return 0, false
		}
		return docVersion(t, m.Data), true
	}
	countSubject := func(subj string) uint64 {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		s, err := jsc.Stream(ctx, js)
		if err != nil {
			return 0
		}
		si, err := s.Info(ctx, jetstream.WithSubjectFilter(subj))
		if err != nil {
			return 0
		}
		return si.State.Subjects[subj]
	}

	env := map[string]string{"RESTLESS_API_KEY": testAPIKey}
	secrets := []string{testAPIKey}

	// 1. Run, then kill -9 in the middle of the stream.
	p1 := startIngest(t, env, secrets, "run", "-c", cfg)
	p1.waitOutput(regexp.MustCompile(`"msg":"source connected"`), 60*time.Second)
	go startBump()
	waitUntil(t, 60*time.Second, "documents published", func() bool { return countSubject(base+".doc") >= 15 })
	if err := p1.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	p1.wait(10 * time.Second)

	// 2. Restart with corrupted patches on the next two connections, each
	// cut after a few events so that the stream reconnects and gets a full
	// document again.
	if err := em.SetFaults(info.ID, emulator.Faults{CorruptPatchEvery: 3, CloseAfter: 8, Connections: 2}); err != nil {
		t.Fatal(err)
	}
	p2 := startIngest(t, env, secrets, "run", "-c", cfg)
	waitUntil(t, 60*time.Second, "patch_failed dead letters", func() bool { return countSubject(base+".dlq") >= 2 })
	// The two faulty connections end after 8 events each: the third one
	// has no faults, and starts with the full document.
	waitUntil(t, 60*time.Second, "the third connection", func() bool {
		return strings.Count(p2.stderr.String(), `"msg":"source connected"`) >= 3
	})
	after := version.Load()
	waitUntil(t, 60*time.Second, "a document after the corrupted patches", func() bool { v, ok := lastDoc(); return ok && v > after+5 })

	// 3. The upstream stops changing; the last document is its document.
	stopBump()
	<-bumped
	final := version.Load()
	waitUntil(t, 60*time.Second, "the final document", func() bool { v, ok := lastDoc(); return ok && v == final })
	p2.signal(syscall.SIGTERM)
	if code := p2.wait(30 * time.Second); code != 0 {
		t.Fatalf("exit code %d after SIGTERM", code)
	}

	ctx := ctxT(t, 30*time.Second)
	cons, err := jsc.OrderedConsumer(ctx, js, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	type msg struct {
		subj string
		h    nats.Header
		data []byte
	}
	var msgs []msg
	for {
		batch, err := cons.Fetch(1000, jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for m := range batch.Messages() {
			n++
			msgs = append(msgs, msg{m.Subject(), m.Headers(), m.Data()})
		}
		if n == 0 {
			break
		}
	}
	events := map[string]bool{}
	var docsN, dlqN int
	lastV, lastDLQ, lastDocAt := int64(-1), -1, -1
	for i, m := range msgs {
		switch m.subj {
		case base + ".ev":
			events[m.h.Get(pipeline.HeaderEventID)] = true
		case base + ".doc":
			docsN++
			lastDocAt = i
			id := m.h.Get(pipeline.HeaderEventID)
			if m.h.Get(pipeline.HeaderMaterialized) != "true" || m.h.Get(pipeline.HeaderStream) != "prices" || m.h.Get("Nats-Msg-Id") != "prices:"+id+":materialized" {
				t.Errorf("document of event %s: headers %v", id, m.h)
			}
			v := docVersion(t, m.data)
			if !sameJSONDoc(m.data, []byte(upstreamDoc(v))) {
				t.Errorf("document of event %s is not the upstream's document of version %d:\n got %s\nwant %s", id, v, m.data, upstreamDoc(v))
			}
			if v < lastV {
				t.Errorf("document of event %s: version %d after %d", id, v, lastV)
			}
			lastV = v
		case base + ".dlq":
			dlqN++
			lastDLQ = i
			if r := m.h.Get(pipeline.HeaderDLQReason); r != pipeline.ReasonPatchFailed {
				t.Errorf("dead letter with reason %q: %s", r, m.data)
			}
			if !events[m.h.Get(pipeline.HeaderEventID)] {
				// The event's own record goes out after its dead-letter copy.
				var ev struct {
					EventID string `json:"event_id"`
				}
				_ = json.Unmarshal(m.data, &ev)
				if ev.EventID != m.h.Get(pipeline.HeaderEventID) {
					t.Errorf("dead letter of event %q holds %s", m.h.Get(pipeline.HeaderEventID), m.data)
				}
			}
		}
	}
	for _, m := range msgs {
		if m.subj == base+".dlq" && !events[m.h.Get(pipeline.HeaderEventID)] {
			t.Errorf("event %s was dead-lettered but its own record is missing", m.h.Get(pipeline.HeaderEventID))
		}
	}
	if dlqN < 2 || docsN < 20 || lastDocAt < lastDLQ {
		t.Errorf("%d documents, %d dead letters; last document at %d, last dead letter at %d: want a resynchronised document after the dead letters", docsN, dlqN, lastDocAt, lastDLQ)
	}
	if lastV != final {
		t.Errorf("last document version %d, want %d", lastV, final)
	}
	// The checkpoint holds the last document with its cursor.
	st, err := checkpoint.NewFile(filepath.Join(dir, "cp"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	_, doc, ok, err := st.LoadDocument(ctx, "prices")
	if err != nil || !ok || !sameJSONDoc(doc, []byte(upstreamDoc(final))) {
		t.Errorf("checkpoint document %s, %v, %v; want version %d", doc, ok, err, final)
	}
	t.Logf("%d records: %d documents, %d patch_failed dead letters, final version %d", len(msgs), docsN, dlqN, final)
}
