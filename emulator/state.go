package emulator

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// stateVersion is the version of the state file format.
const stateVersion = 1

type stateFile struct {
	Version  int           `json:"version"`
	Streams  []streamState `json:"streams"`
	Sessions []streamState `json:"sessions"`
	// APIKey is the generated API key (none when Options.APIKeys chose the
	// keys), DemoSecret the demo stream's secret and DirectSecret the direct
	// streams': kept so that clients configured with them work after a
	// restart.
	APIKey       string `json:"apiKey,omitempty"`
	DemoSecret   string `json:"demoSecret,omitempty"`
	DirectSecret string `json:"directSecret,omitempty"`
}

type streamState struct {
	ID          string          `json:"id"`
	Config      streamConfig    `json:"config"`
	Secret      string          `json:"hmacSecret"`
	CreatedAt   time.Time       `json:"createdAt"`
	UpdatedAt   time.Time       `json:"updatedAt"`
	LastEventID int64           `json:"lastEventId,omitempty"`
	Document    json.RawMessage `json:"document,omitempty"`
	ExpiresAt   time.Time       `json:"expiresAt,omitzero"`
	DedupeKey   string          `json:"dedupeKey,omitempty"`
}

// load reads the state file; a missing file is an empty state.
func (e *Emulator) load(path string) error {
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("emulator: state file: %w", err)
	}
	var s stateFile
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("emulator: state file %s is not valid: %w", path, err)
	}
	if s.Version != stateVersion {
		return fmt.Errorf("emulator: state file %s has version %d, want %d", path, s.Version, stateVersion)
	}
	e.restoreIdentity(s)
	now := time.Now()
	restore := func(ss streamState, k kind) (*stream, error) {
		if ss.ID == "" || ss.Secret == "" {
			return nil, fmt.Errorf("emulator: state file %s: a stream without id or secret", path)
		}
		doc := []byte(ss.Document)
		if len(doc) == 0 {
			doc = nil
		}
		return &stream{id: ss.ID, kind: k, cfg: ss.Config, secret: ss.Secret, created: ss.CreatedAt,
			updated: ss.UpdatedAt, expires: ss.ExpiresAt, dedupeKey: ss.DedupeKey,
			feed: newFeed(e.opts.ReplayBuffer, e.opts.MaxReplayBytes, ss.LastEventID, doc)}, nil
	}
	for _, ss := range s.Streams {
		st, err := restore(ss, kindManaged)
		if err != nil {
			return err
		}
		st.cfg.withDefaults(&e.opts)
		e.streams[st.id] = st
	}
	for _, ss := range s.Sessions {
		if !now.Before(ss.ExpiresAt) {
			continue
		}
		st, err := restore(ss, kindSession)
		if err != nil {
			return err
		}
		st.cfg.withDefaults(&e.opts)
		e.sessions[st.id] = st
		if st.dedupeKey != "" {
			e.dedupe[st.dedupeKey] = st.id
		}
	}
	return nil
}

// saveLocked writes the state file atomically (temporary file, fsync,
// rename). The first error is kept for Close to return.
func (e *Emulator) saveLocked() {
	if e.opts.StateFile == "" {
		return
	}
	s := stateFile{Version: stateVersion, Streams: []streamState{}, Sessions: []streamState{}}
	snap := func(st *stream) streamState {
		last, doc := st.feed.state()
		return streamState{ID: st.id, Config: st.cfg, Secret: st.secret, CreatedAt: st.created, UpdatedAt: st.updated,
			LastEventID: last, Document: doc, ExpiresAt: st.expires, DedupeKey: st.dedupeKey}
	}
	for _, st := range e.streams {
		if st.kind == kindManaged {
			s.Streams = append(s.Streams, snap(st))
		}
	}
	for _, st := range e.sessions {
		s.Sessions = append(s.Sessions, snap(st))
	}
	if len(e.opts.APIKeys) == 0 {
		s.APIKey = e.firstKey
	}
	if st, ok := e.streams[DemoStreamID]; ok && st.kind == kindDemo {
		s.DemoSecret = st.secret
	}
	s.DirectSecret = e.direct
	b, err := json.MarshalIndent(s, "", "  ")
	if err == nil {
		err = writeAtomic(e.opts.StateFile, b)
	}
	if err != nil && e.saveErr == nil {
		e.saveErr = fmt.Errorf("emulator: state file: %w", err)
	}
}

func writeAtomic(path string, b []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// restoreIdentity takes the generated API key and the demo and direct secrets
// from the state file, where the options leave them to be generated: a
// restarted emulator accepts the same key and signs with the same secrets.
func (e *Emulator) restoreIdentity(s stateFile) {
	if len(e.opts.APIKeys) == 0 && s.APIKey != "" {
		delete(e.keys, e.firstKey)
		e.firstKey = s.APIKey
		e.keys[s.APIKey] = true
	}
	if e.opts.DemoSecret == "" && s.DemoSecret != "" {
		e.opts.DemoSecret = s.DemoSecret
	}
	if e.opts.DirectSecret == "" && s.DirectSecret != "" {
		e.direct = s.DirectSecret
	}
}

// persistIdentity writes the state file once at start, so that a generated
// key and secrets are kept even when nothing else changes before a restart.
func (e *Emulator) persistIdentity() error {
	if e.opts.StateFile == "" {
		return nil
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.saveLocked()
	err := e.saveErr
	e.saveErr = nil
	return err
}
