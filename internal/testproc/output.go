// Package testproc helps tests that run the ingest binary as a subprocess.
package testproc

import (
	"bytes"
	"errors"
	"reflect"
	"regexp"
	"sync"
	"time"
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

// ErrExited and ErrTimeout are what WaitMatch returns when the process ended,
// or the time ran out, before any output matched.
var (
	ErrExited  = errors.New("the process exited first")
	ErrTimeout = errors.New("timed out")
)

// WaitMatch waits until re matches one of outs and returns the submatches. It
// returns ErrExited once exited is closed without a match, and ErrTimeout
// after timeout.
func WaitMatch(re *regexp.Regexp, timeout time.Duration, exited <-chan struct{}, outs ...*Output) ([]string, error) {
	deadline := time.After(timeout)
	for {
		changed := make([]<-chan struct{}, len(outs))
		for i, o := range outs {
			var s string
			s, changed[i] = o.Snapshot()
			if m := re.FindStringSubmatch(s); m != nil {
				return m, nil
			}
		}
		cases := []reflect.SelectCase{
			{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(exited)},
			{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(deadline)},
		}
		for _, c := range changed {
			cases = append(cases, reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(c)})
		}
		switch i, _, _ := reflect.Select(cases); i {
		case 0:
			// A last look: the output may have arrived with the exit.
			for _, o := range outs {
				if m := re.FindStringSubmatch(o.String()); m != nil {
					return m, nil
				}
			}
			return nil, ErrExited
		case 1:
			return nil, ErrTimeout
		}
	}
}
