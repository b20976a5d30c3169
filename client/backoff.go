package client

import (
	"time"

	"github.com/restless-stream/ingest/client/internal/stream"
)

// Defaults of Backoff, as documented on its fields.
const (
	DefaultBackoffInitial = time.Second
	DefaultBackoffMax     = 30 * time.Second
)

// Backoff is a jittered exponential delay: attempt n waits a random time in
// [d/2, d] with d = Initial·2^(n-1) capped at Max ("equal jitter", which
// spreads the reconnects of many clients after a shared outage). Its zero
// value is the default pacing of a subscription: 1s, 2s, 4s, … up to 30s,
// for ever.
type Backoff struct {
	// Initial is the delay before the first attempt. Default 1s
	// (DefaultBackoffInitial); at least MinReconnectDelay (10ms).
	Initial time.Duration
	// Max caps every computed delay. Default 30s (DefaultBackoffMax), and
	// never below Initial. A longer wait the server asks for with
	// Retry-After or the SSE retry: field is honoured up to MaxRetryAfter
	// (10 min), also above Max.
	Max time.Duration
	// MaxAttempts ends a subscription after this many consecutive failed
	// reconnect attempts; the count restarts on progress: an event the
	// consumer accepted (see WithExplicitProgress), else any event a
	// connection delivered. 0, the default, means no limit.
	// (WithMaxReconnects counts every reconnect instead, as the Python
	// SDK's max_reconnects does.)
	MaxAttempts int
}

// Delay returns the wait before attempt (1-based; below 1 counts as 1).
func (b Backoff) Delay(attempt int) time.Duration {
	return b.policy().Delay(attempt)
}

func (b Backoff) policy() stream.Policy {
	return stream.Policy{Initial: b.Initial, Max: b.Max, MaxAttempts: b.MaxAttempts}
}
