package stream

import (
	"fmt"
	"time"

	"github.com/restless-stream/ingest/client"
)

// Defaults shared by the sources (INGEST.md: idle_timeout, max_event_bytes).
const (
	DefaultIdleTimeout   = 60 * time.Second
	DefaultMaxEventBytes = client.DefaultMaxEventBytes
)

// Limits checks a source's idle timeout and event size limit and fills in
// the defaults for zero values. pkg prefixes the errors ("sse", "ws").
func Limits(pkg string, idle time.Duration, maxEvent int) (time.Duration, int, error) {
	if idle < 0 {
		return 0, 0, fmt.Errorf("%s: IdleTimeout %v is negative", pkg, idle)
	}
	if maxEvent < 0 {
		return 0, 0, fmt.Errorf("%s: MaxEventBytes %d is negative", pkg, maxEvent)
	}
	if idle == 0 {
		idle = DefaultIdleTimeout
	}
	if maxEvent == 0 {
		maxEvent = DefaultMaxEventBytes
	}
	return idle, maxEvent, nil
}
