package emulator

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strconv"
	"time"
)

// directParams are the query parameters of a direct URL (PROTOCOL.md §2);
// the JSON ones hold compact JSON.
var directParams = []struct {
	name string
	json bool
}{
	{"url", false}, {"method", false}, {"headers", true}, {"body", true}, {"jqFilter", false},
	{"payloadMode", false}, {"pollingInterval", true}, {"pollingStrategies", true},
}

// parseDirectQuery validates the direct inputs of a runtime URL; the messages
// name the offending parameter.
func (e *Emulator) parseDirectQuery(r *http.Request) (streamConfig, []string) {
	q := r.URL.Query()
	raw := map[string]json.RawMessage{}
	var c checker
	for _, p := range directParams {
		v, ok := q[p.name]
		if !ok {
			continue
		}
		switch {
		case p.name == "pollingInterval":
			if _, err := strconv.ParseFloat(v[0], 64); err != nil {
				c.add("pollingInterval must be a number")
				continue
			}
			raw[p.name] = json.RawMessage(v[0])
		case p.json:
			if !json.Valid([]byte(v[0])) {
				c.add("%s must be compact JSON", p.name)
				continue
			}
			raw[p.name] = json.RawMessage(v[0])
		default:
			raw[p.name], _ = json.Marshal(v[0])
		}
	}
	var cfg streamConfig
	c.applyFields(raw, &cfg, e.opts.MinPollingInterval)
	if cfg.URL == "" {
		c.add("url should not be empty")
	}
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
