package emulator

import (
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"testing"

	"github.com/restless-stream/ingest/client"
	"github.com/restless-stream/ingest/emulator/jsonpatch"
)

// An SSE and a WebSocket subscriber follow a stream whose upstream changes;
// applying what they receive gives the upstream's last body, in both modes.
func TestSubscribeFollowsUpstream(t *testing.T) {
	for _, mode := range []client.PayloadMode{client.PayloadFullData, client.PayloadJSONPatch} {
		for _, transport := range []string{"sse", "ws"} {
			t.Run(string(mode)+"/"+transport, func(t *testing.T) {
				up := &upstream{}
				up.set(200, `{"orders":[],"v":0}`)
				srv := httptest.NewServer(up)
				defer srv.Close()
				e := startEmu(t, Options{})
				code, st := call(t, e, "POST", "/streams", map[string]any{
					"name": "orders", "url": srv.URL, "method": "POST", "headers": map[string]string{"X-Token": "t1"},
					"body": map[string]any{"q": "open"}, "payloadMode": mode, "pollingInterval": 0.01,
				})
				if code != 201 {
					t.Fatalf("create: %d %v", code, st)
				}
				id, secret := st["id"].(string), st["hmacSecret"].(string)
				var sub *subscriber
				if transport == "sse" {
					sub = subscribeSSE(t, st["sseUrl"].(string), nil)
				} else {
					sub = subscribeWS(t, st["websocketUrl"].(string))
				}
				var doc []byte
				lastID := ""
				for v := 0; v <= 5; v++ {
					body := fmt.Sprintf(`{"orders":[%s],"v":%d,"note":"caf\u00e9 <&>"}`, orders(v), v)
					up.set(200, body)
					// Read until the document equals this version's body.
					for {
						r := sub.next(t)
						if r.ev.Type != "update" {
							t.Fatalf("unexpected %s event: %s", r.ev.Type, r.raw)
						}
						verify(t, secret, r)
						if r.id <= lastID && len(r.id) == len(lastID) {
							t.Fatalf("event id %s after %s", r.id, lastID)
						}
						lastID = r.id
						full := r.ev.Meta.PayloadModeFallback != nil
						switch {
						case mode == client.PayloadFullData || full || doc == nil:
							if mode == client.PayloadJSONPatch && string(r.ev.Meta.PayloadModeFallback) != `"FULL_DATA"` {
								t.Fatalf("first JSON_PATCH event without payload_mode_fallback: %s", r.raw)
							}
							doc = append([]byte(nil), r.ev.Data...)
						default:
							if r.ev.Data[0] != '[' {
								t.Fatalf("JSON_PATCH event data is not a patch: %s", r.raw)
							}
							var err error
							if doc, err = jsonpatch.Apply(doc, r.ev.Data); err != nil {
								t.Fatal(err)
							}
						}
						if sameJSON(t, doc, []byte(body)) {
							break
						}
					}
				}
				up.mu.Lock()
				if up.lastReq.Method != "POST" || up.lastReq.Header.Get("X-Token") != "t1" || up.lastBody != `{"q":"open"}` {
					t.Errorf("upstream got %s %v %q", up.lastReq.Method, up.lastReq.Header, up.lastBody)
				}
				up.mu.Unlock()
				if n := e.Subscribers(id); n != 1 {
					t.Errorf("Subscribers = %d, want 1", n)
				}
			})
		}
	}
}

func orders(n int) string {
	s := ""
	for i := 0; i < n; i++ {
		if i > 0 {
			s += ","
		}
		s += fmt.Sprintf(`{"id":"o%d","total":%d.5}`, i, i*10)
	}
	return s
}

func sameJSON(t *testing.T, a, b []byte) bool {
	t.Helper()
	var va, vb any
	if err := json.Unmarshal(a, &va); err != nil {
		t.Fatalf("%s: %v", a, err)
	}
	if err := json.Unmarshal(b, &vb); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	return jsonpatch.Equal(va, vb)
}
