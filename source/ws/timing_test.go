package ws

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/coder/websocket"

	"github.com/restless-stream/ingest"
	"github.com/restless-stream/ingest/client"
)

// hijackRW is a ResponseWriter whose Hijack hands over one end of a net.Pipe,
// so websocket.Accept runs without any network, inside a synctest bubble.
type hijackRW struct {
	header http.Header
	code   int
	wrote  chan struct{}
	conn   net.Conn
	body   bytes.Buffer
}

func (w *hijackRW) Header() http.Header { return w.header }
func (w *hijackRW) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
		close(w.wrote)
	}
}
func (w *hijackRW) Write(b []byte) (int, error) { w.WriteHeader(200); return w.body.Write(b) }
func (w *hijackRW) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	return w.conn, bufio.NewReadWriter(bufio.NewReader(w.conn), bufio.NewWriter(w.conn)), nil
}

// memWS serves the n-th request with handlers[n] over an in-memory pipe;
// past the script it answers 204.
type memWS struct {
	mu       sync.Mutex
	handlers []http.HandlerFunc
	at       []time.Time
	cursors  []string
}

func (m *memWS) RoundTrip(req *http.Request) (*http.Response, error) {
	m.mu.Lock()
	m.at = append(m.at, time.Now())
	m.cursors = append(m.cursors, req.URL.Query().Get("cursor"))
	h := status(http.StatusNoContent)
	if len(m.handlers) > 0 {
		h, m.handlers = m.handlers[0], m.handlers[1:]
	}
	m.mu.Unlock()
	cli, srv := net.Pipe()
	rw := &hijackRW{header: http.Header{}, wrote: make(chan struct{}), conn: srv}
	done := make(chan struct{})
	go func() {
		defer close(done)
		h(rw, req)
		if rw.code != http.StatusSwitchingProtocols {
			srv.Close()
		}
	}()
	select {
	case <-rw.wrote:
	case <-done:
	}
	if rw.code == http.StatusSwitchingProtocols {
		return &http.Response{StatusCode: rw.code, Header: rw.header, Body: cli, Request: req}, nil
	}
	<-done
	cli.Close()
	return &http.Response{StatusCode: rw.code, Header: rw.header, Body: io.NopCloser(&rw.body), Request: req}, nil
}

func memSource(t *testing.T, m *memWS, cfg Config) (*Source, *recorder) {
	t.Helper()
	rec := &recorder{}
	cfg.URL = "ws://restless.test/ws?streamId=s1"
	cfg.Client = withTransport(t, m)
	cfg.OnState = rec.on
	s, err := NewSource(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, rec
}

func drainMem(s *Source) ([]ingest.Frame, error) {
	var fs []ingest.Frame
	for {
		f, err := s.Next(context.Background())
		if err != nil {
			return fs, err
		}
		s.Progress() // as the pipeline does for every accepted frame
		fs = append(fs, f)
	}
}

// mute accepts, sends msgs, then reads nothing and answers nothing: a dead
// peer behind a live TCP link. It returns once the client gives up.
func mute(msgs ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		for _, m := range msgs {
			if c.Write(context.Background(), websocket.MessageText, []byte(m)) != nil {
				return
			}
		}
		// Swallow whatever arrives (pings) without answering, until closed.
		w.(*hijackRW).conn.SetReadDeadline(time.Time{})
		io.Copy(io.Discard, w.(*hijackRW).conn)
	}
}

func TestIdleStallReconnects(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := &memWS{handlers: []http.HandlerFunc{mute(msg("1")), send(websocket.StatusNormalClosure, msg("2"))}}
		s, rec := memSource(t, m, Config{IdleTimeout: 10 * time.Second,
			Reconnect: client.Backoff{Initial: time.Second, Max: time.Second}})
		fs, err := drainMem(s)
		if !errors.Is(err, ingest.ErrStreamEnded) || len(fs) != 2 {
			t.Fatalf("%d frames, %v", len(fs), err)
		}
		if m.cursors[1] != "1" {
			t.Fatalf("resumed from %q", m.cursors[1])
		}
		if g := m.at[1].Sub(m.at[0]); g < 10500*time.Millisecond || g > 11*time.Second {
			t.Fatalf("reconnected after %v", g)
		}
		var idle bool
		for _, c := range rec.all() {
			idle = idle || c.State == ingest.StateReconnecting && strings.Contains(c.Err.Error(), "no data from the server")
		}
		if !idle {
			t.Fatalf("no idle reason in %v", rec.all())
		}
	})
}

// A quiet server that answers pings keeps the link: our pings (every
// IdleTimeout/2) draw pongs, and pongs are bytes. A slow consumer does not
// count as idleness either.
func TestPingsKeepQuietLinkAlive(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		quiet := ws(func(ctx context.Context, c *websocket.Conn) {
			c.Write(ctx, websocket.MessageText, []byte(msg("1")))
			rctx := c.CloseRead(ctx) // answers pings while it waits
			select {
			case <-time.After(5 * time.Minute):
			case <-rctx.Done():
				return
			}
			c.Write(ctx, websocket.MessageText, []byte(msg("2")))
			time.Sleep(10 * time.Minute) // the consumer is slow meanwhile
			c.Write(ctx, websocket.MessageText, []byte(msg("3")))
			c.Close(websocket.StatusNormalClosure, "")
		})
		m := &memWS{handlers: []http.HandlerFunc{quiet}}
		s, _ := memSource(t, m, Config{IdleTimeout: 10 * time.Second})
		var fs []ingest.Frame
		for {
			f, err := s.Next(context.Background())
			if err != nil {
				break
			}
			fs = append(fs, f)
			if len(fs) == 2 {
				time.Sleep(time.Hour)
			}
		}
		if len(fs) != 3 || len(m.at) != 2 { // the link, then the 204
			t.Fatalf("%d frames over %d connections", len(fs), len(m.at))
		}
	})
}

func TestRetryAfterHonoured(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := &memWS{handlers: []http.HandlerFunc{status(429, "Retry-After", "7")}}
		s, rec := memSource(t, m, Config{Reconnect: client.Backoff{Initial: 100 * time.Millisecond, Max: time.Minute}})
		if _, err := drainMem(s); !errors.Is(err, ingest.ErrStreamEnded) {
			t.Fatal(err)
		}
		if g := m.at[1].Sub(m.at[0]); g != 7*time.Second {
			t.Fatalf("waited %v", g)
		}
		if st := rec.all()[1]; st.State != ingest.StateReconnecting || st.Delay != 7*time.Second || st.Attempt != 1 {
			t.Fatalf("state %+v", st)
		}
	})
}
