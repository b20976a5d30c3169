package emulator

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/restless-stream/ingest/client"
)

// ErrUnknownStream is returned (wrapped) by the Go API for an unknown stream id.
var ErrUnknownStream = errors.New("emulator: unknown stream")

// StreamSpec creates a managed stream through the Go API (or
// POST /_emulator/streams). Unlike the REST API it can choose the id and secret.
type StreamSpec struct {
	ID              string             `json:"id,omitempty"` // "" = generated
	Name            string             `json:"name,omitempty"`
	URL             string             `json:"url"`
	Method          client.HTTPMethod  `json:"method,omitempty"` // "" = GET
	Headers         map[string]string  `json:"headers,omitempty"`
	Body            json.RawMessage    `json:"body,omitempty"`
	PayloadMode     client.PayloadMode `json:"payloadMode,omitempty"` // "" = FULL_DATA
	PollingInterval float64            `json:"pollingInterval,omitempty"`
	JQFilter        string             `json:"jqFilter,omitempty"`
	Inactive        bool               `json:"inactive,omitempty"` // create without starting its poller
	Secret          string             `json:"secret,omitempty"`   // "" = generated
}

// StreamInfo describes a stream made through the Go API or admin endpoints.
type StreamInfo struct {
	ID     string `json:"id"`
	Secret string `json:"hmacSecret"`
	// SSEURL and WebSocketURL are absolute after Start (or with
	// Options.PublicURL), else relative to the emulator's root.
	SSEURL       string `json:"sseUrl"`
	WebSocketURL string `json:"websocketUrl"`
}

// CreateStream creates a managed stream and starts its poller unless Inactive.
func (e *Emulator) CreateStream(spec StreamSpec) (StreamInfo, error) {
	raw := map[string]json.RawMessage{}
	put := func(k string, v any) { raw[k], _ = json.Marshal(v) }
	put("url", spec.URL)
	if spec.Name == "" {
		spec.Name = spec.URL
	}
	put("name", spec.Name)
	if spec.Method != "" {
		put("method", spec.Method)
	}
	if spec.Headers != nil {
		put("headers", spec.Headers)
	}
	if spec.Body != nil {
		raw["body"] = spec.Body
	}
	if spec.PayloadMode != "" {
		put("payloadMode", spec.PayloadMode)
	}
	if spec.PollingInterval != 0 {
		put("pollingInterval", spec.PollingInterval)
	}
	if spec.JQFilter != "" {
		put("jqFilter", spec.JQFilter)
	}
	if spec.Inactive {
		put("status", client.StatusInactive)
	}
	var c checker
	var cfg streamConfig
	c.applyFields(raw, &cfg, e.opts.MinPollingInterval)
	c.required(&cfg, true)
	if c.msgs != nil {
		return StreamInfo{}, fmt.Errorf("emulator: invalid stream: %s", strings.Join(c.msgs, "; "))
	}
	cfg.withDefaults(&e.opts)
	id, secret := spec.ID, spec.Secret
	if id == "" {
		id = "st_" + randomHex(10)
	}
	if secret == "" {
		secret = randomHex(32)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return StreamInfo{}, errors.New("emulator: closed")
	}
	if _, ok := e.streams[id]; ok {
		return StreamInfo{}, fmt.Errorf("emulator: stream %q already exists", id)
	}
	st := e.newStreamLocked(id, kindManaged, cfg, secret, time.Now().UTC())
	e.streams[id] = st
	if cfg.Status == client.StatusActive {
		e.startPollerLocked(st)
	}
	e.saveLocked()
	return e.infoLocked(st), nil
}

// CreateFirehose creates a firehose stream (see FirehoseConfig).
func (e *Emulator) CreateFirehose(cfg FirehoseConfig) (StreamInfo, error) {
	if err := cfg.validate(); err != nil {
		return StreamInfo{}, fmt.Errorf("emulator: invalid firehose: %w", err)
	}
	if cfg.ID == "" {
		cfg.ID = "fh_" + randomHex(10)
	}
	if cfg.Secret == "" {
		cfg.Secret = randomHex(32)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return StreamInfo{}, errors.New("emulator: closed")
	}
	if _, ok := e.streams[cfg.ID]; ok {
		return StreamInfo{}, fmt.Errorf("emulator: stream %q already exists", cfg.ID)
	}
	now := time.Now().UTC()
	st := &stream{id: cfg.ID, kind: kindFirehose, secret: cfg.Secret, fire: newFirehose(cfg), created: now, updated: now,
		cfg: streamConfig{Name: "firehose", Status: client.StatusActive, PayloadMode: client.PayloadFullData}}
	e.streams[st.id] = st
	return e.infoLocked(st), nil
}

func (e *Emulator) infoLocked(st *stream) StreamInfo {
	base := e.opts.PublicURL
	if base == "" {
		base = e.url
	}
	info := StreamInfo{ID: st.id, Secret: st.secret}
	t := client.RuntimeTarget{StreamID: st.id}
	if base == "" {
		// Relative to the root: the URLs of any host, without it.
		sse, ws := runtimeURLs("http://emulator", t)
		info.SSEURL, info.WebSocketURL = requestURI(sse), requestURI(ws)
	} else {
		info.SSEURL, info.WebSocketURL = runtimeURLs(strings.TrimRight(base, "/"), t)
	}
	return info
}

// requestURI returns the path and query of the absolute URL s.
func requestURI(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return ""
	}
	return u.RequestURI()
}

// lookup finds any stream or session by id.
func (e *Emulator) lookup(id string) (*stream, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if st := e.streams[id]; st != nil {
		return st, nil
	}
	if st := e.sessions[id]; st != nil {
		return st, nil
	}
	return nil, fmt.Errorf("%w %q", ErrUnknownStream, id)
}

// Secret returns the HMAC secret of a stream or session.
func (e *Emulator) Secret(id string) (string, error) {
	st, err := e.lookup(id)
	if err != nil {
		return "", err
	}
	return st.secret, nil
}

// SetFaults sets the faults of a stream or session's future connections.
// The zero Faults clears them.
func (e *Emulator) SetFaults(id string, f Faults) error {
	if err := f.validate(); err != nil {
		return fmt.Errorf("emulator: invalid faults: %w", err)
	}
	st, err := e.lookup(id)
	if err != nil {
		return err
	}
	st.faults.set(&f)
	return nil
}

// ClearFaults removes a stream's faults.
func (e *Emulator) ClearFaults(id string) error { return e.SetFaults(id, Faults{}) }

// Publish appends an update event carrying data (any JSON) to a stream or
// session, as if its upstream had changed, and returns its event_id. On a
// JSON_PATCH stream the event carries a patch against the previous document.
func (e *Emulator) Publish(id string, data []byte) (string, error) {
	st, err := e.lookup(id)
	if err != nil {
		return "", err
	}
	if st.feed == nil {
		return "", fmt.Errorf("emulator: stream %q is a firehose", id)
	}
	doc, err := canonical(data)
	if err != nil {
		return "", fmt.Errorf("emulator: data is not JSON: %w", err)
	}
	e.mu.Lock()
	patch := st.cfg.PayloadMode == client.PayloadJSONPatch
	e.mu.Unlock()
	now := time.Now()
	if _, err := st.feed.publishUpdate(eventMeta{Time: now, AttemptID: newAttemptID(), Status: 200}, doc, st.secret, patch, true); err != nil {
		return "", fmt.Errorf("emulator: %w", err)
	}
	st.usage.add(now, 0, 1)
	last, _ := st.feed.state()
	return strconv.FormatInt(last, 10), nil
}

// PublishError appends an error event to a stream or session and returns its event_id.
func (e *Emulator) PublishError(id string, status int, message string) (string, error) {
	st, err := e.lookup(id)
	if err != nil {
		return "", err
	}
	if st.feed == nil {
		return "", fmt.Errorf("emulator: stream %q is a firehose", id)
	}
	now := time.Now()
	st.feed.publishError(eventMeta{Time: now, AttemptID: newAttemptID(), Status: status},
		errorBody{Message: message, Status: status, Code: "UPSTREAM_STATUS"}.json())
	st.usage.add(now, 0, 1)
	last, _ := st.feed.state()
	return strconv.FormatInt(last, 10), nil
}

// Subscribers returns the number of open connections to a stream or session.
func (e *Emulator) Subscribers(id string) int {
	st, err := e.lookup(id)
	if err != nil {
		return 0
	}
	return int(st.subs.Load())
}

// DeleteStream removes any stream (managed, firehose or session): its
// poller stops and its connections end.
func (e *Emulator) DeleteStream(id string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	st := e.streams[id]
	if st != nil {
		delete(e.streams, id)
	} else if st = e.sessions[id]; st != nil {
		delete(e.sessions, id)
		if e.dedupe[st.dedupeKey] == id {
			delete(e.dedupe, st.dedupeKey)
		}
	} else {
		return fmt.Errorf("%w %q", ErrUnknownStream, id)
	}
	e.dropLocked(st).stop()
	e.saveLocked()
	return nil
}

// adminRoutes registers the /_emulator endpoints (see the package doc).
func (e *Emulator) adminRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET "+DemoPath, e.handleDemo)
	mux.HandleFunc("GET /_emulator/health", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"ok": true, "connections": e.Connections()})
	})
	mux.HandleFunc("POST /_emulator/streams", e.admin(func(w http.ResponseWriter, r *http.Request) {
		var spec StreamSpec
		if !readJSON(w, r, &spec) {
			return
		}
		info, err := e.CreateStream(spec)
		e.answerInfo(w, r, info, err)
	}))
	mux.HandleFunc("POST /_emulator/firehose", e.admin(func(w http.ResponseWriter, r *http.Request) {
		var cfg FirehoseConfig
		if !readJSON(w, r, &cfg) {
			return
		}
		info, err := e.CreateFirehose(cfg)
		e.answerInfo(w, r, info, err)
	}))
	mux.HandleFunc("GET /_emulator/streams/{id}", e.admin(func(w http.ResponseWriter, r *http.Request) {
		st, err := e.lookup(r.PathValue("id"))
		if err != nil {
			notFound(w, r.PathValue("id"))
			return
		}
		out := map[string]any{"id": st.id, "kind": kindNames[st.kind], "hmacSecret": st.secret,
			"subscribers": st.subs.Load(), "faults": st.faults.get()}
		if st.feed != nil {
			last, _ := st.feed.state()
			out["lastEventId"] = strconv.FormatInt(last, 10)
		}
		if st.fire != nil {
			out["firehose"] = st.fire.cfg
		}
		writeJSON(w, http.StatusOK, out)
	}))
	mux.HandleFunc("DELETE /_emulator/streams/{id}", e.admin(func(w http.ResponseWriter, r *http.Request) {
		if err := e.DeleteStream(r.PathValue("id")); err != nil {
			notFound(w, r.PathValue("id"))
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"id": r.PathValue("id"), "affected": true})
	}))
	mux.HandleFunc("GET /_emulator/streams/{id}/faults", e.admin(func(w http.ResponseWriter, r *http.Request) {
		st, err := e.lookup(r.PathValue("id"))
		if err != nil {
			notFound(w, r.PathValue("id"))
			return
		}
		f := st.faults.get()
		if f == nil {
			f = &Faults{}
		}
		writeJSON(w, http.StatusOK, f)
	}))
	setFaults := e.admin(func(w http.ResponseWriter, r *http.Request) {
		var f Faults
		if r.Method != http.MethodDelete && !readJSON(w, r, &f) {
			return
		}
		if err := e.SetFaults(r.PathValue("id"), f); err != nil {
			if errors.Is(err, ErrUnknownStream) {
				notFound(w, r.PathValue("id"))
			} else {
				writeError(w, http.StatusBadRequest, err.Error())
			}
			return
		}
		writeJSON(w, http.StatusOK, f)
	})
	mux.HandleFunc("POST /_emulator/streams/{id}/faults", setFaults)
	mux.HandleFunc("PUT /_emulator/streams/{id}/faults", setFaults)
	mux.HandleFunc("DELETE /_emulator/streams/{id}/faults", setFaults)
	mux.HandleFunc("POST /_emulator/streams/{id}/events", e.admin(func(w http.ResponseWriter, r *http.Request) {
		var in struct {
			Data   json.RawMessage `json:"data"`
			Error  string          `json:"error"`
			Status int             `json:"status"`
		}
		if !readJSON(w, r, &in) {
			return
		}
		id := r.PathValue("id")
		var evID string
		var err error
		switch {
		case in.Error != "":
			evID, err = e.PublishError(id, in.Status, in.Error)
		case len(in.Data) > 0:
			evID, err = e.Publish(id, in.Data)
		default:
			writeError(w, http.StatusBadRequest, "data or error is required")
			return
		}
		switch {
		case errors.Is(err, ErrUnknownStream):
			notFound(w, id)
		case err != nil:
			writeError(w, http.StatusBadRequest, err.Error())
		default:
			writeJSON(w, http.StatusOK, map[string]string{"eventId": evID})
		}
	}))
}

var kindNames = map[kind]string{kindManaged: "managed", kindDemo: "demo", kindFirehose: "firehose", kindSession: "session", kindDirect: "direct"}

// admin authenticates an admin endpoint: x-api-key or Bearer.
func (e *Emulator) admin(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		key := r.Header.Get(client.HeaderAPIKey)
		if h := r.Header.Get("Authorization"); key == "" && len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
			key = strings.TrimSpace(h[7:])
		}
		if !e.isKey(key) {
			writeError(w, http.StatusUnauthorized, "Invalid or missing API key (x-api-key or Authorization: Bearer)")
			return
		}
		h(w, r)
	}
}

// readJSON decodes a request body strictly into v; on failure it answers 400.
func readJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(io.LimitReader(r.Body, maxRequestBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil && err != io.EOF {
		writeError(w, http.StatusBadRequest, "request body: "+err.Error())
		return false
	}
	return true
}

func (e *Emulator) answerInfo(w http.ResponseWriter, r *http.Request, info StreamInfo, err error) {
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if !strings.HasPrefix(info.SSEURL, "http") {
		info.SSEURL, info.WebSocketURL = runtimeURLs(e.base(r), client.RuntimeTarget{StreamID: info.ID})
	}
	writeJSON(w, http.StatusCreated, info)
}
