package emulator

import (
	"bufio"
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/restless-stream/ingest/client"
)

// rawGet opens a runtime URL without reading it.
func rawGet(t *testing.T, ctx context.Context, u string, hdr map[string]string) (*http.Response, error) {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	req.Header.Set("Authorization", "Bearer "+testKey)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err == nil {
		t.Cleanup(func() { resp.Body.Close() })
	}
	return resp, err
}

// faultStream returns a stream with three buffered events and the given faults.
func faultStream(t *testing.T, e *Emulator, f Faults) (StreamInfo, []string) {
	t.Helper()
	info := inactiveStream(t, e, "")
	ids := publishN(t, e, info.ID, 0, 3)
	if err := e.SetFaults(info.ID, f); err != nil {
		t.Fatal(err)
	}
	return info, ids
}

func TestFaultStatus(t *testing.T) {
	e := startEmu(t, Options{})
	for _, status := range []int{204, 401, 403, 404, 429, 500} {
		info, _ := faultStream(t, e, Faults{Status: status, RetryAfter: 7, Connections: 1})
		for _, ws := range []bool{false, true} {
			if ws {
				e.SetFaults(info.ID, Faults{Status: status, RetryAfter: 7, Connections: 1})
				_, resp, err := websocket.Dial(context.Background(), wsURL(e, info.ID), &websocket.DialOptions{
					HTTPHeader: http.Header{"Authorization": {"Bearer " + testKey}}})
				if err == nil || resp == nil || resp.StatusCode != status {
					t.Fatalf("ws status %d: err %v resp %v", status, err, resp)
				}
				continue
			}
			resp, err := rawGet(t, context.Background(), sseURL(e, info.ID), nil)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != status || resp.Header.Get("Retry-After") != "7" {
				t.Fatalf("status fault %d: got %d, Retry-After %q", status, resp.StatusCode, resp.Header.Get("Retry-After"))
			}
		}
		// One-shot: the next connection is normal.
		if r := subscribeSSE(t, sseURL(e, info.ID), nil).next(t); string(r.ev.Data) != `{"n":2}` {
			t.Fatalf("after the fault: %s", r.raw)
		}
	}
}

func TestFaultEvents(t *testing.T) {
	e := startEmu(t, Options{})
	tests := []struct {
		name  string
		f     Faults
		check func(t *testing.T, info StreamInfo, ids []string, sub *subscriber)
	}{
		{"closeAfter", Faults{CloseAfter: 2}, func(t *testing.T, info StreamInfo, ids []string, sub *subscriber) {
			sub.next(t)
			sub.next(t)
			err := sub.end(t)
			if sub.resp.StatusCode == http.StatusSwitchingProtocols {
				if websocket.CloseStatus(err) != websocket.StatusGoingAway {
					t.Fatalf("want close status 1001, got %v", err)
				}
			} else if err != nil {
				t.Fatalf("want a clean end, got %v", err)
			}
		}},
		{"closeMidEvent", Faults{CloseAfter: 1, CloseMidEvent: true}, func(t *testing.T, info StreamInfo, ids []string, sub *subscriber) {
			sub.next(t)
			err := sub.end(t)
			if err == nil || websocket.CloseStatus(err) != -1 {
				t.Fatalf("want a broken connection, got %v", err)
			}
		}},
		{"repeatEvery", Faults{RepeatEvery: 1}, func(t *testing.T, info StreamInfo, ids []string, sub *subscriber) {
			for _, id := range ids {
				for range 2 {
					if r := sub.next(t); r.id != id {
						t.Fatalf("got %s, want %s", r.id, id)
					}
				}
			}
		}},
		{"badSignatureEvery", Faults{BadSignatureEvery: 2}, func(t *testing.T, info StreamInfo, ids []string, sub *subscriber) {
			v, _ := client.NewVerifier([]string{info.Secret})
			for i, id := range ids {
				r := sub.next(t)
				err := v.Verify(r.ev.Data, r.ev.Signature)
				if r.id != id || (i == 1) != errors.Is(err, client.ErrSignatureInvalid) {
					t.Fatalf("event %d (%s): verify %v", i, r.id, err)
				}
			}
		}},
		{"malformedEvery", Faults{MalformedEvery: 3}, func(t *testing.T, info StreamInfo, ids []string, sub *subscriber) {
			sub.next(t)
			sub.next(t)
			r := <-sub.ch
			if r.err == nil {
				t.Fatalf("malformed event decoded: %s", r.raw)
			}
		}},
		{"oversized", Faults{OversizedEvery: 1, OversizedBytes: 10000}, func(t *testing.T, info StreamInfo, ids []string, sub *subscriber) {
			r := sub.next(t)
			if len(r.raw) != 10000 || r.id != ids[0] {
				t.Fatalf("oversized event: %d bytes, id %s", len(r.raw), r.id)
			}
			verify(t, info.Secret, r)
		}},
		{"slowDrip", Faults{SlowDrip: true}, func(t *testing.T, info StreamInfo, ids []string, sub *subscriber) {
			for _, id := range ids {
				if r := sub.next(t); r.id != id {
					t.Fatalf("got %s, want %s", r.id, id)
				}
			}
		}},
		{"gzip", Faults{Gzip: true}, func(t *testing.T, info StreamInfo, ids []string, sub *subscriber) {
			if !sub.resp.Uncompressed {
				t.Fatal("response was not gzip-compressed")
			}
			for _, id := range ids {
				if r := sub.next(t); r.id != id {
					t.Fatalf("got %s, want %s", r.id, id)
				}
			}
		}},
	}
	for _, tt := range tests {
		for _, ws := range []bool{false, true} {
			if ws && (tt.f.SlowDrip || tt.f.Gzip) {
				continue // SSE only
			}
			name := tt.name + "/sse"
			if ws {
				name = tt.name + "/ws"
			}
			t.Run(name, func(t *testing.T) {
				info, ids := faultStream(t, e, tt.f)
				var sub *subscriber
				if ws {
					sub = subscribeWS(t, wsURL(e, info.ID)+"&cursor=0")
				} else {
					sub = subscribeSSE(t, sseURL(e, info.ID)+"&cursor=0", nil)
				}
				tt.check(t, info, ids, sub)
			})
		}
	}
}

func TestFaultStallAndContentType(t *testing.T) {
	e := startEmu(t, Options{KeepAlive: 5 * time.Millisecond})
	t.Run("keepalive without faults", func(t *testing.T) {
		info := inactiveStream(t, e, "")
		resp, err := rawGet(t, context.Background(), sseURL(e, info.ID), nil)
		if err != nil {
			t.Fatal(err)
		}
		if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
			t.Fatalf("Content-Type %q", ct)
		}
		line, err := bufio.NewReader(resp.Body).ReadString('\n')
		if err != nil || line != ": keepalive\n" {
			t.Fatalf("got %q, %v", line, err)
		}
	})
	t.Run("stall", func(t *testing.T) {
		info, _ := faultStream(t, e, Faults{Stall: true, StallAfter: 1})
		resp, err := rawGet(t, context.Background(), sseURL(e, info.ID)+"&cursor=0", nil)
		if err != nil {
			t.Fatal(err)
		}
		br := bufio.NewReader(resp.Body)
		if _, _, err := readSSE(br); err != nil {
			t.Fatal(err)
		}
		got := make(chan byte, 1)
		go func() {
			b, err := br.ReadByte()
			if err == nil {
				got <- b
			}
			close(got)
		}()
		publishN(t, e, info.ID, 10, 2)
		select {
		case b, ok := <-got:
			if ok {
				t.Fatalf("a stalled connection sent %q", b)
			}
		case <-time.After(100 * time.Millisecond): // 20 keepalive intervals: nothing came
		}
		resp.Body.Close()
		<-got
	})
	t.Run("stall over WebSocket answers no ping", func(t *testing.T) {
		e := startEmu(t, Options{PingInterval: 5 * time.Millisecond})
		info, _ := faultStream(t, e, Faults{Stall: true})
		c, _, err := websocket.Dial(context.Background(), wsURL(e, info.ID), &websocket.DialOptions{
			HTTPHeader: http.Header{"Authorization": {"Bearer " + e.APIKey()}},
		})
		if err != nil {
			t.Fatal(err)
		}
		defer c.CloseNow()
		c.CloseRead(context.Background()) // read, so that a pong (or a ping) would be seen
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		if err := c.Ping(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("ping on a stalled connection: %v, want no pong before the deadline", err)
		}
	})
	t.Run("stallHeaders", func(t *testing.T) {
		info, _ := faultStream(t, e, Faults{StallHeaders: true})
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		if _, err := rawGet(t, ctx, sseURL(e, info.ID), nil); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("got %v, want no response headers before the deadline", err)
		}
	})
	t.Run("wrongContentType", func(t *testing.T) {
		info, _ := faultStream(t, e, Faults{WrongContentType: true})
		resp, err := rawGet(t, context.Background(), sseURL(e, info.ID), nil)
		if err != nil {
			t.Fatal(err)
		}
		if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
			t.Fatalf("Content-Type %q", ct)
		}
	})
}

func TestFaultsAdminAndValidation(t *testing.T) {
	e := startEmu(t, Options{})
	info := inactiveStream(t, e, "")
	code, m := call(t, e, "POST", "/_emulator/streams/"+info.ID+"/faults", map[string]any{"closeAfter": 3, "connections": 2})
	if code != 200 || m["closeAfter"] != float64(3) {
		t.Fatalf("set faults: %d %v", code, m)
	}
	_, m = call(t, e, "GET", "/_emulator/streams/"+info.ID+"/faults", nil)
	if m["closeAfter"] != float64(3) || m["connections"] != float64(2) {
		t.Fatalf("get faults: %v", m)
	}
	if code, _ := call(t, e, "DELETE", "/_emulator/streams/"+info.ID+"/faults", nil); code != 200 {
		t.Fatalf("clear faults: %d", code)
	}
	if _, m = call(t, e, "GET", "/_emulator/streams/"+info.ID+"/faults", nil); len(m) != 0 {
		t.Fatalf("faults after clear: %v", m)
	}
	for _, bad := range []any{
		map[string]any{"status": 200}, map[string]any{"status": 99}, map[string]any{"closeAfter": -1},
		map[string]any{"colour": 1}, `{`,
	} {
		if code, m := call(t, e, "POST", "/_emulator/streams/"+info.ID+"/faults", bad); code != 400 {
			t.Errorf("faults %v: %d %v", bad, code, m)
		}
	}
	if code, _ := call(t, e, "POST", "/_emulator/streams/nope/faults", map[string]any{}); code != 404 {
		t.Errorf("faults of unknown stream: %d", code)
	}
	if err := e.SetFaults("nope", Faults{}); !errors.Is(err, ErrUnknownStream) {
		t.Errorf("SetFaults(nope) = %v", err)
	}
}

func TestWebSocketPings(t *testing.T) {
	e := startEmu(t, Options{PingInterval: 5 * time.Millisecond})
	info := inactiveStream(t, e, "")
	pinged := make(chan struct{}, 1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c, _, err := websocket.Dial(ctx, wsURL(e, info.ID), &websocket.DialOptions{
		HTTPHeader: http.Header{"Authorization": {"Bearer " + testKey}},
		OnPingReceived: func(context.Context, []byte) bool {
			select {
			case pinged <- struct{}{}:
			default:
			}
			return true
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	go c.Read(ctx) // pings are handled while reading
	select {
	case <-pinged:
	case <-time.After(waitLong):
		t.Fatal("no ping")
	}
}

func TestCorruptPatch(t *testing.T) {
	patch := []byte(`{"type":"update","meta":{"timestamp":"t","attempt_id":"a","status":200,"latency_ms":1,"payload_mode_fallback":null},"data":[{"op":"add","path":"/a","value":1}],"error":null,"signature":"00","event_id":"1"}`)
	got := corruptPatch(patch)
	want := strings.Replace(string(patch), `"data":[`, `"data":[`+badPatchOp+`,`, 1)
	if string(got) != want {
		t.Fatalf("corruptPatch = %s", got)
	}
	empty := []byte(`{"type":"update","meta":{"payload_mode_fallback":null},"data":[],"event_id":"2"}`)
	if got := corruptPatch(empty); string(got) != `{"type":"update","meta":{"payload_mode_fallback":null},"data":[`+badPatchOp+`],"event_id":"2"}` {
		t.Fatalf("corruptPatch of an empty patch = %s", got)
	}
	for _, ev := range []string{
		`{"type":"update","meta":{"payload_mode_fallback":"FULL_DATA"},"data":[1,2],"event_id":"3"}`, // a full document that is an array
		`{"type":"update","meta":{"payload_mode_fallback":null},"data":{"a":[1]},"event_id":"4"}`,
		`{"type":"error","meta":{"payload_mode_fallback":null},"data":null,"error":{"message":"x"},"event_id":"5"}`,
	} {
		if got := corruptPatch([]byte(ev)); string(got) != ev {
			t.Errorf("corruptPatch changed an event without a patch: %s", got)
		}
	}
}
