package sse

import (
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/restless-stream/ingest"
	"github.com/restless-stream/ingest/client"
)

// fast reconnects for the loopback tests; timing is checked with synctest.
var fast = client.Backoff{Initial: 10 * time.Millisecond, Max: 50 * time.Millisecond}

func evt(id, data string) string {
	if id == "" {
		return "data: " + data + "\n\n"
	}
	return "id: " + id + "\nevent: update\ndata: " + data + "\n\n"
}

func body(id string) string {
	return fmt.Sprintf(`{"type":"update","data":{"n":%q},"event_id":%q}`, id, id)
}

type request struct {
	query  map[string][]string
	header http.Header
}

// server answers the n-th request with script[n]; past the script, 204.
type server struct {
	*httptest.Server
	mu     sync.Mutex
	reqs   []request
	script []http.HandlerFunc
}

func newServer(t *testing.T, script ...http.HandlerFunc) *server {
	s := &server{script: script}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		n := len(s.reqs)
		s.reqs = append(s.reqs, request{query: r.URL.Query(), header: r.Header.Clone()})
		s.mu.Unlock()
		if n >= len(s.script) {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		s.script[n](w, r)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *server) requests() []request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]request(nil), s.reqs...)
}

// serve answers 200 text/event-stream, writes the chunks, and ends cleanly.
func serve(chunks ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream; charset=utf-8")
		for _, c := range chunks {
			io.WriteString(w, c)
			w.(http.Flusher).Flush()
		}
	}
}

// drop writes the chunks, then breaks the connection.
func drop(chunks ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		serve(chunks...)(w, r)
		panic(http.ErrAbortHandler)
	}
}

func status(code int, hdr ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		for i := 0; i+1 < len(hdr); i += 2 {
			w.Header().Set(hdr[i], hdr[i+1])
		}
		w.WriteHeader(code)
		io.WriteString(w, `{"statusCode":`+fmt.Sprint(code)+`,"message":"refused here"}`)
	}
}

type recorder struct {
	mu sync.Mutex
	s  []ingest.StateChange
}

func (r *recorder) on(c ingest.StateChange) { r.mu.Lock(); r.s = append(r.s, c); r.mu.Unlock() }
func (r *recorder) all() []ingest.StateChange {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]ingest.StateChange(nil), r.s...)
}

// key returns a client that sends k as its API key.
func key(k string) *client.Client {
	c, err := client.New(k)
	if err != nil {
		panic(err)
	}
	return c
}

// withTransport returns a client without a key whose requests go through rt.
func withTransport(t *testing.T, rt http.RoundTripper) *client.Client {
	t.Helper()
	c, err := client.New("", client.WithHTTPClient(&http.Client{Transport: rt}))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func open(t *testing.T, cfg Config) *Source {
	t.Helper()
	if cfg.Reconnect == (client.Backoff{}) {
		cfg.Reconnect = fast
	}
	s, err := NewSource(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
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

func TestResume(t *testing.T) {
	tests := []struct {
		name  string
		first http.HandlerFunc
	}{
		{"drop in the middle of an event", drop(evt("1", body("1")), evt("2", body("2")), "id: 3\ndata: {\"type\":\"upd")},
		{"clean EOF", serve(evt("1", body("1")), evt("2", body("2")))},
		{"EOF inside an unterminated event", serve(evt("1", body("1")), evt("2", body("2")), "id: 3\ndata: x\n")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newServer(t, tt.first, serve(evt("3", body("3"))))
			var rec recorder
			s := open(t, Config{URL: srv.URL + "/?streamId=s1&since=old", Since: "2026-01-01T00:00:00Z",
				Client: key("rs_key"), OnState: rec.on})
			fs, err := readAll(t, s)
			if !errors.Is(err, ingest.ErrStreamEnded) {
				t.Fatalf("err = %v", err)
			}
			var got []string
			for _, f := range fs {
				got = append(got, f.Cursor)
				if f.TooLarge || !strings.Contains(string(f.Data), `"n":"`+f.Cursor+`"`) {
					t.Fatalf("frame %q cursor %q", f.Data, f.Cursor)
				}
			}
			if strings.Join(got, ",") != "1,2,3" {
				t.Fatalf("cursors %v", got)
			}
			reqs := srv.requests()
			if len(reqs) != 3 {
				t.Fatalf("%d requests", len(reqs))
			}
			first, second := reqs[0], reqs[1]
			for k, v := range map[string]string{"Accept": "text/event-stream", "Cache-Control": "no-cache",
				"Accept-Encoding": "identity", "Authorization": "Bearer rs_key"} {
				if first.header.Get(k) != v || second.header.Get(k) != v {
					t.Errorf("%s = %q / %q, want %q", k, first.header.Get(k), second.header.Get(k), v)
				}
			}
			if first.header.Get("Last-Event-ID") != "" || first.query["cursor"] != nil ||
				fmt.Sprint(first.query["since"]) != "[2026-01-01T00:00:00Z]" {
				t.Errorf("first request: %v %v", first.query, first.header)
			}
			if second.header.Get("Last-Event-ID") != "2" || fmt.Sprint(second.query["cursor"]) != "[2]" ||
				second.query["since"] != nil || fmt.Sprint(second.query["streamId"]) != "[s1]" {
				t.Errorf("resume request: %v Last-Event-ID %q", second.query, second.header.Get("Last-Event-ID"))
			}
			if s.Cursor() != "3" {
				t.Errorf("Cursor() = %q", s.Cursor())
			}
			st := rec.all()
			if st[0].State != ingest.StateConnecting || st[1].State != ingest.StateConnected ||
				st[2].State != ingest.StateReconnecting || st[len(st)-1].State != ingest.StateEnded {
				t.Errorf("states %v", st)
			}
		})
	}
}

func TestCursorFallsBackToEventID(t *testing.T) {
	srv := newServer(t, serve(evt("", body("7"))), serve(evt("", `{"no":"id"}`)))
	s := open(t, Config{URL: srv.URL, Cursor: "5"})
	fs, _ := readAll(t, s)
	if len(fs) != 2 || fs[0].Cursor != "7" || fs[1].Cursor != "7" {
		t.Fatalf("frames %+v", fs)
	}
	reqs := srv.requests()
	if reqs[0].header.Get("Last-Event-ID") != "5" || reqs[1].header.Get("Last-Event-ID") != "7" {
		t.Fatalf("Last-Event-ID %q then %q", reqs[0].header.Get("Last-Event-ID"), reqs[1].header.Get("Last-Event-ID"))
	}
}

func TestPermanent(t *testing.T) {
	tests := []struct {
		name string
		h    http.HandlerFunc
		want string
	}{
		{"401", status(401), "API key"},
		{"403", status(403), "API key"},
		{"404", status(404), "refused here"},
		{"400", status(400), "400"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newServer(t, tt.h, tt.h, tt.h)
			var rec recorder
			s := open(t, Config{URL: srv.URL + "?apiKey=upstream_secret", Client: key("rs_topsecret"), OnState: rec.on})
			_, err := readAll(t, s)
			if !ingest.IsPermanent(err) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v", err)
			}
			if strings.Contains(err.Error(), "topsecret") || strings.Contains(err.Error(), "upstream_secret") {
				t.Fatalf("error leaks a secret: %v", err)
			}
			if n := len(srv.requests()); n != 1 {
				t.Fatalf("%d requests: a permanent error must not retry", n)
			}
			st := rec.all()
			if last := st[len(st)-1]; last.State != ingest.StateFailed || last.Err == nil {
				t.Fatalf("last state %+v", last)
			}
			var se *client.StatusError
			if !errors.As(err, &se) {
				t.Fatalf("%v is no StatusError", err)
			}
		})
	}
}

func TestTransientThenResume(t *testing.T) {
	tests := []struct {
		name string
		h    http.HandlerFunc
		want string
	}{
		{"503", status(503), "503"},
		{"429", status(429, "Retry-After", "0"), "429"},
		{"408", status(408), "408"},
		{"wrong content type", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			io.WriteString(w, "<html>proxy error</html>")
		}, `"text/html"`},
		{"unknown content encoding", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/event-stream")
			w.Header().Set("Content-Encoding", "br")
			io.WriteString(w, "\x00\x01")
		}, `"br"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newServer(t, serve(evt("1", body("1"))), tt.h, tt.h, serve(evt("2", body("2"))))
			var rec recorder
			s := open(t, Config{URL: srv.URL, OnState: rec.on})
			fs, err := readAll(t, s)
			if !errors.Is(err, ingest.ErrStreamEnded) || len(fs) != 2 {
				t.Fatalf("%d frames, err %v", len(fs), err)
			}
			reqs := srv.requests()
			if got := reqs[3].header.Get("Last-Event-ID"); got != "1" {
				t.Fatalf("resumed from %q", got)
			}
			var attempts []int
			for _, c := range rec.all() {
				if c.State == ingest.StateReconnecting {
					attempts = append(attempts, c.Attempt)
					if c.Attempt > 1 && !strings.Contains(c.Err.Error(), tt.want) {
						t.Fatalf("reconnect reason %v lacks %s", c.Err, tt.want)
					}
				}
			}
			// The count restarts once the last connection delivered an event.
			if fmt.Sprint(attempts) != "[1 2 3 1]" {
				t.Fatalf("attempts %v", attempts)
			}
		})
	}
}

func TestGzipDespiteIdentity(t *testing.T) {
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("Content-Encoding", "gzip")
		zw := gzip.NewWriter(w)
		io.WriteString(zw, evt("1", body("1")))
		zw.Flush()
		w.(http.Flusher).Flush()
		io.WriteString(zw, evt("2", body("2")))
		zw.Close()
	})
	s := open(t, Config{URL: srv.URL})
	fs, err := readAll(t, s)
	if !errors.Is(err, ingest.ErrStreamEnded) || len(fs) != 2 || fs[1].Cursor != "2" || string(fs[0].Data) != body("1") {
		t.Fatalf("frames %+v err %v", fs, err)
	}
}

func TestOversizedEvent(t *testing.T) {
	big := `{"type":"update","data":"` + strings.Repeat("x", 5000) + `"}`
	srv := newServer(t, serve(evt("1", body("1")), evt("2", big), evt("3", body("3"))))
	s := open(t, Config{URL: srv.URL, MaxEventBytes: 100})
	fs, err := readAll(t, s)
	if !errors.Is(err, ingest.ErrStreamEnded) || len(fs) != 3 {
		t.Fatalf("%d frames, err %v", len(fs), err)
	}
	if f := fs[1]; !f.TooLarge || string(f.Data) != big[:100] || f.Cursor != "2" {
		t.Fatalf("too-large frame: %v %q %q", f.TooLarge, f.Data, f.Cursor)
	}
	if fs[0].TooLarge || fs[2].TooLarge || fs[2].Cursor != "3" {
		t.Fatalf("neighbours: %+v", fs)
	}
	if n := len(srv.requests()); n != 2 {
		t.Fatalf("%d requests: the stream must continue on the same connection", n)
	}
}

func TestSecretsNeverInErrors(t *testing.T) {
	srv := newServer(t)
	url := srv.URL + "/direct?url=https%3A%2F%2Fapi&apiKey=upstream_secret&headers=%7B%22X%22%3A%22hdr_secret%22%7D"
	srv.Close() // connection refused: the error comes from net/http with the URL in it
	var rec recorder
	s := open(t, Config{URL: url, Client: key("rs_topsecret"), OnState: rec.on,
		Reconnect: client.Backoff{Initial: 10 * time.Millisecond, Max: 10 * time.Millisecond, MaxAttempts: 2}})
	_, err := readAll(t, s)
	if !ingest.IsPermanent(err) {
		t.Fatalf("err = %v", err)
	}
	msgs := []string{err.Error()}
	for _, c := range rec.all() {
		if c.Err != nil {
			msgs = append(msgs, c.Err.Error())
		}
	}
	for _, m := range msgs {
		for _, secret := range []string{"upstream_secret", "hdr_secret", "rs_topsecret"} {
			if strings.Contains(m, secret) {
				t.Fatalf("%q leaks %s", m, secret)
			}
		}
	}
}

func TestCloseWhileStreaming(t *testing.T) {
	hold := make(chan struct{})
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		serve(evt("1", body("1")))(w, r)
		select {
		case <-hold:
		case <-r.Context().Done():
		}
	})
	defer close(hold)
	s := open(t, Config{URL: srv.URL})
	if _, err := s.Next(context.Background()); err != nil {
		t.Fatal(err)
	}
	res := make(chan error, 1)
	go func() { _, err := s.Next(context.Background()); res <- err }()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-res; !errors.Is(err, ErrClosed) {
		t.Fatalf("Next after Close: %v", err)
	}
}

func TestConfigErrors(t *testing.T) {
	tests := []struct {
		cfg         Config
		field, want string
	}{
		{Config{}, "URL", "is required"},
		{Config{URL: "ftp://h/x"}, "URL", "not an http(s)"},
		{Config{URL: "http://"}, "URL", "not an http(s)"},
		{Config{URL: "http://h/%zz?apiKey=s3cret"}, "URL", "not an http(s)"},
		{Config{URL: "http://h", IdleTimeout: -1}, "IdleTimeout", "negative"},
		{Config{URL: "http://h", MaxEventBytes: -1}, "MaxEventBytes", "negative"},
		{Config{URL: "http://h", Reconnect: client.Backoff{Max: -1}}, "Reconnect.Max", "negative"},
		{Config{URL: "http://h", Reconnect: client.Backoff{Initial: time.Nanosecond}}, "Reconnect.Initial", "below the minimum"},
		{Config{URL: "http://h", Reconnect: client.Backoff{Initial: 9 * time.Millisecond}}, "Reconnect.Initial", "below the minimum"},
		{Config{URL: "http://h", MaxSilence: -1}, "MaxSilence", "negative"},
	}
	for _, tt := range tests {
		t.Run(tt.field+" "+tt.want, func(t *testing.T) {
			_, err := NewSource(tt.cfg)
			var fe *ingest.FieldError
			if !errors.As(err, &fe) || fe.Field != tt.field || !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "s3cret") {
				t.Fatalf("err = %v, want a FieldError of %s saying %q", err, tt.field, tt.want)
			}
			if verr := tt.cfg.Validate(); verr == nil || verr.Error() != err.Error() {
				t.Fatalf("Validate() = %v, NewSource: %v", verr, err)
			}
		})
	}
}

// TestEmptyEventDelivered: "data:" alone is delivered as an empty frame, as
// the WebSocket source delivers an empty message, so the pipeline counts it.
func TestEmptyEventDelivered(t *testing.T) {
	srv := newServer(t, serve(evt("1", body("1")), evt("2", ""), evt("3", body("3"))))
	s := open(t, Config{URL: srv.URL})
	fs, err := readAll(t, s)
	if !errors.Is(err, ingest.ErrStreamEnded) || len(fs) != 3 {
		t.Fatalf("%d frames, err %v", len(fs), err)
	}
	if f := fs[1]; len(f.Data) != 0 || f.Cursor != "2" {
		t.Fatalf("empty event: %q, cursor %q", f.Data, f.Cursor)
	}
}

// TestMaxAttemptsNeedsAcceptedFrames: with reconnect.max_attempts, a
// server whose every connection delivers one frame the pipeline rejects (it
// never calls Progress) and closes ends the source; frames the pipeline
// accepts keep it going.
func TestMaxAttemptsNeedsAcceptedFrames(t *testing.T) {
	for _, accept := range []bool{false, true} {
		t.Run(fmt.Sprintf("accept=%v", accept), func(t *testing.T) {
			var conns atomic.Int64
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				n := conns.Add(1)
				if n > 6 {
					w.WriteHeader(http.StatusNoContent)
					return
				}
				w.Header().Set("Content-Type", "text/event-stream")
				fmt.Fprintf(w, "id: %d\ndata: %s\n\n", n, body(fmt.Sprint(n)))
			}))
			t.Cleanup(srv.Close)
			s := open(t, Config{URL: srv.URL, Reconnect: client.Backoff{Initial: 10 * time.Millisecond, Max: 10 * time.Millisecond, MaxAttempts: 2}})
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			var err error
			for {
				if _, err = s.Next(ctx); err != nil {
					break
				}
				if accept {
					s.Progress()
				}
			}
			var pe *ingest.PermanentError
			switch {
			case accept && !errors.Is(err, ingest.ErrStreamEnded):
				t.Fatalf("accepted frames: ended with %v, want the server's end", err)
			case !accept && (!errors.As(err, &pe) || !errors.Is(err, client.ErrReconnectsExhausted)):
				t.Fatalf("rejected frames: ended with %v, want reconnects exhausted", err)
			case !accept && conns.Load() != 3:
				t.Fatalf("%d connections, want 3", conns.Load())
			}
		})
	}
}
