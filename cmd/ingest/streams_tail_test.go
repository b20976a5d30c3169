package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/restless-stream/ingest/emulator"
)

// lines collects what is written, and calls onLine with each complete line.
type lines struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	n      int
	onLine func(n int)
}

func (l *lines) Write(p []byte) (int, error) {
	l.mu.Lock()
	l.buf.Write(p)
	n := strings.Count(l.buf.String(), "\n")
	grew := n > l.n
	l.n = n
	l.mu.Unlock()
	if grew && l.onLine != nil {
		l.onLine(n)
	}
	return len(p), nil
}

func (l *lines) String() string { l.mu.Lock(); defer l.mu.Unlock(); return l.buf.String() }

// tailEvents decodes the JSON lines `streams tail` printed.
func tailEvents(t *testing.T, out string) []tailEvent {
	t.Helper()
	var evs []tailEvent
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if l == "" {
			continue
		}
		var ev tailEvent
		if err := json.Unmarshal([]byte(l), &ev); err != nil {
			t.Fatalf("line %q: %v", l, err)
		}
		evs = append(evs, ev)
	}
	return evs
}

func TestStreamsTail(t *testing.T) {
	em := newTestEmulator(t)
	info, err := em.CreateStream(emulator.StreamSpec{URL: em.URL() + "/_emulator/demo/orders", Inactive: true, Secret: "tail-secret"})
	if err != nil {
		t.Fatal(err)
	}
	// CloseAfter closes a connection when the event after the last one it
	// lets through is ready: there are always more events than a test reads.
	var ids []string
	for i := range 6 {
		id, err := em.Publish(info.ID, fmt.Appendf(nil, `{"n":%d}`, i+1))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	conn := []string{"--api-key", testAPIKey, "--base-url", em.URL(), "--stream-base-url", em.URL()}
	tail := func(t *testing.T, faults emulator.Faults, args ...string) (int, []tailEvent, string) {
		t.Helper()
		if err := em.SetFaults(info.ID, faults); err != nil {
			t.Fatal(err)
		}
		var out, errOut lines
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		code := Main(ctx, append(append([]string{"streams", "tail"}, args...), conn...), &out, &errOut)
		if ctx.Err() != nil {
			t.Fatal("tail did not end")
		}
		return code, tailEvents(t, out.String()), errOut.String()
	}

	for _, transport := range []string{"sse", "websocket"} {
		t.Run(transport, func(t *testing.T) {
			code, evs, errOut := tail(t, emulator.Faults{CloseAfter: 3}, info.ID, "--transport", transport,
				"--cursor", ids[0], "--verify-secret", "tail-secret", "--no-reconnect")
			if code != 0 || len(evs) != 3 {
				t.Fatalf("exit %d, %d events, stderr %q", code, len(evs), errOut)
			}
			for i, ev := range evs {
				if ev.EventID == nil || *ev.EventID != ids[i+1] || ev.Type != "update" || ev.Signature == nil ||
					string(ev.Data) != fmt.Sprintf(`{"n":%d}`, i+2) || string(ev.Error) != "null" {
					t.Fatalf("event %d: %+v", i, ev)
				}
			}
		})
	}
	t.Run("rejected events", func(t *testing.T) {
		code, evs, errOut := tail(t, emulator.Faults{CloseAfter: 4, BadSignatureEvery: 2}, info.ID,
			"--since", ids[0], "--verify-secret", "tail-secret", "--no-reconnect")
		if code != 0 || len(evs) != 2 || strings.Count(errOut, "event rejected") != 2 || strings.Contains(errOut, "tail-secret") {
			t.Fatalf("exit %d, %d events, stderr %q", code, len(evs), errOut)
		}
	})
	t.Run("failure", func(t *testing.T) {
		code, evs, errOut := tail(t, emulator.Faults{Status: http.StatusNotFound}, info.ID)
		if code != 1 || len(evs) != 0 || !strings.Contains(errOut, "404") {
			t.Fatalf("exit %d, %d events, stderr %q", code, len(evs), errOut)
		}
	})
	t.Run("runtime URL", func(t *testing.T) {
		code, evs, errOut := tail(t, emulator.Faults{CloseAfter: 1}, "--url", info.SSEURL, "--cursor", ids[2], "--no-reconnect")
		if code != 0 || len(evs) != 1 || *evs[0].EventID != ids[3] {
			t.Fatalf("exit %d, events %+v, stderr %q", code, evs, errOut)
		}
	})
	for _, args := range [][]string{{}, {info.ID, "--url", info.SSEURL}, {info.ID, "--transport", "grpc"}, {info.ID, "--dedupe-key", "k"}} {
		t.Run("usage "+strings.Join(args, " "), func(t *testing.T) {
			if code, _, _ := tail(t, emulator.Faults{}, args...); code != 2 {
				t.Fatalf("exit %d, want 2", code)
			}
		})
	}
}

// TestStreamsTailDirect follows a direct stream until interrupted.
func TestStreamsTailDirect(t *testing.T) {
	em := newTestEmulator(t)
	var n atomic.Int64
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `{"n":%d}`, n.Add(1))
	}))
	t.Cleanup(up.Close)
	for _, transport := range []string{"sse", "websocket"} {
		t.Run(transport, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			out := &lines{onLine: func(n int) {
				if n == 2 {
					cancel() // as SIGINT does
				}
			}}
			var errOut lines
			code := Main(ctx, []string{"streams", "tail", "--direct-url", up.URL, "--polling-interval", "0.01", "--transport", transport,
				"--verify-secret", em.DirectSecret(), "--api-key", testAPIKey, "--base-url", em.URL(), "--stream-base-url", em.URL()}, out, &errOut)
			evs := tailEvents(t, out.String())
			if code != 0 || len(evs) < 2 || errOut.String() != "" {
				t.Fatalf("exit %d, %d events, stderr %q", code, len(evs), errOut.String())
			}
		})
	}
}
