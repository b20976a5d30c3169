package ws

import (
	"context"
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

type request struct {
	query  map[string][]string
	header http.Header
}

type server struct {
	*httptest.Server
	mu     sync.Mutex
	reqs   []request
	script []http.HandlerFunc
}

// newServer answers the n-th request with script[n]; past the script, 204.
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

// ws accepts the upgrade and runs fn; the connection is dropped after it.
func ws(fn func(ctx context.Context, c *websocket.Conn)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		c.SetReadLimit(-1)
		fn(r.Context(), c)
	}
}

// send writes the messages, then closes with code (-1: drop the TCP link).
func send(code websocket.StatusCode, msgs ...string) http.HandlerFunc {
	return ws(func(ctx context.Context, c *websocket.Conn) {
		for _, m := range msgs {
			if err := c.Write(ctx, websocket.MessageText, []byte(m)); err != nil {
				return
			}
		}
		if code >= 0 {
			c.Close(code, "bye")
		}
	})
}

func status(code int, hdr ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		for i := 0; i+1 < len(hdr); i += 2 {
			w.Header().Set(hdr[i], hdr[i+1])
		}
		w.WriteHeader(code)
		io.WriteString(w, `{"message":"refused here"}`)
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

func TestResumeAfterClose(t *testing.T) {
	codes := []websocket.StatusCode{websocket.StatusNormalClosure, websocket.StatusGoingAway,
		websocket.StatusInternalError, websocket.StatusPolicyViolation, websocket.StatusTryAgainLater, -1}
	for _, code := range codes {
		t.Run(fmt.Sprint(code), func(t *testing.T) {
			srv := newServer(t, send(code, msg("1"), msg("2")), send(websocket.StatusNormalClosure, msg("3")))
			var rec recorder
			s := open(t, Config{URL: srv.URL + "/?streamId=s1", Since: "2026-01-01T00:00:00Z", Client: key("rs_key"), OnState: rec.on})
			fs, err := readAll(t, s)
			if !errors.Is(err, ingest.ErrStreamEnded) {
				t.Fatalf("err = %v", err)
			}
			var got []string
			for _, f := range fs {
				got = append(got, f.Cursor)
				if string(f.Data) != msg(f.Cursor) {
					t.Fatalf("frame %q cursor %q", f.Data, f.Cursor)
				}
			}
			if strings.Join(got, ",") != "1,2,3" {
				t.Fatalf("cursors %v", got)
			}
			reqs := srv.requests()
			if reqs[0].header.Get("Authorization") != "Bearer rs_key" || reqs[1].header.Get("Authorization") != "Bearer rs_key" {
				t.Fatal("no Bearer key")
			}
			if fmt.Sprint(reqs[0].query["since"]) != "[2026-01-01T00:00:00Z]" || reqs[0].query["cursor"] != nil {
				t.Fatalf("first query %v", reqs[0].query)
			}
			if fmt.Sprint(reqs[1].query["cursor"]) != "[2]" || reqs[1].query["since"] != nil || fmt.Sprint(reqs[1].query["streamId"]) != "[s1]" {
				t.Fatalf("resume query %v", reqs[1].query)
			}
			st := rec.all()
			if st[2].State != ingest.StateReconnecting || st[2].Err == nil {
				t.Fatalf("states %v", st)
			}
			if code >= 0 && !strings.Contains(st[2].Err.Error(), fmt.Sprintf("status %d", int(code))) {
				t.Fatalf("reason %v lacks the close code", st[2].Err)
			}
		})
	}
}

func TestRawMessagesAndOversize(t *testing.T) {
	big := `{"type":"update","event_id":"3","data":"` + strings.Repeat("x", 100000) + `"}`
	srv := newServer(t, send(websocket.StatusNormalClosure, msg("1"), "not json", "", big, msg("4")))
	s := open(t, Config{URL: srv.URL, MaxEventBytes: 1000})
	fs, err := readAll(t, s)
	if !errors.Is(err, ingest.ErrStreamEnded) || len(fs) != 5 {
		t.Fatalf("%d frames, err %v", len(fs), err)
	}
	if string(fs[1].Data) != "not json" || fs[1].Cursor != "1" || fs[1].TooLarge {
		t.Fatalf("bad JSON frame %+v", fs[1])
	}
	if len(fs[2].Data) != 0 || fs[2].Data == nil {
		t.Fatalf("empty message frame %+v", fs[2])
	}
	if f := fs[3]; !f.TooLarge || string(f.Data) != big[:1000] {
		t.Fatalf("oversized frame: TooLarge %v, %d bytes", f.TooLarge, len(f.Data))
	}
	if fs[4].TooLarge || fs[4].Cursor != "4" {
		t.Fatalf("after the oversized message: %+v", fs[4])
	}
	if n := len(srv.requests()); n != 2 { // one link, then the 204
		t.Fatalf("%d requests: the link must survive oversized and bad messages", n)
	}
}

func TestServerPingsAnswered(t *testing.T) {
	pinged := make(chan error, 1)
	srv := newServer(t, ws(func(ctx context.Context, c *websocket.Conn) {
		c.Write(ctx, websocket.MessageText, []byte(msg("1")))
		rctx := c.CloseRead(ctx) // the server reads pongs only
		var err error
		for range 3 {
			pctx, cancel := context.WithTimeout(rctx, 5*time.Second)
			err = errors.Join(err, c.Ping(pctx))
			cancel()
		}
		pinged <- err
		c.Write(ctx, websocket.MessageText, []byte(msg("2")))
		c.Close(websocket.StatusNormalClosure, "")
	}))
	s := open(t, Config{URL: srv.URL})
	fs, err := readAll(t, s)
	if !errors.Is(err, ingest.ErrStreamEnded) || len(fs) != 2 {
		t.Fatalf("%d frames, %v", len(fs), err)
	}
	if err := <-pinged; err != nil {
		t.Fatalf("server pings not answered: %v", err)
	}
}

func TestHandshakeStatus(t *testing.T) {
	tests := []struct {
		name      string
		h         http.HandlerFunc
		permanent bool
		ended     bool
		want      string
	}{
		{"401", status(401), true, false, "API key"},
		{"403", status(403), true, false, "API key"},
		{"404", status(404), true, false, "refused here"},
		{"204", status(204), false, true, ""},
		{"429", status(429, "Retry-After", "0"), false, false, "429"},
		{"503", status(503), false, false, "503"},
		{"200 without upgrade", status(200), false, false, "no WebSocket upgrade"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newServer(t, tt.h, tt.h)
			var rec recorder
			s := open(t, Config{URL: srv.URL + "?apiKey=upstream_secret", Client: key("rs_topsecret"), OnState: rec.on,
				Reconnect: client.Backoff{Initial: 10 * time.Millisecond, Max: 10 * time.Millisecond, MaxAttempts: 1}})
			_, err := readAll(t, s)
			if ingest.IsPermanent(err) != (tt.permanent || !tt.ended) || errors.Is(err, ingest.ErrStreamEnded) != tt.ended {
				t.Fatalf("err = %v", err)
			}
			if !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "secret") {
				t.Fatalf("err = %v, want %q and no secret", err, tt.want)
			}
			n := len(srv.requests())
			if (tt.permanent || tt.ended) && n != 1 || !tt.permanent && !tt.ended && n != 2 {
				t.Fatalf("%d requests", n)
			}
		})
	}
}

func TestCloseWhileConnected(t *testing.T) {
	srv := newServer(t, ws(func(ctx context.Context, c *websocket.Conn) {
		c.Write(ctx, websocket.MessageText, []byte(msg("1")))
		c.CloseRead(ctx)
		<-ctx.Done()
	}))
	s := open(t, Config{URL: srv.URL})
	if _, err := s.Next(context.Background()); err != nil {
		t.Fatal(err)
	}
	res := make(chan error, 1)
	go func() { _, err := s.Next(context.Background()); res <- err }()
	s.Close()
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
		{Config{URL: "ftp://h/x"}, "URL", "scheme"},
		{Config{URL: "/relative?apiKey=s3cret"}, "URL", "absolute"},
		{Config{URL: "ws://h", IdleTimeout: -1}, "IdleTimeout", "negative"},
		{Config{URL: "ws://h", MaxEventBytes: -1}, "MaxEventBytes", "negative"},
		{Config{URL: "ws://h", Reconnect: client.Backoff{MaxAttempts: -1}}, "Reconnect.MaxAttempts", "negative"},
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
