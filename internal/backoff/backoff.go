// Package backoff computes jittered exponential reconnect delays.
package backoff

import (
	"math/rand/v2"
	"time"
)

// Policy describes how long to wait between reconnect attempts.
type Policy struct {
	// Initial is the base delay of the first attempt. Default 1s.
	Initial time.Duration
	// Max caps every delay. Default 30s.
	Max time.Duration
	// MaxAttempts stops reconnecting after this many consecutive failed
	// attempts. 0 means forever.
	MaxAttempts int
}

// Defaults of Policy, as documented on its fields.
const (
	DefaultInitial = time.Second
	DefaultMax     = 30 * time.Second
)

func (p Policy) withDefaults() Policy {
	if p.Initial <= 0 {
		p.Initial = DefaultInitial
	}
	if p.Max <= 0 {
		p.Max = DefaultMax
	}
	if p.Max < p.Initial {
		p.Max = p.Initial
	}
	return p
}

// Exhausted reports whether attempt (1-based) is beyond MaxAttempts.
func (p Policy) Exhausted(attempt int) bool {
	return p.MaxAttempts > 0 && attempt > p.MaxAttempts
}

// Delay returns the wait before attempt (1-based): Initial·2^(attempt-1),
// capped at Max, with "equal jitter": a uniformly random value in [d/2, d].
// Jitter spreads reconnects of many clients after a shared outage.
func (p Policy) Delay(attempt int) time.Duration {
	p = p.withDefaults()
	if attempt < 1 {
		attempt = 1
	}
	d := p.Initial
	for i := 1; i < attempt && d < p.Max; i++ {
		d *= 2
	}
	if d > p.Max {
		d = p.Max
	}
	half := d / 2
	return half + rand.N(d-half+1)
}

// Hint combines a computed delay with one the server asked for (SSE retry:
// or Retry-After). The server's wish is honoured but never beyond Max, so a
// hostile or mistaken server cannot park the client for hours.
func (p Policy) Hint(computed, server time.Duration) time.Duration {
	p = p.withDefaults()
	if server <= 0 {
		return computed
	}
	if server > p.Max {
		server = p.Max
	}
	if server > computed {
		return server
	}
	return computed
}
