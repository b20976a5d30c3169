package nats

import (
	"errors"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// unansweredAfter is how long records may wait for an acknowledgement with
// none arriving before Connected reports false.
const unansweredAfter = 5 * time.Second

// health says whether JetStream stores what the sink publishes. A client
// connected to a server of a cluster that lost its quorum (or a stream
// without a leader) stays connected while nothing is stored: the
// acknowledgements do not come, or the publishes time out.
type health struct {
	inflight atomic.Int64 // records published and not yet answered
	since    atomic.Int64 // unix nanoseconds: the last answer, or when waiting began
	failing  atomic.Bool  // the last record that ended failed for want of an answer
}

// publishing notes a record handed to the client.
func (h *health) publishing(now time.Time) {
	if h.inflight.Add(1) == 1 {
		h.since.Store(now.UnixNano())
	}
}

// done notes the end of a record's wait: acknowledged (err nil), failed, or
// abandoned (answered false: the caller gave up, which says nothing of the
// server).
func (h *health) done(now time.Time, err error, answered bool) {
	h.inflight.Add(-1)
	switch {
	case !answered:
	case err == nil:
		h.failing.Store(false)
		h.since.Store(now.UnixNano())
	case unanswered(err):
		h.failing.Store(true)
	default: // the server answered with a refusal: it is there
		h.since.Store(now.UnixNano())
	}
}

// ok reports whether records are being stored, or none waits.
func (h *health) ok(now time.Time) bool {
	if h.failing.Load() {
		return false
	}
	return h.inflight.Load() == 0 || now.Sub(time.Unix(0, h.since.Load())) < unansweredAfter
}

// unanswered reports whether err says no stream answered: a timeout, no
// responders, or JetStream answering that it is not available (503).
func unanswered(err error) bool {
	if errors.Is(err, jetstream.ErrAsyncPublishTimeout) || errors.Is(err, jetstream.ErrNoStreamResponse) ||
		errors.Is(err, nats.ErrNoResponders) || errors.Is(err, nats.ErrTimeout) {
		return true
	}
	var jerr jetstream.JetStreamError
	return errors.As(err, &jerr) && jerr.APIError() != nil && jerr.APIError().Code == 503
}
