package emulator

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/restless-stream/ingest/client"
)

const testKey = "rs_0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

// waitLong bounds every wait in the tests; reaching it is a failure, never a
// timing measurement.
const waitLong = 10 * time.Second

func startEmu(t *testing.T, opts Options) *Emulator {
	t.Helper()
	if opts.APIKeys == nil {
		opts.APIKeys = []string{testKey}
	}
	e, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := e.Close(); err != nil {
			t.Error(err)
		}
	})
	return e
}

// call makes a REST request with the test key and decodes a JSON answer.
func call(t *testing.T, e *Emulator, method, path string, body any) (int, map[string]any) {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		raw, _ := json.Marshal(b)
		rd = bytes.NewReader(raw)
	}
	req, _ := http.NewRequest(method, e.URL()+path, rd)
	req.Header.Set("x-api-key", testKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var m map[string]any
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatalf("%s %s: answer %q is not a JSON object", method, path, raw)
		}
	}
	return resp.StatusCode, m
}

// received is one event read by a test subscriber.
type received struct {
	id  string
	raw []byte
	ev  client.Event
	err error // a read error ends the subscription
}

// subscriber reads a runtime connection in the background.
type subscriber struct {
	ch     chan received
	cancel context.CancelFunc
	done   chan struct{}
	resp   *http.Response
}

func (s *subscriber) close() {
	s.cancel()
	<-s.done
}

// next returns the next event, failing the test on a read error or timeout.
func (s *subscriber) next(t *testing.T) received {
	t.Helper()
	select {
	case r, ok := <-s.ch:
		if !ok {
			t.Fatal("subscription ended")
		}
		if r.err != nil {
			t.Fatalf("subscription: %v", r.err)
		}
		return r
	case <-time.After(waitLong):
		t.Fatal("no event")
	}
	return received{}
}

// end waits for the subscription to end and returns its final error (nil for a clean end).
func (s *subscriber) end(t *testing.T) error {
	t.Helper()
	timeout := time.After(waitLong)
	for {
		select {
		case r, ok := <-s.ch:
			if !ok {
				return nil
			}
			if r.err != nil {
				return r.err
			}
		case <-timeout:
			t.Fatal("subscription did not end")
		}
	}
}

func decodeReceived(r received) received {
	if r.err == nil {
		if err := client.DecodeEvent(r.raw, &r.ev); err != nil {
			r.err = err
		}
	}
	return r
}

// subscribeSSE opens an SSE connection; hdr adds request headers.
func subscribeSSE(t *testing.T, url string, hdr map[string]string) *subscriber {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	req.Header.Set("Authorization", "Bearer "+testKey)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	s := &subscriber{ch: make(chan received, 1024), cancel: cancel, done: make(chan struct{}), resp: resp}
	go func() {
		defer close(s.done)
		defer close(s.ch)
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return
		}
		br := bufio.NewReader(resp.Body)
		for {
			id, data, err := readSSE(br)
			if err == io.EOF {
				return
			}
			r := received{err: err}
			if err == nil {
				r = decodeReceived(received{id: id, raw: data})
			}
			select {
			case s.ch <- r:
			case <-ctx.Done():
				return
			}
			if r.err != nil {
				return
			}
		}
	}()
	t.Cleanup(s.close)
	return s
}

// subscribeWS opens a WebSocket connection.
func subscribeWS(t *testing.T, url string) *subscriber {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	c, resp, err := websocket.Dial(ctx, url, &websocket.DialOptions{
		HTTPHeader: http.Header{"Authorization": {"Bearer " + testKey}},
	})
	if err != nil {
		cancel()
		t.Fatalf("dial %s: %v", url, err)
	}
	c.SetReadLimit(-1)
	s := &subscriber{ch: make(chan received, 1024), cancel: cancel, done: make(chan struct{}), resp: resp}
	go func() {
		defer close(s.done)
		defer close(s.ch)
		defer c.CloseNow()
		for {
			_, b, err := c.Read(ctx)
			if websocket.CloseStatus(err) == websocket.StatusNormalClosure {
				return
			}
			r := received{err: err}
			if err == nil {
				r = decodeReceived(received{raw: b})
				r.id = r.ev.EventID
			}
			select {
			case s.ch <- r:
			case <-ctx.Done():
				return
			}
			if r.err != nil {
				return
			}
		}
	}()
	t.Cleanup(s.close)
	return s
}

// upstream is an httptest-style REST endpoint whose body the test changes.
type upstream struct {
	mu       sync.Mutex
	body     string
	status   int
	requests int
	lastReq  *http.Request
	lastBody string
}

func (u *upstream) set(status int, body string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.status, u.body = status, body
}

func (u *upstream) count() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.requests
}

func (u *upstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	u.mu.Lock()
	u.requests++
	u.lastReq, u.lastBody = r, string(b)
	status, body := u.status, u.body
	u.mu.Unlock()
	if status == 0 {
		status = http.StatusOK
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	io.WriteString(w, body)
}

// sseURL and wsURL of a stream on e.
func sseURL(e *Emulator, id string) string { return e.URL() + "/?streamId=" + id }
func wsURL(e *Emulator, id string) string {
	return "ws" + strings.TrimPrefix(e.URL(), "http") + "/ws?streamId=" + id
}

// verify checks an update's signature with the client's verifier.
func verify(t *testing.T, secret string, r received) {
	t.Helper()
	v, err := client.NewVerifier([]string{secret})
	if err != nil {
		t.Fatal(err)
	}
	if err := v.Verify(r.ev.Data, r.ev.Signature); err != nil {
		t.Fatalf("event %s: %v", r.id, err)
	}
	if !client.IsCanonical(r.ev.Data) {
		t.Fatalf("event %s: data %s is not canonical", r.id, r.ev.Data)
	}
}

// readSSE reads one event of the emulator's SSE framing (id, event, data
// lines, a blank line; comments skipped). io.EOF at a clean end between events.
func readSSE(br *bufio.Reader) (id string, data []byte, err error) {
	started := false
	for {
		line, err := br.ReadBytes('\n')
		if err != nil {
			if err == io.EOF && (started || len(line) > 0) {
				return "", nil, io.ErrUnexpectedEOF
			}
			return "", nil, err
		}
		line = bytes.TrimSuffix(line, []byte("\n"))
		switch {
		case len(line) == 0:
			if started {
				return id, data, nil
			}
		case line[0] == ':':
		case bytes.HasPrefix(line, []byte("id: ")):
			id, started = string(line[4:]), true
		case bytes.HasPrefix(line, []byte("event: ")):
			started = true
		case bytes.HasPrefix(line, []byte("data: ")):
			data, started = append([]byte(nil), line[6:]...), true
		default:
			return "", nil, fmt.Errorf("unexpected SSE line %q", line)
		}
	}
}
