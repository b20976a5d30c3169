package direct

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/restless-stream/ingest"
	"github.com/restless-stream/ingest/client"
)

var fast = client.Backoff{Initial: 10 * time.Millisecond, Max: 50 * time.Millisecond}

func msg(id string) string {
	return fmt.Sprintf(`{"type":"update","data":{"n":%q},"event_id":%q}`, id, id)
}

func sseEvents(w http.ResponseWriter, ids ...string) {
	w.Header().Set("Content-Type", "text/event-stream")
	for _, id := range ids {
		fmt.Fprintf(w, "id: %s\ndata: %s\n\n", id, msg(id))
	}
}

// fake is the REST API and the runtime of a Restless Stream in one server.
type fake struct {
	*httptest.Server
	mu       sync.Mutex
	sessions []map[string]any // bodies of the session requests
	runtime  []string         // "path?query" of each runtime request
	// session answers the n-th session request (status, session ID, expiry).
	session func(n int) (int, string, time.Time)
	// serve answers the n-th runtime request.
	serve func(n int, w http.ResponseWriter, r *http.Request)
}

func newFake(t *testing.T) *fake {
	f := &fake{}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /streams/direct/session", func(w http.ResponseWriter, r *http.Request) {
		var body map[string]any
		json.NewDecoder(r.Body).Decode(&body)
		f.mu.Lock()
		n := len(f.sessions)
		f.sessions = append(f.sessions, body)
		f.mu.Unlock()
		code, id, exp := f.session(n)
		if code != http.StatusOK {
			w.WriteHeader(code)
			io.WriteString(w, `{"statusCode":`+fmt.Sprint(code)+`,"message":"no session for you"}`)
			return
		}
		json.NewEncoder(w).Encode(map[string]any{"sessionId": id, "sseUrl": "/s/" + id,
			"websocketUrl": strings.Replace(f.URL, "http", "ws", 1) + "/ws/s/" + id, "expiresAt": exp.Format(time.RFC3339Nano)})
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		n := len(f.runtime)
		f.runtime = append(f.runtime, r.URL.Path+"?"+r.URL.RawQuery)
		f.mu.Unlock()
		f.serve(n, w, r)
	})
	f.Server = httptest.NewServer(mux)
	t.Cleanup(f.Close)
	return f
}

func (f *fake) client(t *testing.T) *client.Client {
	c, err := client.New("rs_key", client.WithBaseURL(f.URL), client.WithStreamBaseURL(f.URL))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (f *fake) log() ([]map[string]any, []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]map[string]any(nil), f.sessions...), append([]string(nil), f.runtime...)
}

func readAll(t *testing.T, s *Source) ([]ingest.Frame, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var fs []ingest.Frame
	for {
		f, err := s.Next(ctx)
		if err != nil {
			return fs, err
		}
		s.Progress() // as the pipeline does for every accepted frame
		fs = append(fs, f)
	}
}

func cursors(fs []ingest.Frame) string {
	var c []string
	for _, f := range fs {
		c = append(c, f.Cursor)
	}
	return strings.Join(c, ",")
}

func TestBuiltURL(t *testing.T) {
	for _, transport := range []string{TransportSSE, TransportWebSocket} {
		t.Run(transport, func(t *testing.T) {
			f := newFake(t)
			f.serve = func(n int, w http.ResponseWriter, r *http.Request) {
				if n > 0 {
					w.WriteHeader(http.StatusNoContent)
					return
				}
				if transport == TransportSSE {
					sseEvents(w, "1", "2")
					return
				}
				c, err := websocket.Accept(w, r, nil)
				if err != nil {
					return
				}
				c.Write(r.Context(), websocket.MessageText, []byte(msg("1")))
				c.Write(r.Context(), websocket.MessageText, []byte(msg("2")))
				c.Close(websocket.StatusNormalClosure, "")
			}
			s, err := NewSource(Config{Client: f.client(t), Transport: transport, Reconnect: fast,
				Input: client.DirectInput{URL: "https://api.example.com/orders", JQFilter: ".items"}})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			fs, err := readAll(t, s)
			if !errors.Is(err, ingest.ErrStreamEnded) || cursors(fs) != "1,2" {
				t.Fatalf("frames %s, err %v", cursors(fs), err)
			}
			sessions, runtime := f.log()
			wantPath := "/direct?"
			if transport == TransportWebSocket {
				wantPath = "/ws/direct?"
			}
			if len(sessions) != 0 || !strings.HasPrefix(runtime[0], wantPath) ||
				!strings.Contains(runtime[0], "url=https%3A%2F%2Fapi.example.com%2Forders") ||
				!strings.Contains(runtime[1], "cursor=2") {
				t.Fatalf("sessions %v, runtime %v", sessions, runtime)
			}
		})
	}
}

func TestSessionRenewedWhenRefused(t *testing.T) {
	for _, transport := range []string{TransportSSE, TransportWebSocket} {
		t.Run(transport, func(t *testing.T) {
			f := newFake(t)
			f.session = func(n int) (int, string, time.Time) {
				return http.StatusOK, fmt.Sprint("sess", n), time.Now().Add(time.Hour)
			}
			f.serve = func(n int, w http.ResponseWriter, r *http.Request) {
				switch {
				case n == 0 && strings.HasSuffix(r.URL.Path, "/sess0"), n == 2 && strings.HasSuffix(r.URL.Path, "/sess1"):
					if transport == TransportSSE {
						sseEvents(w, fmt.Sprint(n+1))
						return
					}
					c, err := websocket.Accept(w, r, nil)
					if err != nil {
						return
					}
					c.Write(r.Context(), websocket.MessageText, []byte(msg(fmt.Sprint(n+1))))
					c.Close(websocket.StatusGoingAway, "")
				case n == 1:
					w.WriteHeader(http.StatusGone) // the session is over
				default:
					w.WriteHeader(http.StatusNoContent)
				}
			}
			s, err := NewSource(Config{Client: f.client(t), Transport: transport, Reconnect: fast, DedupeKey: "orders-1",
				Input: client.DirectInput{URL: "https://api.example.com/orders"}})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			fs, err := readAll(t, s)
			if !errors.Is(err, ingest.ErrStreamEnded) || cursors(fs) != "1,3" {
				t.Fatalf("frames %s, err %v", cursors(fs), err)
			}
			sessions, runtime := f.log()
			if len(sessions) != 2 || sessions[0]["dedupeKey"] != "orders-1" || sessions[1]["dedupeKey"] != "orders-1" ||
				sessions[1]["url"] != "https://api.example.com/orders" {
				t.Fatalf("session requests %v", sessions)
			}
			if !strings.Contains(runtime[1], "cursor=1") || !strings.Contains(runtime[2], "/sess1?") || !strings.Contains(runtime[2], "cursor=1") {
				t.Fatalf("runtime requests %v", runtime)
			}
		})
	}
}

func TestSessionRenewedWhenExpired(t *testing.T) {
	f := newFake(t)
	f.session = func(n int) (int, string, time.Time) {
		return http.StatusOK, fmt.Sprint("sess", n), time.Now() // expired by the reconnect
	}
	f.serve = func(n int, w http.ResponseWriter, r *http.Request) {
		if n < 2 {
			sseEvents(w, fmt.Sprint(n+1))
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}
	s, err := NewSource(Config{Client: f.client(t), Reconnect: fast, DedupeKey: "k",
		Input: client.DirectInput{URL: "https://api.example.com/orders"}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	fs, err := readAll(t, s)
	if !errors.Is(err, ingest.ErrStreamEnded) || cursors(fs) != "1,2" {
		t.Fatalf("frames %s, err %v", cursors(fs), err)
	}
	sessions, runtime := f.log()
	if len(sessions) != 3 || !strings.HasPrefix(runtime[1], "/s/sess1?") || !strings.Contains(runtime[1], "cursor=1") {
		t.Fatalf("%d sessions, runtime %v", len(sessions), runtime)
	}
}

func TestSessionErrors(t *testing.T) {
	tests := []struct {
		name      string
		code      int
		permanent bool
	}{
		{"401 is permanent", 401, true},
		{"400 is permanent", 400, true},
		{"503 is retried", 503, false},
		{"429 is retried", 429, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t)
			f.session = func(n int) (int, string, time.Time) { return tt.code, "", time.Time{} }
			var mu sync.Mutex
			var states []ingest.StateChange
			s, err := NewSource(Config{Client: f.client(t), DedupeKey: "k",
				Reconnect: client.Backoff{Initial: 10 * time.Millisecond, Max: 10 * time.Millisecond, MaxAttempts: 2},
				OnState:   func(c ingest.StateChange) { mu.Lock(); states = append(states, c); mu.Unlock() },
				Input:     client.DirectInput{URL: "https://api.example.com/orders"}})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			_, err = readAll(t, s)
			sessions, _ := f.log()
			if !ingest.IsPermanent(err) || !strings.Contains(err.Error(), fmt.Sprint(tt.code)) {
				t.Fatalf("err = %v", err)
			}
			if want := map[bool]int{true: 1, false: 3}[tt.permanent]; len(sessions) != want {
				t.Fatalf("%d session requests, want %d", len(sessions), want)
			}
		})
	}
}

func TestConfigErrors(t *testing.T) {
	in := client.DirectInput{URL: "https://api.example.com/x"}
	tests := []struct {
		cfg         Config
		field, want string
	}{
		{Config{Input: in, Transport: "grpc"}, "Transport", "grpc"},
		{Config{}, "Input.URL", "is required"},
		{Config{Input: client.DirectInput{URL: "https://api.example.com/x", Method: "FETCH"}}, "Input", "FETCH"},
		{Config{Input: in, DedupeKey: "k"}, "Client", "is required with a DedupeKey"},
		{Config{Input: in, DedupeKey: "k", Client: &client.Client{}, IdleTimeout: -1}, "IdleTimeout", "negative"},
		{Config{Input: in, MaxEventBytes: -1}, "MaxEventBytes", "negative"},
	}
	for _, tt := range tests {
		t.Run(tt.field+" "+tt.want, func(t *testing.T) {
			_, err := NewSource(tt.cfg)
			var fe *ingest.FieldError
			if !errors.As(err, &fe) || fe.Field != tt.field || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want a FieldError of %s saying %q", err, tt.field, tt.want)
			}
			if verr := tt.cfg.Validate(); verr == nil || verr.Error() != err.Error() {
				t.Fatalf("Validate() = %v, NewSource: %v", verr, err)
			}
		})
	}
}
