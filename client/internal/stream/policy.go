package stream

import (
	"math/rand/v2"
	"time"
)

// Policy says whether and how a Runner reconnects.
type Policy struct {
	// Initial is the delay before the first reconnect attempt. Default 1s.
	Initial time.Duration
	// Max caps every delay, also the ones a server asks for. Default 30s.
	Max time.Duration
	// Fixed waits exactly Initial before every attempt: no growth, no jitter.
	Fixed bool
	// MaxAttempts stops reconnecting after this many consecutive failed
	// attempts (the count restarts once a connection delivers an event).
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

func (p Policy) withDefaults() Policy {
	if p.Initial <= 0 {
		p.Initial = DefaultInitial
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
