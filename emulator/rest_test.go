package emulator

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestRESTAuth(t *testing.T) {
	e := startEmu(t, Options{})
	for _, key := range []string{"", "rs_wrong"} {
		req, _ := http.NewRequest("GET", e.URL()+"/streams", nil)
		if key != "" {
			req.Header.Set("x-api-key", key)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 401 {
			t.Errorf("key %q: status %d, want 401", key, resp.StatusCode)
		}
	}
}

func TestGeneratedKey(t *testing.T) {
	e, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	k := e.APIKey()
	if len(k) != 67 || !strings.HasPrefix(k, "rs_") {
		t.Fatalf("generated key %q is not rs_ + 64 hex", k)
	}
	srv := httptest.NewServer(e.Handler())
	defer srv.Close()
	req, _ := http.NewRequest("GET", srv.URL+"/streams", nil)
	req.Header.Set("x-api-key", k)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("status %d with the generated key", resp.StatusCode)
	}
	if _, err := New(Options{APIKeys: []string{""}}); err == nil {
		t.Fatal("New accepted an empty API key")
	}
}

func TestRESTValidation(t *testing.T) {
	e := startEmu(t, Options{})
	valid := func() map[string]any { return map[string]any{"name": "n", "url": "http://127.0.0.1:1/x"} }
	with := func(k string, v any) map[string]any { m := valid(); m[k] = v; return m }
	tests := []struct {
		name, method, path string
		body               any
		want               string
	}{
		{"not an object", "POST", "/streams", `[1]`, "JSON object"},
		{"missing name", "POST", "/streams", map[string]any{"url": "http://x/"}, "name should not be empty"},
		{"missing url", "POST", "/streams", map[string]any{"name": "n"}, "url should not be empty"},
		{"relative url", "POST", "/streams", with("url", "/x"), "url must be an absolute"},
		{"bad method", "POST", "/streams", with("method", "FETCH"), "method must be one of"},
		{"bad status", "POST", "/streams", with("status", "ON"), "status must be one of"},
		{"bad payloadMode", "POST", "/streams", with("payloadMode", "DIFF"), "payloadMode must be one of"},
		{"interval type", "POST", "/streams", with("pollingInterval", "5"), "pollingInterval must be a number"},
		{"interval too small", "POST", "/streams", with("pollingInterval", 0.0001), "pollingInterval must be a number of seconds not less than"},
		{"headers type", "POST", "/streams", with("headers", map[string]int{"a": 1}), "headers must be an object of strings"},
		{"header name", "POST", "/streams", with("headers", map[string]string{"a b": "1"}), "invalid header name"},
		{"jq syntax", "POST", "/streams", with("jqFilter", ".a |"), "jqFilter is not a jq program"},
		{"jq function", "POST", "/streams", with("jqFilter", "nosuch(.x)"), "jqFilter is not a jq program"},
		{"direct jq", "POST", "/streams/direct/setup", map[string]any{"url": "http://x/", "jqFilter": "map("}, "jqFilter is not a jq program"},
		{"strategy", "POST", "/streams", with("pollingStrategies", []map[string]any{{"start": "9", "end": "17:00", "days": []string{"XYZ"}, "timezone": "Mars/Base", "pollingInterval": 0}}), "pollingStrategies.0.start"},
		{"strategy days", "POST", "/streams", with("pollingStrategies", []map[string]any{{"start": "09:00", "end": "17:00", "days": []string{"XYZ"}, "pollingInterval": 5}}), "pollingStrategies.0.days"},
		{"strategy tz", "POST", "/streams", with("pollingStrategies", []map[string]any{{"start": "09:00", "end": "17:00", "timezone": "Mars/Base", "pollingInterval": 5}}), "pollingStrategies.0.timezone"},
		{"unknown member", "POST", "/streams", with("colour", "red"), "property colour should not exist"},
		{"name type", "POST", "/streams", with("name", 5), "name must be a string"},
		{"list limit", "GET", "/streams?limit=0", nil, "limit must be"},
		{"list offset", "GET", "/streams?offset=-1", nil, "offset must be"},
		{"snippets id", "POST", "/streams/connection-snippets", map[string]any{}, "streamId should not be empty"},
		{"snippets language", "POST", "/streams/connection-snippets", map[string]any{"streamId": "x", "language": "cobol"}, "language must be one of"},
		{"direct url", "POST", "/streams/direct/session", map[string]any{"method": "GET"}, "url should not be empty"},
		{"direct unknown", "POST", "/streams/direct/setup", map[string]any{"url": "http://x/", "name": "n"}, "property name should not exist"},
		{"validate type", "POST", "/streams/validate-api-key", map[string]any{"apiKey": 1}, "apiKey must be a string"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, m := call(t, e, tt.method, tt.path, tt.body)
			if code != 400 {
				t.Fatalf("status %d, want 400 (%v)", code, m)
			}
			msgs, _ := m["message"].([]any)
			found := false
			for _, x := range msgs {
				if s, _ := x.(string); strings.Contains(s, tt.want) {
					found = true
				}
			}
			if !found || m["statusCode"] != float64(400) || m["error"] != "Bad Request" {
				t.Fatalf("answer %v, want a message containing %q", m, tt.want)
			}
		})
	}
}

func TestRESTLifecycle(t *testing.T) {
	up := &upstream{}
	up.set(200, `{"a":1}`)
	srv := httptest.NewServer(up)
	defer srv.Close()
	e := startEmu(t, Options{DemoAPI: true})

	code, created := call(t, e, "POST", "/streams", map[string]any{"name": "one", "url": srv.URL, "pollingInterval": 0.01, "apiKey": testKey, "status": "INACTIVE"})
	if code != 201 || created["hmacSecret"] == "" || created["status"] != "INACTIVE" || created["method"] != "GET" || created["payloadMode"] != "FULL_DATA" {
		t.Fatalf("create: %d %v", code, created)
	}
	id := created["id"].(string)
	if created["sseUrl"] != e.URL()+"?streamId="+id && created["sseUrl"] != e.URL()+"/?streamId="+id {
		t.Errorf("sseUrl %v", created["sseUrl"])
	}
	if !strings.HasPrefix(created["websocketUrl"].(string), "ws://") {
		t.Errorf("websocketUrl %v", created["websocketUrl"])
	}

	code, got := call(t, e, "GET", "/streams/"+id, nil)
	if code != 200 || got["name"] != "one" || got["hmacSecret"] != nil {
		t.Fatalf("get: %d %v", code, got)
	}
	code, got = call(t, e, "PATCH", "/streams/"+id, map[string]any{"name": "two", "pollingInterval": 0.02})
	if code != 200 || got["name"] != "two" || got["pollingInterval"] != 0.02 || got["url"] != srv.URL {
		t.Fatalf("update: %d %v", code, got)
	}
	if n := up.count(); n != 0 {
		t.Fatalf("inactive stream polled %d times", n)
	}
	code, got = call(t, e, "POST", "/streams/"+id+"/start", nil)
	if code != 200 || got["id"] != id || got["affected"] != true {
		t.Fatalf("start: %d %v", code, got)
	}
	sub := subscribeSSE(t, sseURL(e, id), nil)
	if r := sub.next(t); string(r.ev.Data) != `{"a":1}` {
		t.Fatalf("first event %s", r.raw)
	}
	code, got = call(t, e, "POST", "/streams/"+id+"/stop", nil)
	if code != 200 || got["affected"] != true {
		t.Fatalf("stop: %d %v", code, got)
	}
	_, got = call(t, e, "POST", "/streams/"+id+"/stop", nil)
	if got["affected"] != false {
		t.Fatalf("second stop: %v", got)
	}
	// The poller has stopped when stop answers: the upstream sees no more polls.
	n := up.count()
	up.set(200, `{"a":2}`)
	if _, err := e.Publish(id, []byte(`{"manual":true}`)); err != nil {
		t.Fatal(err)
	}
	if r := sub.next(t); string(r.ev.Data) != `{"manual":true}` {
		t.Fatalf("event after stop %s", r.raw)
	}
	if up.count() != n {
		t.Fatal("upstream polled after stop")
	}

	code, usage := call(t, e, "GET", "/streams/"+id+"/credit-usage-stats", nil)
	if code != 200 || usage["streamId"] != id || usage["totalCredits"].(float64) < 1 || len(usage["daily"].([]any)) != 1 {
		t.Fatalf("usage: %d %v", code, usage)
	}

	code, list := call(t, e, "GET", "/streams?limit=1", nil)
	streams := list["streams"].([]any)
	if code != 200 || len(streams) != 1 || list["paginationInfo"].(map[string]any)["hasNextPage"] != true {
		t.Fatalf("list page 1: %d %v", code, list)
	}
	_, list = call(t, e, "GET", "/streams?limit=1&offset=1", nil)
	if len(list["streams"].([]any)) != 1 || list["paginationInfo"].(map[string]any)["hasNextPage"] != false {
		t.Fatalf("list page 2: %v", list)
	}
	_, list = call(t, e, "GET", "/streams?offset=5", nil)
	if len(list["streams"].([]any)) != 0 {
		t.Fatalf("list past the end: %v", list)
	}

	code, snip := call(t, e, "POST", "/streams/connection-snippets", map[string]any{"streamId": id, "language": "python"})
	if code != 200 || !strings.Contains(snip["snippets"].(map[string]any)["python"].(string), id) || snip["sseUrl"] == "" {
		t.Fatalf("snippets: %d %v", code, snip)
	}

	code, val := call(t, e, "POST", "/streams/validate-api-key", map[string]any{"apiKey": testKey})
	if code != 200 || val["id"] != testKey || val["affected"] != true {
		t.Fatalf("validate: %d %v", code, val)
	}
	_, val = call(t, e, "POST", "/streams/validate-api-key", map[string]any{"apiKey": "rs_other"})
	if val["affected"] != false {
		t.Fatalf("validate other key: %v", val)
	}
	_, val = call(t, e, "POST", "/streams/validate-api-key", nil)
	if val["id"] != testKey || val["affected"] != true {
		t.Fatalf("validate own key: %v", val)
	}

	code, got = call(t, e, "DELETE", "/streams/"+id, nil)
	if code != 200 || got["affected"] != true {
		t.Fatalf("delete: %d %v", code, got)
	}
	if err := sub.end(t); err != nil {
		t.Fatalf("subscription after delete: %v", err)
	}
	for _, p := range []struct{ method, path string }{
		{"GET", "/streams/" + id}, {"PATCH", "/streams/" + id}, {"DELETE", "/streams/" + id},
		{"POST", "/streams/" + id + "/start"}, {"POST", "/streams/" + id + "/stop"},
		{"GET", "/streams/" + id + "/credit-usage-stats"},
	} {
		var body any
		if p.method == "PATCH" {
			body = map[string]any{}
		}
		if code, m := call(t, e, p.method, p.path, body); code != 404 || m["statusCode"] != float64(404) {
			t.Errorf("%s %s after delete: %d %v", p.method, p.path, code, m)
		}
	}
	if code, _ := call(t, e, "POST", "/streams/connection-snippets", map[string]any{"streamId": id}); code != 404 {
		t.Errorf("snippets after delete: %d", code)
	}
	req, _ := http.NewRequest("GET", sseURL(e, id), nil)
	req.Header.Set("Authorization", "Bearer "+testKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 404 {
		t.Errorf("runtime after delete: %d", resp.StatusCode)
	}
}

func TestDirectSetupAndSession(t *testing.T) {
	up := &upstream{}
	up.set(200, `{"s":1}`)
	srv := httptest.NewServer(up)
	defer srv.Close()
	e := startEmu(t, Options{DirectSecret: "direct-secret"})
	in := map[string]any{"url": srv.URL, "method": "GET", "pollingInterval": 0.01, "headers": map[string]string{"A": "b"}, "language": "curl"}
	code, setup := call(t, e, "POST", "/streams/direct/setup", in)
	if code != 200 {
		t.Fatalf("setup: %d %v", code, setup)
	}
	rt := setup["runtime"].(map[string]any)
	direct := rt["directSseUrl"].(string)
	if !strings.HasPrefix(direct, e.URL()+"/direct?") || !strings.HasPrefix(rt["directWebsocketUrl"].(string), "ws://") {
		t.Fatalf("runtime %v", rt)
	}
	if !strings.Contains(setup["commands"].(map[string]any)["header"].(map[string]any)["curl"].(string), "Authorization: Bearer") {
		t.Fatalf("commands %v", setup["commands"])
	}
	sub := subscribeSSE(t, direct, nil)
	r := sub.next(t)
	if string(r.ev.Data) != `{"s":1}` {
		t.Fatalf("direct event %s", r.raw)
	}
	verify(t, "direct-secret", r)

	delete(in, "language")
	in["dedupeKey"] = "feed-1"
	code, s1 := call(t, e, "POST", "/streams/direct/session", in)
	if code != 200 || !strings.HasPrefix(s1["sessionId"].(string), "ses_") || s1["expiresAt"] == "" {
		t.Fatalf("session: %d %v", code, s1)
	}
	_, s2 := call(t, e, "POST", "/streams/direct/session", in)
	if s2["sessionId"] != s1["sessionId"] {
		t.Fatalf("dedupeKey not reused: %v then %v", s1, s2)
	}
	in["dedupeKey"] = "feed-2"
	_, s3 := call(t, e, "POST", "/streams/direct/session", in)
	if s3["sessionId"] == s1["sessionId"] {
		t.Fatal("another dedupeKey gave the same session")
	}
	for _, u := range []string{s1["sseUrl"].(string), s1["websocketUrl"].(string)} {
		var sub *subscriber
		if strings.HasPrefix(u, "ws") {
			sub = subscribeWS(t, u)
		} else {
			sub = subscribeSSE(t, u, nil)
		}
		r := sub.next(t)
		verify(t, "direct-secret", r)
		if string(r.ev.Data) != `{"s":1}` {
			t.Fatalf("session event %s", r.raw)
		}
	}
}

func TestSessionExpires(t *testing.T) {
	up := &upstream{}
	up.set(200, `{}`)
	srv := httptest.NewServer(up)
	defer srv.Close()
	e := startEmu(t, Options{SessionTTL: 50_000_000}) // 50ms
	_, s := call(t, e, "POST", "/streams/direct/session", map[string]any{"url": srv.URL, "pollingInterval": 0.01})
	sub := subscribeSSE(t, s["sseUrl"].(string), nil)
	sub.next(t)
	if err := sub.end(t); err != nil { // the janitor ends it
		t.Fatal(err)
	}
	req, _ := http.NewRequest("GET", s["sseUrl"].(string), nil)
	req.Header.Set("Authorization", "Bearer "+testKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 404 {
		t.Fatalf("expired session: %d", resp.StatusCode)
	}
}

func TestRuntimeRequests(t *testing.T) {
	e := startEmu(t, Options{DemoAPI: true})
	tests := []struct {
		name, path, auth string
		want             int
	}{
		{"no key", "/?streamId=demo", "", 401},
		{"wrong key", "/?streamId=demo", "Bearer rs_x", 401},
		{"apiKey query", "/?streamId=nope&apiKey=" + testKey, "", 404},
		{"no target", "/", "Bearer " + testKey, 400},
		{"both targets", "/?streamId=a&sessionId=b", "Bearer " + testKey, 400},
		{"unknown stream", "/?streamId=nope", "Bearer " + testKey, 404},
		{"unknown session", "/?sessionId=nope", "Bearer " + testKey, 404},
		{"bad since", "/?streamId=demo&since=yesterday", "Bearer " + testKey, 400},
		{"ws unknown", "/ws?streamId=nope", "Bearer " + testKey, 404},
		{"direct no url", "/direct?method=GET", "Bearer " + testKey, 400},
		{"direct bad headers", "/direct?url=http://x/&headers=%7B", "Bearer " + testKey, 400},
		{"direct bad interval", "/direct?url=http://x/&pollingInterval=fast", "Bearer " + testKey, 400},
		{"direct bad mode", "/ws/direct?url=http://x/&payloadMode=X", "Bearer " + testKey, 400},
		{"direct no key", "/direct?url=http://x/", "", 401},
		{"unknown path", "/nothing", "", 404},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest("GET", e.URL()+tt.path, nil)
			if tt.auth != "" {
				req.Header.Set("Authorization", tt.auth)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tt.want {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.want)
			}
		})
	}
}

// Close ends every connection and waits for them; the emulator cannot be
// started again.
func TestCloseEndsConnections(t *testing.T) {
	e, err := New(Options{APIKeys: []string{testKey}, DemoAPI: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	if err := e.Start("127.0.0.1:0"); err == nil {
		t.Fatal("second Start succeeded")
	}
	info, _ := e.CreateStream(StreamSpec{URL: "http://127.0.0.1:1/", Inactive: true})
	if err := e.SetFaults(info.ID, Faults{Stall: true}); err != nil {
		t.Fatal(err)
	}
	subs := []*subscriber{
		subscribeSSE(t, sseURL(e, DemoStreamID), nil),
		subscribeWS(t, wsURL(e, DemoStreamID)),
		subscribeSSE(t, sseURL(e, info.ID), nil),
	}
	subs[0].next(t)
	subs[1].next(t)
	for e.Connections() != 3 {
		time.Sleep(time.Millisecond) // the stalled connection registers asynchronously
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	if n := e.Connections(); n != 0 {
		t.Fatalf("%d connections after Close", n)
	}
	for _, s := range subs {
		s.end(t)
	}
	if err := e.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := e.Start("127.0.0.1:0"); err == nil {
		t.Fatal("Start after Close succeeded")
	}
}
