package emulator

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/restless-stream/ingest/client"
)

// errFaultClose ends a connection because of Faults.CloseAfter.
var errFaultClose = errors.New("emulator: connection closed by fault")

// runtimeAuth checks Authorization: Bearer (or apiKey= on any runtime URL).
func (e *Emulator) runtimeAuth(w http.ResponseWriter, r *http.Request) bool {
	key := ""
	if h := r.Header.Get("Authorization"); len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		key = strings.TrimSpace(h[7:])
	}
	if key == "" {
		key = r.URL.Query().Get(client.ParamAPIKey)
	}
	if !e.isKey(key) {
		writeError(w, http.StatusUnauthorized, "Invalid or missing API key (Authorization: Bearer)")
		return false
	}
	return true
}

// readPosition reads where a connection starts: the Last-Event-ID header,
// else cursor=, else since= (a cursor or an ISO-8601 timestamp). A cursor that
// is not an event id of this emulator replays everything still buffered.
func readPosition(r *http.Request) (position, error) {
	q := r.URL.Query()
	c := r.Header.Get(client.HeaderLastEventID)
	if c == "" {
		c = q.Get(client.ParamCursor)
	}
	if c != "" {
		if n, err := strconv.ParseInt(c, 10, 64); err == nil {
			return position{kind: posAfter, value: n}, nil
		}
		return position{kind: posFrom, value: 0}, nil
	}
	s := q.Get(client.ParamSince)
	if s == "" {
		return position{kind: posLatest}, nil
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return position{kind: posAfter, value: n}, nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999", "2006-01-02T15:04", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return position{kind: posFrom, value: t.UnixMilli()}, nil
		}
	}
	return position{}, errors.New(client.ParamSince + " must be an ISO-8601 timestamp or a cursor")
}

// lookupTarget finds the stream of a managed runtime URL (streamId= or sessionId=).
func (e *Emulator) lookupTarget(w http.ResponseWriter, r *http.Request) *stream {
	q := r.URL.Query()
	sid, ses := q.Get(client.ParamStreamID), q.Get(client.ParamSessionID)
	if (sid == "") == (ses == "") {
		writeError(w, http.StatusBadRequest, "exactly one of "+client.ParamStreamID+" or "+client.ParamSessionID+" is required")
		return nil
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if sid != "" {
		st := e.streams[sid]
		if st == nil {
			notFound(w, sid)
		}
		return st
	}
	st := e.sessions[ses]
	if st == nil || !time.Now().Before(st.expires) {
		writeError(w, http.StatusNotFound, "Session "+ses+" not found or expired")
		return nil
	}
	return st
}

func (e *Emulator) handleSSE(w http.ResponseWriter, r *http.Request) {
	if !e.runtimeAuth(w, r) {
		return
	}
	if st := e.lookupTarget(w, r); st != nil {
		e.serve(w, r, st, false)
	}
}

func (e *Emulator) handleWS(w http.ResponseWriter, r *http.Request) {
	if !e.runtimeAuth(w, r) {
		return
	}
	if st := e.lookupTarget(w, r); st != nil {
		e.serve(w, r, st, true)
	}
}

// serve streams st's events on one SSE or WebSocket connection.
func (e *Emulator) serve(w http.ResponseWriter, r *http.Request, st *stream, ws bool) {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		writeError(w, http.StatusServiceUnavailable, "emulator shutting down")
		return
	}
	e.handlers.Add(1)
	e.mu.Unlock()
	defer e.handlers.Done()
	pos, err := readPosition(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	defer context.AfterFunc(e.ctx, cancel)()

	f := st.faults.take()
	if f != nil && f.StallHeaders {
		<-ctx.Done()
		return
	}
	if f != nil && f.Status != 0 {
		if f.RetryAfter > 0 {
			w.Header().Set("Retry-After", retryAfterValue(f.RetryAfter))
		}
		if f.Status == http.StatusNoContent {
			w.WriteHeader(http.StatusNoContent)
		} else {
			writeError(w, f.Status, "fault injected by the emulator")
		}
		return
	}
	src, ended, err := e.newSource(st, pos)
	if err != nil {
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusServiceUnavailable, err.Error())
		return
	}
	if ended {
		w.WriteHeader(http.StatusNoContent) // a finite stream whose end was reached
		return
	}

	e.conns.Add(1)
	defer e.conns.Add(-1)
	e.attach(st)
	defer e.detach(st)

	if ws {
		e.serveWS(ctx, w, r, src, f)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	if f != nil && f.WrongContentType {
		h.Set("Content-Type", "text/html; charset=utf-8")
	}
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	if f != nil && f.Gzip {
		h.Set("Content-Encoding", "gzip")
	}
	w.WriteHeader(http.StatusOK)
	sw := newSSEWriter(ctx, w, f)
	if err := sw.flush(); err != nil {
		src.stop()
		return
	}
	err = pump(ctx, sw, src, f, e.opts.KeepAlive)
	if errors.Is(err, errAbort) {
		panic(http.ErrAbortHandler) // cut the connection: no end of the chunked body
	}
	_ = sw.close()
}

// stallLimit bounds how long a WebSocket connection under a Stall fault is
// held: it is not read (so its close is not noticed), and must not be held
// for ever.
const stallLimit = 5 * time.Minute

func (e *Emulator) serveWS(ctx context.Context, w http.ResponseWriter, r *http.Request, src eventSource, f *Faults) {
	c, err := websocket.Accept(w, r, &websocket.AcceptOptions{
		OriginPatterns:  []string{"*"},
		CompressionMode: websocket.CompressionDisabled,
	})
	if err != nil {
		src.stop()
		return
	}
	defer c.CloseNow()
	c.SetReadLimit(64 << 10)
	// A stall must send no byte at all: no pings of ours, and no pongs to the
	// client's pings, which coder/websocket answers only while the
	// connection is read. So a stalling connection is neither read nor
	// pinged, and is held for at most stallLimit.
	stall := f != nil && f.Stall
	if stall {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, stallLimit)
		defer cancel()
	} else {
		ctx = c.CloseRead(ctx) // the client sends nothing; this notices its close
	}
	var pings sync.WaitGroup
	pctx, stopPings := context.WithCancel(ctx)
	if d := e.opts.PingInterval; d > 0 && !stall {
		pings.Go(func() {
			t := time.NewTicker(d)
			defer t.Stop()
			for {
				select {
				case <-pctx.Done():
					return
				case <-t.C:
					pc, cancel := context.WithTimeout(pctx, d)
					_ = c.Ping(pc)
					cancel()
				}
			}
		})
	}
	err = pump(ctx, &wsWriter{ctx: ctx, c: c}, src, f, 0)
	stopPings()
	pings.Wait()
	switch {
	case errors.Is(err, errAbort):
		return // CloseNow: no close frame
	case errors.Is(err, errFaultClose):
		c.Close(websocket.StatusGoingAway, "closed by fault")
	case e.ctx.Err() != nil:
		c.Close(websocket.StatusGoingAway, "emulator shutting down")
	case ctx.Err() == nil && err == nil:
		c.Close(websocket.StatusNormalClosure, "stream ended")
	}
}

// attach and detach count a stream's connections; a direct stream without
// connections is dropped after Options.DirectIdle.
func (e *Emulator) attach(st *stream) {
	e.mu.Lock()
	st.subs.Add(1)
	st.idleSince = time.Time{}
	e.mu.Unlock()
}

func (e *Emulator) detach(st *stream) {
	e.mu.Lock()
	if st.subs.Add(-1) == 0 {
		st.idleSince = time.Now()
	}
	e.mu.Unlock()
}

// newSource returns the event source of a connection reading st from pos;
// ended reports a finite stream already read to its end. A firehose
// connection reserves its memory from Options.MaxFirehoseBytes, given back
// by the source's stop; errFirehoseBusy when there is not enough left.
func (e *Emulator) newSource(st *stream, pos position) (src eventSource, ended bool, err error) {
	if st.fire != nil {
		need := st.fire.memory()
		if e.fhBytes.Add(need) > e.opts.MaxFirehoseBytes {
			e.fhBytes.Add(-need)
			return nil, false, errFirehoseBusy
		}
		src, ended := st.fire.source(st.secret, pos)
		if src == nil {
			e.fhBytes.Add(-need)
			return nil, ended, nil
		}
		src.(*fhSource).release = func() { e.fhBytes.Add(-need) }
		return src, false, nil
	}
	return &feedSource{f: st.feed, seq: st.feed.start(pos), tmp: make([]*storedEvent, 128)}, false, nil
}

// feedSource follows a stream's feed for one connection. On JSON_PATCH
// streams it sends the full document first (and after any gap), patches after.
type feedSource struct {
	f       *feed
	seq     uint64
	haveDoc bool
	tmp     []*storedEvent
}

func (s *feedSource) next(buf []outEvent) (int, wakeup, bool) {
	tmp := s.tmp
	if len(buf) < len(tmp) {
		tmp = tmp[:len(buf)]
	}
	n, next, gap, wake, done := s.f.read(s.seq, tmp)
	s.seq = next
	if gap {
		s.haveDoc = false
	}
	for i, ev := range tmp[:n] {
		b := ev.full
		if ev.update {
			if s.haveDoc && ev.patch != nil {
				b = ev.patch
			}
			s.haveDoc = true
		}
		buf[i] = outEvent{id: ev.idStr, typ: ev.typ, b: b}
	}
	return n, wakeup{ch: wake}, done
}

func (s *feedSource) stop() {}
