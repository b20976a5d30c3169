package ingest

import (
	"fmt"
	"time"
)

// State is where a connection to the outside stands. Two kinds of part
// report it, each through an OnState func(StateChange) in its Config:
//
//   - the sources (source/sse, source/ws, source/direct, through
//     internal/stream): their upstream stream, every state below;
//   - sink/nats: its broker connection, StateConnected, StateReconnecting
//     (Attempt and Delay are left zero: nats.go paces its own reconnects)
//     and StateFailed. sink/kafka and sink/file keep no connection to
//     report.
//
// The daemon turns them into /readyz and the connected gauges.
type State int

const (
	// StateConnecting: the first connection attempt is under way.
	StateConnecting State = iota
	// StateConnected: the upstream answered and events may flow.
	StateConnected
	// StateReconnecting: the connection was lost; the source waits Delay
	// before attempt Attempt.
	StateReconnecting
	// StateEnded: the server ended the stream for good (204); sources only.
	StateEnded
	// StateFailed: the source stopped for good on a permanent error or after
	// its reconnect budget ran out.
	StateFailed
)

func (s State) String() string {
	switch s {
	case StateConnecting:
		return "connecting"
	case StateConnected:
		return "connected"
	case StateReconnecting:
		return "reconnecting"
	case StateEnded:
		return "ended"
	case StateFailed:
		return "failed"
	}
	return fmt.Sprintf("State(%d)", int(s))
}

// StateChange is what a source or sink reports each time its state changes.
type StateChange struct {
	State State
	// Attempt counts reconnect attempts since the last connection that
	// delivered an event (StateReconnecting only).
	Attempt int
	// Delay is the wait before the next attempt (StateReconnecting only).
	Delay time.Duration
	// Err is why the connection was lost or the source failed.
	Err error
}
