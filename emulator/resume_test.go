package emulator

import (
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/restless-stream/ingest/client"
)

// publishN publishes n updates {"n":i} and returns their ids.
func publishN(t *testing.T, e *Emulator, id string, from, n int) []string {
	t.Helper()
	var ids []string
	for i := from; i < from+n; i++ {
		evID, err := e.Publish(id, []byte(`{"n":`+strconv.Itoa(i)+`}`))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, evID)
	}
	return ids
}

func inactiveStream(t *testing.T, e *Emulator, mode client.PayloadMode) StreamInfo {
	t.Helper()
	info, err := e.CreateStream(StreamSpec{URL: "http://127.0.0.1:1/", Inactive: true, PayloadMode: mode})
	if err != nil {
		t.Fatal(err)
	}
	return info
}

func TestResume(t *testing.T) {
	e := startEmu(t, Options{})
	// Each case reads its own stream of five events {"n":0} … {"n":4}; the
	// query names them by index: {0} is the id of event 0, {ts4} the time of event 4.
	tests := []struct {
		name  string
		query string
		hdr   string // Last-Event-ID
		ws    bool
		first string // data of the first event expected
	}{
		{"Last-Event-ID", "", "{1}", false, `{"n":2}`},
		{"cursor", "&cursor={2}", "", false, `{"n":3}`},
		{"cursor wins over since", "&cursor={2}&since={0}", "", false, `{"n":3}`},
		{"since cursor", "&since={0}", "", false, `{"n":1}`},
		{"since timestamp", "&since={ts4}", "", false, `{"n":4}`},
		{"unknown cursor", "&cursor=abc", "", false, `{"n":0}`},
		{"too old cursor", "&cursor=1", "", false, `{"n":0}`},
		{"no cursor: latest", "", "", false, `{"n":4}`},
		{"ws cursor", "&cursor={3}", "", true, `{"n":4}`},
		{"ws since", "&since={1}", "", true, `{"n":2}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			info := inactiveStream(t, e, "")
			ids := publishN(t, e, info.ID, 0, 5)
			last, _ := strconv.ParseInt(ids[4], 10, 64)
			r := strings.NewReplacer("{0}", ids[0], "{1}", ids[1], "{2}", ids[2], "{3}", ids[3],
				"{ts4}", url.QueryEscape(time.UnixMilli(last).UTC().Format(time.RFC3339Nano)))
			var hdr map[string]string
			if tt.hdr != "" {
				hdr = map[string]string{"Last-Event-ID": r.Replace(tt.hdr)}
			}
			var sub *subscriber
			if tt.ws {
				sub = subscribeWS(t, wsURL(e, info.ID)+r.Replace(tt.query))
			} else {
				sub = subscribeSSE(t, sseURL(e, info.ID)+r.Replace(tt.query), hdr)
			}
			ev := sub.next(t)
			if string(ev.ev.Data) != tt.first {
				t.Fatalf("first event %s, want data %s", ev.raw, tt.first)
			}
			for string(ev.ev.Data) != `{"n":4}` {
				ev = sub.next(t)
			}
			// Then live events.
			live := publishN(t, e, info.ID, 100, 1)
			if ev = sub.next(t); ev.id != live[0] || string(ev.ev.Data) != `{"n":100}` {
				t.Fatalf("live event %s", ev.raw)
			}
		})
	}
}

// A reconnect with the last cursor resumes exactly where the client left off.
func TestReconnectResumesExactly(t *testing.T) {
	for _, mode := range []client.PayloadMode{client.PayloadFullData, client.PayloadJSONPatch} {
		t.Run(string(mode), func(t *testing.T) {
			e := startEmu(t, Options{})
			info := inactiveStream(t, e, mode)
			publishN(t, e, info.ID, 0, 3)
			sub := subscribeSSE(t, sseURL(e, info.ID)+"&cursor=0", nil)
			var cursor string
			for i := 0; i < 3; i++ {
				cursor = sub.next(t).id
			}
			sub.close()
			publishN(t, e, info.ID, 3, 3)
			sub = subscribeSSE(t, sseURL(e, info.ID), map[string]string{"Last-Event-ID": cursor})
			for i := 3; i < 6; i++ {
				r := sub.next(t)
				if mode == client.PayloadJSONPatch && i == 3 {
					if string(r.ev.Meta.PayloadModeFallback) != `"FULL_DATA"` {
						t.Fatalf("first event after reconnect is not the full document: %s", r.raw)
					}
				}
				if mode == client.PayloadJSONPatch && i > 3 && !strings.HasPrefix(string(r.ev.Data), "[") {
					t.Fatalf("event %d is not a patch: %s", i, r.raw)
				}
				if mode == client.PayloadFullData && string(r.ev.Data) != `{"n":`+strconv.Itoa(i)+`}` {
					t.Fatalf("event %d: %s", i, r.raw)
				}
				verify(t, info.Secret, r)
			}
		})
	}
}

// A replay buffer smaller than the backlog keeps the newest events.
func TestReplayBufferBounded(t *testing.T) {
	e := startEmu(t, Options{ReplayBuffer: 4})
	info := inactiveStream(t, e, "")
	ids := publishN(t, e, info.ID, 0, 10)
	sub := subscribeSSE(t, sseURL(e, info.ID)+"&cursor="+ids[0], nil)
	for i := 6; i < 10; i++ {
		if r := sub.next(t); r.id != ids[i] {
			t.Fatalf("got %s, want %s (event %d)", r.id, ids[i], i)
		}
	}
}

func TestManySubscribers(t *testing.T) {
	e := startEmu(t, Options{})
	info := inactiveStream(t, e, client.PayloadJSONPatch)
	const subs, events = 40, 30
	var all []*subscriber
	for i := 0; i < subs; i++ {
		if i%2 == 0 {
			all = append(all, subscribeSSE(t, sseURL(e, info.ID), nil))
		} else {
			all = append(all, subscribeWS(t, wsURL(e, info.ID)))
		}
	}
	for e.Subscribers(info.ID) != subs {
		time.Sleep(time.Millisecond) // connections register asynchronously
	}
	ids := publishN(t, e, info.ID, 0, events)
	var wg sync.WaitGroup
	errs := make(chan string, subs)
	for _, s := range all {
		wg.Go(func() {
			for i := 0; i < events; i++ {
				select {
				case r := <-s.ch:
					if r.err != nil || r.id != ids[i] {
						errs <- "event " + strconv.Itoa(i) + ": got " + r.id + " " + string(r.raw)
						return
					}
				case <-time.After(waitLong):
					errs <- "timeout"
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}

// The upstream's failures become error events with the status in meta.status.
func TestErrorEvents(t *testing.T) {
	up := &upstream{}
	up.set(200, `{"ok":true}`)
	srv := httptest.NewServer(up)
	defer srv.Close()
	e := startEmu(t, Options{})
	info, err := e.CreateStream(StreamSpec{URL: srv.URL, PollingInterval: 0.01})
	if err != nil {
		t.Fatal(err)
	}
	sub := subscribeSSE(t, sseURL(e, info.ID), nil)
	if r := sub.next(t); r.ev.Type != "update" {
		t.Fatalf("first event %s", r.raw)
	}
	steps := []struct {
		status int
		body   string
		want   string
		code   int
	}{
		{503, `{"down":true}`, "upstream answered 503", 503},
		{200, `not json`, "not JSON", 200},
		{200, ``, "empty", 200},
	}
	for _, s := range steps {
		up.set(s.status, s.body)
		r := sub.next(t)
		if r.ev.Type != "error" || r.ev.Meta.Status != s.code || !strings.Contains(r.ev.ErrorMessage(), s.want) || r.ev.Data != nil || r.ev.Signature != "" {
			t.Fatalf("after %d %q: %s", s.status, s.body, r.raw)
		}
	}
	up.set(200, `{"ok":2}`)
	if r := sub.next(t); r.ev.Type != "update" || string(r.ev.Data) != `{"ok":2}` {
		t.Fatalf("recovery event %s", r.raw)
	}
	srv.Close()
	if r := sub.next(t); r.ev.Type != "error" || r.ev.Meta.Status != 0 || strings.Contains(r.ev.ErrorMessage(), srv.URL) {
		t.Fatalf("unreachable upstream: %s", r.raw)
	}
}

func TestJQFilterAndDemo(t *testing.T) {
	up := &upstream{}
	up.set(200, `{"data":{"items":[{"id":1},{"id":2}]}}`)
	srv := httptest.NewServer(up)
	defer srv.Close()
	e := startEmu(t, Options{DemoAPI: true, DemoSecret: "demo-secret"})
	info, err := e.CreateStream(StreamSpec{URL: srv.URL, PollingInterval: 0.01, JQFilter: ".data.items[-1]"})
	if err != nil {
		t.Fatal(err)
	}
	if r := subscribeSSE(t, sseURL(e, info.ID), nil).next(t); string(r.ev.Data) != `{"id":2}` {
		t.Fatalf("jq event %s", r.raw)
	}
	r := subscribeWS(t, wsURL(e, DemoStreamID)).next(t)
	verify(t, "demo-secret", r)
	if !strings.Contains(string(r.ev.Data), `"orders":[{`) {
		t.Fatalf("demo event %s", r.raw)
	}
	if s, _ := e.Secret(DemoStreamID); s != "demo-secret" {
		t.Fatalf("Secret(demo) = %q", s)
	}
}

// TestJQPrograms runs real jq programs in the poller: select and string
// interpolation give the document, several results give an error event, and
// no result publishes nothing.
func TestJQPrograms(t *testing.T) {
	up := &upstream{}
	up.set(200, `{"data":{"items":[{"id":1,"state":"new"},{"id":2,"state":"paid"}]}}`)
	srv := httptest.NewServer(up)
	defer srv.Close()
	e := startEmu(t, Options{})
	info, err := e.CreateStream(StreamSpec{URL: srv.URL, PollingInterval: 0.01,
		JQFilter: `.data.items | map(select(.state != "new")) | if length == 1 then "\(.[0].id) \(.[0].state)" else .[] end`})
	if err != nil {
		t.Fatal(err)
	}
	sub := subscribeSSE(t, sseURL(e, info.ID), nil)
	if r := sub.next(t); string(r.ev.Data) != `"2 paid"` {
		t.Fatalf("jq event %s", r.raw)
	}
	up.set(200, `{"data":{"items":[{"id":1,"state":"paid"},{"id":2,"state":"paid"}]}}`)
	if r := sub.next(t); r.ev.Type != "error" || !strings.Contains(r.ev.ErrorMessage(), "more than one result") ||
		!strings.Contains(string(r.ev.Error), `"JQ_FILTER_FAILED"`) || r.ev.Meta.Status != 200 {
		t.Fatalf("several results: %s", r.raw)
	}
	// No result: the poll publishes nothing. Two more polls have started once
	// the count grows by two, so the first of them has been handled.
	up.set(200, `{"data":{"items":[{"id":1,"state":"new"}]}}`)
	for n := up.count() + 2; up.count() < n; {
		time.Sleep(time.Millisecond)
	}
	up.set(200, `{"data":{"items":[{"id":3,"state":"paid"}]}}`)
	if r := sub.next(t); string(r.ev.Data) != `"3 paid"` {
		t.Fatalf("after a poll without result: %s", r.raw)
	}
}
