package pipeline

import "time"

// Observer receives the pipeline's counters and timings; the daemon turns
// them into Prometheus metrics. Stream is called once per lane when it is
// built (by New, or by Start for a lane added later), so the daemon can
// resolve its labelled metrics once instead of per event.
type Observer interface {
	Stream(name string) StreamObserver
}

// StreamObserver receives the events of one stream. Its methods are called
// from the stream's lane goroutines, on the hot path: they must be cheap and
// must not block. Each is called concurrently with the others.
type StreamObserver interface {
	// Received counts one frame read from the source.
	Received()
	// Published counts n records of the stream acknowledged by the sink
	// (dead-letter records are not counted here).
	Published(n int)
	// Duplicate counts one event dropped because its event_id was already
	// published or is being published.
	Duplicate()
	// NoEventID counts one event that had no event_id and so passed
	// through without deduplication.
	NoEventID()
	// Rejected reports one rejected event: why, and whether it goes to the
	// dead-letter destination.
	Rejected(r Rejection)
	// PublishLatency is the duration of one Write call that acknowledged
	// at least one record.
	PublishLatency(d time.Duration)
	// WriteFailed reports a Write that failed for n records; they are
	// retried.
	WriteFailed(n int, err error)
	// EventLag is now − meta.timestamp of an accepted event; not called
	// when the timestamp is absent or unparsable.
	EventLag(d time.Duration)
	// Checkpointed reports a saved checkpoint: the stream's new cursor and
	// the receive time of the event it stands for.
	Checkpointed(cursor string, eventReceived time.Time)
	// CheckpointFailed reports a failed save; it is retried.
	CheckpointFailed(err error)
}

// Rejection describes one rejected event.
type Rejection struct {
	// Reason is one of the Reason* constants (ReasonParseError and the rest).
	Reason string
	// Err says what was wrong, as in the restless-dlq-error header.
	Err string
	// EventID is the event's event_id when it could be read, else "".
	EventID string
	// DeadLettered reports whether the event goes to the dead-letter
	// destination; otherwise it is dropped.
	DeadLettered bool
}

// NopObserver ignores everything. It is the default Observer.
type NopObserver struct{}

// Stream returns NopObserver itself.
func (NopObserver) Stream(string) StreamObserver { return NopObserver{} }

// Received does nothing.
func (NopObserver) Received() {}

// Published does nothing.
func (NopObserver) Published(int) {}

// Duplicate does nothing.
func (NopObserver) Duplicate() {}

// NoEventID does nothing.
func (NopObserver) NoEventID() {}

// Rejected does nothing.
func (NopObserver) Rejected(Rejection) {}

// PublishLatency does nothing.
func (NopObserver) PublishLatency(time.Duration) {}

// WriteFailed does nothing.
func (NopObserver) WriteFailed(int, error) {}

// EventLag does nothing.
func (NopObserver) EventLag(time.Duration) {}

// Checkpointed does nothing.
func (NopObserver) Checkpointed(string, time.Time) {}

// CheckpointFailed does nothing.
func (NopObserver) CheckpointFailed(error) {}
