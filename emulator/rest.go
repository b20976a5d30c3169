package emulator

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/restless-stream/ingest/client"
)

// maxRequestBody limits REST request bodies.
const maxRequestBody = 1 << 20

// maxListLimit is the largest page List may ask for.
const maxListLimit = 100

func (e *Emulator) routes() *http.ServeMux {
	mux := http.NewServeMux()
	// REST management API (PROTOCOL.md §1).
	mux.HandleFunc(client.RouteListStreams, e.rest(e.listStreams))
	mux.HandleFunc(client.RouteCreateStream, e.rest(e.createStream))
	mux.HandleFunc(client.RouteGetStream, e.rest(e.getStream))
	mux.HandleFunc(client.RouteUpdateStream, e.rest(e.updateStream))
	mux.HandleFunc(client.RouteDeleteStream, e.rest(e.deleteStream))
	mux.HandleFunc(client.RouteStartStream, e.rest(e.startStream))
	mux.HandleFunc(client.RouteStopStream, e.rest(e.stopStream))
	mux.HandleFunc(client.RouteCreditUsageStats, e.rest(e.creditUsage))
	mux.HandleFunc(client.RouteValidateAPIKey, e.rest(e.validateKey))
	mux.HandleFunc(client.RouteConnectionSnippets, e.rest(e.connectionSnippets))
	mux.HandleFunc(client.RouteDirectSetup, e.rest(e.directSetup))
	mux.HandleFunc(client.RouteDirectSession, e.rest(e.directSession))
	// Runtime (PROTOCOL.md §2).
	mux.HandleFunc(client.RouteSSE, e.handleSSE)
	mux.HandleFunc(client.RouteWebSocket, e.handleWS)
	mux.HandleFunc(client.RouteDirectSSE, e.handleDirectSSE)
	mux.HandleFunc(client.RouteDirectWebSocket, e.handleDirectWS)
	// Emulator extras.
	e.adminRoutes(mux)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("Cannot %s %s", r.Method, r.URL.Path))
	})
	return mux
}

// rest wraps a REST handler with x-api-key authentication.
func (e *Emulator) rest(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !e.isKey(r.Header.Get(client.HeaderAPIKey)) {
			writeError(w, http.StatusUnauthorized, "Invalid or missing API key (x-api-key)")
			return
		}
		h(w, r)
	}
}

// writeError writes the PROTOCOL.md §1 error shape. One message is written as
// a string, several (validation) as an array.
func writeError(w http.ResponseWriter, status int, msgs ...string) {
	var msg any = strings.Join(msgs, "; ")
	if len(msgs) > 1 || status == http.StatusBadRequest {
		msg = msgs
	}
	writeJSON(w, status, map[string]any{"statusCode": status, "message": msg, "error": http.StatusText(status)})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"statusCode":500,"message":"encoding failed","error":"Internal Server Error"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

// readObject reads a JSON object request body; on failure it answers 400 and returns nil.
func readObject(w http.ResponseWriter, r *http.Request) map[string]json.RawMessage {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxRequestBody))
	if err != nil {
		writeError(w, http.StatusBadRequest, "request body could not be read or is larger than 1 MiB")
		return nil
	}
	m, err := decodeObject(b)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return nil
	}
	return m
}

// base returns the URL runtime URLs are built on.
func (e *Emulator) base(r *http.Request) string {
	if e.opts.PublicURL != "" {
		return strings.TrimRight(e.opts.PublicURL, "/")
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

func (e *Emulator) streamJSON(r *http.Request, st *stream, withSecret bool) streamJSON {
	base := e.base(r)
	out := streamJSON{ID: st.id, streamConfig: st.cfg.clone(), CreatedAt: st.created, UpdatedAt: st.updated}
	if st.kind == kindDemo {
		out.URL = base + st.cfg.URL
	}
	out.SSEURL, out.WebSocketURL = runtimeURLs(base, client.RuntimeTarget{StreamID: st.id})
	if withSecret {
		out.HMACSecret = st.secret
	}
	return out
}

func runtimeURLs(base string, t client.RuntimeTarget) (sse, ws string) {
	sse, _ = client.BuildSSEURL(base, t)
	ws, _ = client.BuildWebSocketURL(base, t)
	return sse, ws
}

// managed returns the REST-visible stream id, or nil.
func (e *Emulator) managedLocked(id string) *stream {
	st := e.streams[id]
	if st == nil || st.kind == kindFirehose {
		return nil
	}
	return st
}

// lockManaged locks e.mu and returns the REST-visible stream id, which the
// caller then uses and unlocks e.mu. When there is none it unlocks e.mu,
// answers 404 and returns nil.
func (e *Emulator) lockManaged(w http.ResponseWriter, id string) *stream {
	e.mu.Lock()
	st := e.managedLocked(id)
	if st == nil {
		e.mu.Unlock()
		notFound(w, id)
	}
	return st
}

// managedOr404 returns the REST-visible stream id, or answers 404 and
// returns nil.
func (e *Emulator) managedOr404(w http.ResponseWriter, id string) *stream {
	st := e.lockManaged(w, id)
	if st != nil {
		e.mu.Unlock()
	}
	return st
}

func notFound(w http.ResponseWriter, id string) {
	writeError(w, http.StatusNotFound, fmt.Sprintf("Stream %s not found", id))
}

func (e *Emulator) listStreams(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var c checker
	limit, offset := client.DefaultListLimit, 0
	if s := q.Get(client.ParamLimit); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > maxListLimit {
			c.add("%s must be an integer from 1 to %d", client.ParamLimit, maxListLimit)
		}
		limit = n
	}
	if s := q.Get(client.ParamOffset); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			c.add("%s must be an integer not less than 0", client.ParamOffset)
		}
		offset = n
	}
	if c.msgs != nil {
		writeError(w, http.StatusBadRequest, c.msgs...)
		return
	}
	e.mu.Lock()
	var all []*stream
	for _, st := range e.streams {
		if st.kind != kindFirehose {
			all = append(all, st)
		}
	}
	slices.SortFunc(all, func(a, b *stream) int {
		if c := a.created.Compare(b.created); c != 0 {
			return c
		}
		return strings.Compare(a.id, b.id)
	})
	page := []streamJSON{}
	for i := offset; i < len(all) && i < offset+limit; i++ {
		page = append(page, e.streamJSON(r, all[i], false))
	}
	hasNext := offset+limit < len(all)
	e.mu.Unlock()
	writeJSON(w, http.StatusOK, struct {
		Streams        []streamJSON          `json:"streams"`
		PaginationInfo client.PaginationInfo `json:"paginationInfo"`
	}{page, client.PaginationInfo{HasNextPage: hasNext}})
}

func (e *Emulator) getStream(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	st := e.lockManaged(w, id)
	if st == nil {
		return
	}
	defer e.mu.Unlock()
	writeJSON(w, http.StatusOK, e.streamJSON(r, st, false))
}

func (e *Emulator) createStream(w http.ResponseWriter, r *http.Request) {
	raw := readObject(w, r)
	if raw == nil {
		return
	}
	var c checker
	c.unknown(raw, streamFields)
	var cfg streamConfig
	c.applyFields(raw, &cfg, e.opts.MinPollingInterval)
	c.required(&cfg, true)
	if c.msgs != nil {
		writeError(w, http.StatusBadRequest, c.msgs...)
		return
	}
	cfg.withDefaults(&e.opts)
	now := time.Now().UTC()
	e.mu.Lock()
	defer e.mu.Unlock()
	st := e.newStreamLocked("st_"+randomHex(10), kindManaged, cfg, randomHex(32), now)
	e.streams[st.id] = st
	if cfg.Status == client.StatusActive {
		e.startPollerLocked(st)
	}
	e.saveLocked()
	writeJSON(w, http.StatusCreated, e.streamJSON(r, st, true))
}

func (e *Emulator) newStreamLocked(id string, k kind, cfg streamConfig, secret string, now time.Time) *stream {
	return &stream{id: id, kind: k, cfg: cfg, secret: secret, created: now, updated: now,
		feed: newFeed(e.opts.ReplayBuffer, e.opts.MaxReplayBytes, 0, nil)}
}

func (e *Emulator) updateStream(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	raw := readObject(w, r)
	if raw == nil {
		return
	}
	st := e.lockManaged(w, id)
	if st == nil {
		return
	}
	defer e.mu.Unlock()
	var c checker
	c.unknown(raw, streamFields)
	cfg := st.cfg.clone()
	c.applyFields(raw, &cfg, e.opts.MinPollingInterval)
	if c.msgs != nil {
		writeError(w, http.StatusBadRequest, c.msgs...)
		return
	}
	if _, ok := raw["url"]; ok && st.kind == kindDemo {
		st.kind = kindManaged // it no longer polls the built-in demo API
	}
	st.cfg = cfg
	st.updated = time.Now().UTC()
	e.stopPollerLocked(st)
	if cfg.Status == client.StatusActive {
		e.startPollerLocked(st)
	}
	e.saveLocked()
	writeJSON(w, http.StatusOK, e.streamJSON(r, st, false))
}

func (e *Emulator) setStatus(w http.ResponseWriter, r *http.Request, status client.StreamStatus) {
	id := r.PathValue("id")
	st := e.lockManaged(w, id)
	if st == nil {
		return
	}
	defer e.mu.Unlock()
	affected := st.cfg.Status != status
	if affected {
		st.cfg.Status = status
		st.updated = time.Now().UTC()
		e.saveLocked()
	}
	if status == client.StatusActive {
		e.startPollerLocked(st)
	} else {
		e.stopPollerLocked(st)
	}
	writeJSON(w, http.StatusOK, client.BaseActionResponse{ID: id, Affected: affected})
}

func (e *Emulator) startStream(w http.ResponseWriter, r *http.Request) {
	e.setStatus(w, r, client.StatusActive)
}
func (e *Emulator) stopStream(w http.ResponseWriter, r *http.Request) {
	e.setStatus(w, r, client.StatusInactive)
}

func (e *Emulator) deleteStream(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	st := e.lockManaged(w, id)
	if st == nil {
		return
	}
	defer e.mu.Unlock()
	delete(e.streams, id)
	e.dropLocked(st).stop()
	e.saveLocked()
	writeJSON(w, http.StatusOK, client.BaseActionResponse{ID: id, Affected: true})
}

func (e *Emulator) creditUsage(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	st := e.managedOr404(w, id)
	if st == nil {
		return
	}
	writeJSON(w, http.StatusOK, st.usage.report(id))
}

func (e *Emulator) validateKey(w http.ResponseWriter, r *http.Request) {
	raw := readObject(w, r)
	if raw == nil {
		return
	}
	var c checker
	c.unknown(raw, fieldSet("apiKey", "api_key"))
	key := r.Header.Get(client.HeaderAPIKey)
	var s string
	if c.str(raw, "apiKey", &s) || c.str(raw, "api_key", &s) {
		key = s
	}
	if c.msgs != nil {
		writeError(w, http.StatusBadRequest, c.msgs...)
		return
	}
	writeJSON(w, http.StatusOK, client.BaseActionResponse{ID: key, Affected: e.isKey(key)})
}

func (e *Emulator) connectionSnippets(w http.ResponseWriter, r *http.Request) {
	raw := readObject(w, r)
	if raw == nil {
		return
	}
	var c checker
	c.unknown(raw, snippetFields)
	var id, lang string
	if !c.str(raw, "streamId", &id) || id == "" {
		c.add("streamId should not be empty")
	}
	c.str(raw, "language", &lang)
	if lang != "" && snippetLanguage(lang) == "" {
		c.add("language must be one of the following values: %s", strings.Join(snippetLanguages, ", "))
	}
	if c.msgs != nil {
		writeError(w, http.StatusBadRequest, c.msgs...)
		return
	}
	st := e.managedOr404(w, id)
	if st == nil {
		return
	}
	sse, ws := runtimeURLs(e.base(r), client.RuntimeTarget{StreamID: id})
	writeJSON(w, http.StatusOK, client.ConnectionSnippetsResponse{SSEURL: sse, WebSocketURL: ws, Snippets: snippets(lang, sse, ws)})
}

// directBody validates a direct-input request body with the members allowed;
// extra names the members besides the direct inputs, all strings.
func (e *Emulator) directBody(w http.ResponseWriter, r *http.Request, allowed map[string]bool, extra ...string) (streamConfig, map[string]json.RawMessage, bool) {
	raw := readObject(w, r)
	if raw == nil {
		return streamConfig{}, nil, false
	}
	var c checker
	c.unknown(raw, allowed)
	var cfg streamConfig
	c.applyFields(raw, &cfg, e.opts.MinPollingInterval)
	if cfg.URL == "" {
		c.add("url should not be empty")
	}
	var s string
	for _, k := range extra {
		c.str(raw, k, &s)
	}
	if c.msgs != nil {
		writeError(w, http.StatusBadRequest, c.msgs...)
		return streamConfig{}, nil, false
	}
	cfg.withDefaults(&e.opts)
	return cfg, raw, true
}

func (e *Emulator) directSetup(w http.ResponseWriter, r *http.Request) {
	cfg, raw, ok := e.directBody(w, r, setupFields, "language")
	if !ok {
		return
	}
	var lang string
	json.Unmarshal(raw["language"], &lang)
	if lang != "" && snippetLanguage(lang) == "" {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("language must be one of the following values: %s", strings.Join(snippetLanguages, ", ")))
		return
	}
	base := e.base(r)
	in := directInput(cfg)
	sse, err := client.BuildDirectSSEURL(base, in)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	ws, _ := client.BuildDirectWebSocketURL(base, in)
	config, err := json.Marshal(cfg)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "encoding the configuration failed")
		return
	}
	writeJSON(w, http.StatusOK, client.DirectSetupResponse{
		Commands: client.DirectSetupCommands{
			Header: client.Command{Curl: fmt.Sprintf("curl -N -H \"Authorization: Bearer $RESTLESS_API_KEY\" %s", shellQuote(sse))},
			Query:  client.Command{Curl: fmt.Sprintf("curl -N \"%s&%s=$RESTLESS_API_KEY\"", sse, client.ParamAPIKey)},
		},
		Runtime:  client.DirectSetupRuntime{DirectSSEURL: sse, DirectWebSocketURL: ws},
		Snippets: snippets(lang, sse, ws),
		Config:   config,
	})
}

// directInput converts a direct stream's configuration to the client's model.
func directInput(cfg streamConfig) client.DirectInput {
	in := client.DirectInput{
		URL:               cfg.URL,
		Method:            cfg.Method,
		Headers:           cfg.Headers,
		JQFilter:          cfg.JQFilter,
		PayloadMode:       cfg.PayloadMode,
		PollingInterval:   cfg.PollingInterval,
		PollingStrategies: cfg.PollingStrategies,
	}
	if len(cfg.Headers) == 0 {
		in.Headers = nil
	}
	if len(cfg.Body) > 0 {
		in.Body = cfg.Body
	}
	return in
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

func (e *Emulator) directSession(w http.ResponseWriter, r *http.Request) {
	cfg, raw, ok := e.directBody(w, r, sessionFields, "dedupeKey", "dedupe_key")
	if !ok {
		return
	}
	var key string
	if json.Unmarshal(raw["dedupeKey"], &key) != nil || key == "" {
		json.Unmarshal(raw["dedupe_key"], &key)
	}
	st := e.openSession(cfg, key)
	e.mu.Lock()
	expires := st.expires
	e.mu.Unlock()
	sse, ws := runtimeURLs(e.base(r), client.RuntimeTarget{SessionID: st.id})
	writeJSON(w, http.StatusOK, client.DirectSessionResponse{SessionID: st.id, SSEURL: sse, WebSocketURL: ws,
		ExpiresAt: expires.UTC().Truncate(time.Second)})
}

// openSession creates a direct session, or reuses the live one with the same
// dedupe key: it then takes the new inputs (restarting its poller when they
// changed) and its expiry is renewed.
func (e *Emulator) openSession(cfg streamConfig, dedupeKey string) *stream {
	now := time.Now().UTC()
	e.mu.Lock()
	defer e.mu.Unlock()
	if id, ok := e.dedupe[dedupeKey]; ok && dedupeKey != "" {
		if st := e.sessions[id]; st != nil && now.Before(st.expires) {
			st.expires = now.Add(e.opts.SessionTTL)
			old, _ := json.Marshal(st.cfg)
			nw, _ := json.Marshal(cfg)
			if string(old) != string(nw) {
				st.cfg = cfg
				st.updated = now
				e.stopPollerLocked(st)
				e.startPollerLocked(st)
			}
			e.saveLocked()
			return st
		}
	}
	st := e.newStreamLocked("ses_"+randomHex(10), kindSession, cfg, e.direct, now)
	st.expires = now.Add(e.opts.SessionTTL)
	st.dedupeKey = dedupeKey
	e.sessions[st.id] = st
	if dedupeKey != "" {
		e.dedupe[dedupeKey] = st.id
	}
	e.startPollerLocked(st)
	e.saveLocked()
	return st
}
