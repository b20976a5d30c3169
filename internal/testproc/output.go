// Package testproc helps tests that run the ingest binary as a subprocess.
package testproc

import (
	"bytes"
	"sync"
)

// Output collects one stream of a process (stdout or stderr) and lets
// waiters block until it changes, without polling.
type Output struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	changed chan struct{}
}

// NewOutput returns an empty Output.
func NewOutput() *Output { return &Output{changed: make(chan struct{})} }

// Write appends p and wakes every waiter.
func (o *Output) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.buf.Write(p)
	close(o.changed)
	o.changed = make(chan struct{})
	return len(p), nil
}

// Snapshot returns what was written so far and a channel closed on the next
// write.
func (o *Output) Snapshot() (string, <-chan struct{}) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.String(), o.changed
}

// String returns what was written so far.
func (o *Output) String() string { s, _ := o.Snapshot(); return s }
