package emulator

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"time"

	"github.com/restless-stream/ingest/client"
)

// parseDirectQuery reads the direct inputs of a runtime URL with the
// client's decoder, then checks them as the same inputs in a request body
// are checked; the messages name the offending parameter.
func (e *Emulator) parseDirectQuery(r *http.Request) (streamConfig, []string) {
	in, err := client.ParseDirectQuery(r.URL.Query())
	if err != nil {
		return streamConfig{}, []string{err.Error()}
	}
	b, err := json.Marshal(in)
	if err != nil {
		return streamConfig{}, []string{"direct inputs could not be encoded: " + err.Error()}
	}
	raw, err := decodeObject(b)
	if err != nil {
		return streamConfig{}, []string{err.Error()}
	}
	var c checker
	var cfg streamConfig
	c.applyFields(raw, &cfg, e.opts.MinPollingInterval)
	cfg.withDefaults(&e.opts)
	return cfg, c.msgs
}

func (e *Emulator) handleDirectSSE(w http.ResponseWriter, r *http.Request) {
	e.handleDirect(w, r, false)
}
func (e *Emulator) handleDirectWS(w http.ResponseWriter, r *http.Request) { e.handleDirect(w, r, true) }

// handleDirect serves a direct stream. Connections with the same inputs share
// one poller and replay buffer, kept for Options.DirectIdle after the last
// connection leaves so that reconnecting clients resume.
func (e *Emulator) handleDirect(w http.ResponseWriter, r *http.Request, ws bool) {
	if !e.runtimeAuth(w, r) {
		return
	}
	cfg, msgs := e.parseDirectQuery(r)
	if msgs != nil {
		writeError(w, http.StatusBadRequest, msgs...)
		return
	}
	key, _ := json.Marshal(cfg)
	sum := sha256.Sum256(key)
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		writeError(w, http.StatusServiceUnavailable, "emulator shutting down")
		return
	}
	st := e.directs[string(key)]
	if st == nil {
		now := time.Now()
		st = e.newStreamLocked("dir_"+hex.EncodeToString(sum[:10]), kindDirect, cfg, e.direct, now.UTC())
		st.idleSince = now
		e.directs[string(key)] = st
		e.startPollerLocked(st)
	}
	e.mu.Unlock()
	e.serve(w, r, st, ws)
}
