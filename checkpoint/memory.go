package checkpoint

import (
	"context"
	"fmt"
	"maps"
	"sync"
)

// Memory is a Store that keeps cursors in memory only. It is meant for tests
// and for runs where replaying from `since` after a restart is acceptable.
type Memory struct {
	mu      sync.Mutex
	cursors map[string]string
	docs    map[string][]byte
	epochs  map[string]uint64
	closed  bool
}

var _ Claimer = (*Memory)(nil)

// NewMemory returns an empty in-memory store.
func NewMemory() *Memory {
	return &Memory{cursors: make(map[string]string), docs: make(map[string][]byte), epochs: make(map[string]uint64)}
}

// Claim raises stream's epoch and returns a claim whose saves succeed until
// the next claim. Save (without a claim) is not fenced.
func (m *Memory) Claim(ctx context.Context, stream, holder string) (*Claim, error) {
	if err := ValidateStream(stream); err != nil {
		return nil, err
	}
	if err := validateHolder(holder); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, ErrClosed
	}
	m.epochs[stream]++
	epoch := m.epochs[stream]
	cursor, found := m.cursors[stream]
	return &Claim{stream: stream, holder: holder, epoch: epoch, cursor: cursor, doc: m.docs[stream], found: found,
		save: func(_ context.Context, cursor string, doc []byte) error {
			m.mu.Lock()
			defer m.mu.Unlock()
			switch {
			case m.closed:
				return ErrClosed
			case m.epochs[stream] != epoch:
				return fmt.Errorf("checkpoint: stream %q epoch %d: %w", stream, epoch, ErrFenced)
			}
			m.cursors[stream] = cursor
			m.setDoc(stream, doc)
			return nil
		}}, nil
}

// Load returns the cursor last saved for stream.
func (m *Memory) Load(ctx context.Context, stream string) (string, bool, error) {
	if err := ValidateStream(stream); err != nil {
		return "", false, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return "", false, ErrClosed
	}
	c, ok := m.cursors[stream]
	return c, ok, nil
}

// Save records cursor for stream.
func (m *Memory) Save(ctx context.Context, stream, cursor string) error {
	if err := ValidateStream(stream); err != nil {
		return err
	}
	if err := validateCursor(stream, cursor); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	m.cursors[stream] = cursor
	delete(m.docs, stream)
	return nil
}

// LoadDocument returns the cursor and document last saved for stream.
func (m *Memory) LoadDocument(ctx context.Context, stream string) (string, []byte, bool, error) {
	if err := ValidateStream(stream); err != nil {
		return "", nil, false, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return "", nil, false, ErrClosed
	}
	c, ok := m.cursors[stream]
	return c, m.docs[stream], ok, nil
}

// SaveDocument records cursor and doc for stream.
func (m *Memory) SaveDocument(ctx context.Context, stream, cursor string, doc []byte) error {
	if err := ValidateStream(stream); err != nil {
		return err
	}
	if err := validateCursor(stream, cursor); err != nil {
		return err
	}
	if err := validateDocument(stream, doc); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	m.cursors[stream] = cursor
	m.setDoc(stream, doc)
	return nil
}

func (m *Memory) setDoc(stream string, doc []byte) {
	if doc == nil {
		delete(m.docs, stream)
		return
	}
	m.docs[stream] = append([]byte(nil), doc...)
}

// Snapshot returns a copy of every saved cursor, keyed by stream.
func (m *Memory) Snapshot() map[string]string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return maps.Clone(m.cursors)
}

// Close marks the store closed.
func (m *Memory) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = true
	return nil
}
