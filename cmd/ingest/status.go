package main

import (
	"cmp"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"math"
	"net/http"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/restless-stream/ingest"
	"github.com/restless-stream/ingest/pipeline"
)

// The JSON of the status endpoints (INGEST.md, "Status of a running daemon"):
// the daemon writes these types and `ingest status` and `ingest top` read them.

// StreamStatus is one object of GET /v1/streams.
type StreamStatus struct {
	Name string `json:"name"`
	// Owner is the member id of the process that reads the stream.
	Owner string `json:"owner"`
	// State is one of the stream* state constants.
	State string `json:"state"`
	// Cursor is the last event id received ("" before the first).
	Cursor string `json:"cursor"`
	// Checkpoint is the last cursor saved ("" before the first save).
	Checkpoint      string `json:"checkpoint"`
	EventsPublished int64  `json:"events_published"`
	EventsRejected  int64  `json:"events_rejected"`
	// LastEventAt is when the last event was received; null before the first.
	LastEventAt *time.Time `json:"last_event_at"`
	// LagSeconds is now − meta.timestamp of the last accepted event; 0 before one.
	LagSeconds float64 `json:"lag_seconds"`
	// LastError is the last error the stream met and has not recovered from,
	// redacted; null when there is none.
	LastError *string `json:"last_error"`
}

// ClusterStatus is the answer of GET /v1/cluster.
type ClusterStatus struct {
	Members []MemberStatus `json:"members"`
}

// MemberStatus is one member of the cluster and the names of the streams it reads.
type MemberStatus struct {
	ID      string   `json:"id"`
	Streams []string `json:"streams"`
}

// The states of StreamStatus.State.
const (
	streamConnecting   = "connecting"
	streamConnected    = "connected"
	streamReconnecting = "reconnecting"
	streamStopped      = "stopped"
	streamEnded        = "ended"
	streamNotOwned     = "not_owned"
)

// streamStates lists every state, in the order of INGEST.md.
var streamStates = []string{streamConnecting, streamConnected, streamReconnecting, streamStopped, streamEnded, streamNotOwned}

// memberID is this process's member id: the host name (characters outside
// [A-Za-z0-9_-] replaced by "-") and "-" and six random hexadecimal digits,
// chosen once per process. In cluster mode cluster.member takes its place.
var memberID = sync.OnceValue(func() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "ingest"
	}
	b := []byte(host)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			b[i] = '-'
		}
	}
	if len(b) > 64 {
		b = b[:64]
	}
	r := make([]byte, 3)
	_, _ = rand.Read(r) // crypto/rand does not fail
	return string(b) + "-" + hex.EncodeToString(r)
})

// streamState maps a lane's state and its source's last reported state
// (reported false before the source said anything) to a StreamStatus state.
// A lane that failed for good is stopped; its error is in last_error.
func streamState(lane pipeline.LaneState, src ingest.State, reported bool) string {
	switch lane {
	case pipeline.LaneEnded:
		return streamEnded
	case pipeline.LaneStopped, pipeline.LaneFailed:
		return streamStopped
	case pipeline.LaneRunning:
		if !reported {
			return streamConnecting
		}
		switch src {
		case ingest.StateConnected:
			return streamConnected
		case ingest.StateReconnecting:
			return streamReconnecting
		case ingest.StateEnded:
			return streamEnded // draining what it read; the lane ends next
		case ingest.StateFailed:
			return streamStopped
		}
	}
	return streamConnecting // idle, starting, or the source's first attempt
}

// streamLive is what a stream's observer keeps for the status endpoints
// beyond its counters: the source's state, the lag of the last accepted
// event and the last error. Its methods are cheap and safe for concurrent use.
type streamLive struct {
	source atomic.Int32 // ingest.State + 1; 0 until the source reports
	lag    atomic.Int64 // nanoseconds
	err    atomic.Pointer[liveError]
}

// liveError is an error and the part of the stream it came from, which
// clears it when that part recovers.
type liveError struct {
	from errFrom
	msg  string
}

type errFrom int

const (
	errFromSource errFrom = iota
	errFromWrite
	errFromCheckpoint
)

// state records a source state change: its error, if any, becomes the last
// error; connecting again clears the source's last error.
func (l *streamLive) state(c ingest.StateChange) {
	l.source.Store(int32(c.State) + 1)
	switch {
	case c.Err != nil:
		l.fail(errFromSource, c.Err)
	case c.State == ingest.StateConnected:
		l.recovered(errFromSource)
	}
}

func (l *streamLive) fail(from errFrom, err error) {
	if err == nil {
		return
	}
	l.err.Store(&liveError{from: from, msg: err.Error()})
}

// recovered clears the last error if it came from from.
func (l *streamLive) recovered(from errFrom) {
	if e := l.err.Load(); e != nil && e.from == from {
		l.err.CompareAndSwap(e, nil)
	}
}

// sourceState returns the source's last reported state.
func (l *streamLive) sourceState() (ingest.State, bool) {
	v := l.source.Load()
	return ingest.State(v - 1), v != 0
}

// maxErrorBytes bounds last_error: an error may quote what a server sent.
const maxErrorBytes = 1024

// statusBoard answers the status endpoints from what the daemon holds at
// the time of each request, so that streams added or removed while it runs
// show as they are. Its methods are safe for concurrent use.
type statusBoard struct {
	member  string
	metrics *Metrics

	// lanes returns the status of every stream this process runs.
	lanes atomic.Pointer[func() []pipeline.StreamStatus]
	// others returns the streams this process knows but does not run.
	others atomic.Pointer[func() []StreamStatus]
}

// newStatusBoard returns a board for the process member, reading each
// stream's counters, source state, lag and last error from m and the
// streams it runs from lanes.
func newStatusBoard(member string, m *Metrics, lanes func() []pipeline.StreamStatus) *statusBoard {
	b := &statusBoard{member: member, metrics: m}
	b.SetLanes(lanes)
	return b
}

// SetLanes replaces the function that lists the streams this process runs.
func (b *statusBoard) SetLanes(lanes func() []pipeline.StreamStatus) { b.lanes.Store(&lanes) }

// SetOthers sets the function that lists the streams this process knows but
// does not run: in cluster mode, those another member reads (State
// not_owned, Owner that member, or "" while nobody does). A stream both run
// here and listed there is shown as run here. nil lists none.
func (b *statusBoard) SetOthers(others func() []StreamStatus) { b.others.Store(&others) }

// streams returns one StreamStatus per stream, sorted by name; a stream
// both run here and listed by others is shown as run here.
func (b *statusBoard) streams() []StreamStatus {
	var lanes []pipeline.StreamStatus
	if f := b.lanes.Load(); f != nil && *f != nil {
		lanes = (*f)()
	}
	out := make([]StreamStatus, 0, len(lanes))
	seen := make(map[string]bool, len(lanes))
	for _, l := range lanes {
		seen[l.Name] = true
		out = append(out, b.stream(l))
	}
	if f := b.others.Load(); f != nil && *f != nil {
		for _, s := range (*f)() {
			if seen[s.Name] {
				continue
			}
			seen[s.Name] = true
			s.LastError = redactError(s.LastError)
			out = append(out, s)
		}
	}
	slices.SortFunc(out, func(a, b StreamStatus) int { return cmp.Compare(a.Name, b.Name) })
	return out
}

// stream builds the StreamStatus of a stream run here.
func (b *statusBoard) stream(l pipeline.StreamStatus) StreamStatus {
	s := StreamStatus{
		Name:       l.Name,
		Owner:      b.member,
		Cursor:     l.Received,
		Checkpoint: l.Checkpoint,
	}
	if s.Cursor == "" {
		s.Cursor = l.Acknowledged // read before this process started
	}
	if !l.ReceivedAt.IsZero() {
		t := l.ReceivedAt.UTC()
		s.LastEventAt = &t
	}
	var src ingest.State
	var reported bool
	if m := b.metrics.existing(l.Name); m != nil {
		src, reported = m.live.sourceState()
		s.EventsPublished = m.nPublished.Load()
		s.EventsRejected = m.nRejected.Load()
		s.LagSeconds = math.Round(time.Duration(m.live.lag.Load()).Seconds()*1000) / 1000
		if e := m.live.err.Load(); e != nil {
			s.LastError = &e.msg
		}
	}
	s.State = streamState(l.State, src, reported)
	if l.Err != nil {
		msg := l.Err.Error()
		s.LastError = &msg
	}
	s.LastError = redactError(s.LastError)
	return s
}

// redactError scrubs secrets from an error message and bounds its length.
func redactError(p *string) *string {
	if p == nil {
		return nil
	}
	s := redactText(*p)
	if len(s) > maxErrorBytes {
		cut := maxErrorBytes
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "…"
	}
	return &s
}

// cluster groups the streams by owner; this process is always a member.
func (b *statusBoard) cluster() ClusterStatus {
	by := map[string][]string{b.member: {}}
	for _, s := range b.streams() {
		if s.Owner == "" {
			continue // not owned by anyone yet
		}
		by[s.Owner] = append(by[s.Owner], s.Name)
	}
	out := ClusterStatus{Members: make([]MemberStatus, 0, len(by))}
	for id, names := range by {
		out.Members = append(out.Members, MemberStatus{ID: id, Streams: names})
	}
	slices.SortFunc(out.Members, func(a, b MemberStatus) int { return cmp.Compare(a.ID, b.ID) })
	return out
}

// routes registers GET /v1/streams and GET /v1/cluster.
func (b *statusBoard) routes(mux *http.ServeMux) {
	mux.HandleFunc("GET /v1/streams", func(w http.ResponseWriter, _ *http.Request) {
		serveJSON(w, b.streams())
	})
	mux.HandleFunc("GET /v1/cluster", func(w http.ResponseWriter, _ *http.Request) {
		serveJSON(w, b.cluster())
	})
}

func serveJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(v)
}

// existing returns the metrics of a stream that has them, without creating any.
func (m *Metrics) existing(name string) *StreamMetrics {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.streams[name]
}
