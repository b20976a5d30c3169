package stream

import (
	"math/rand/v2"
	"time"
)

// Policy says whether and how a Runner reconnects.
type Policy struct {
	// Initial is the delay before the first reconnect attempt. Default 1s.
	Initial time.Duration
	// Max caps every computed delay. Default 30s. A delay the server asks
	// for is honoured up to MaxHint, also above Max.
	Max time.Duration
	// Fixed waits exactly Initial before every attempt: no growth, no jitter.
	Fixed bool
	// MaxAttempts stops reconnecting after this many consecutive failed
	// attempts (the count restarts on progress: see Config.ExplicitProgress).
	// 0 means no limit.
	MaxAttempts int
	// LimitReconnects stops after MaxReconnects reconnects in all, whatever
	// the connections before them delivered.
	LimitReconnects bool
	MaxReconnects   int
	// Once never reconnects: the end of the first connection ends the
	// Runner, cleanly (ErrStreamEnded) when the server ended it in order.
	Once bool
}

// Defaults of Policy, as documented on its fields.
const (
	DefaultInitial = time.Second
	DefaultMax     = 30 * time.Second
)

// MinDelay is the floor of every delay: a shorter Initial is raised to it,
// so that no configuration can turn reconnecting into a request storm.
const MinDelay = 10 * time.Millisecond

// MaxHint is the ceiling of a delay the server asks for (Retry-After, SSE
// retry:): honoured up to this even above Max, never beyond, so that a
// hostile or mistaken server cannot park the client for hours.
const MaxHint = 10 * time.Minute

func (p Policy) withDefaults() Policy {
	if p.Initial <= 0 {
		p.Initial = DefaultInitial
	}
	if p.Initial < MinDelay {
		p.Initial = MinDelay
	}
	if p.Max <= 0 {
		p.Max = DefaultMax
		if p.Fixed {
			p.Max = p.Initial
		}
	}
	if p.Max < p.Initial {
		p.Max = p.Initial
	}
	return p
}

// Exhausted reports whether attempt (1-based, consecutive) is beyond MaxAttempts.
func (p Policy) Exhausted(attempt int) bool {
	return p.MaxAttempts > 0 && attempt > p.MaxAttempts
}

// Delay returns the wait before attempt (1-based): Initial·2^(attempt-1),
// capped at Max, with "equal jitter": a uniformly random value in [d/2, d].
// Jitter spreads reconnects of many clients after a shared outage. A Fixed
// policy returns Initial.
func (p Policy) Delay(attempt int) time.Duration {
	p = p.withDefaults()
	if p.Fixed {
		return p.Initial
	}
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
	return max(half+rand.N(d-half+1), MinDelay)
}

// Hint combines a computed delay with one the server asked for (SSE retry:
// or Retry-After). The server's wish is honoured up to MaxHint, also when
// it is above Max, but never beyond, so a hostile or mistaken server cannot
// park the client for hours.
func (p Policy) Hint(computed, server time.Duration) time.Duration {
	if server <= 0 {
		return computed
	}
	if server > MaxHint {
		server = MaxHint
	}
	if server > computed {
		return server
	}
	return computed
}
