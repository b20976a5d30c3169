// Package ingest holds the vocabulary shared by every part of restless-ingest:
// the frames a source reads, the records a sink writes, the header names that
// travel with each record, and the states a source reports.
//
// It imports only the standard library so that sources, sinks and the pipeline
// can all depend on it without depending on each other.
package ingest

import "time"

// Frame is one event as a source read it off the wire, before any parsing.
type Frame struct {
	// Data is the event exactly as received: the SSE data field or the
	// WebSocket text message. When TooLarge is set it holds only the first
	// MaxEventBytes bytes. Data is read-only: a source may hand out memory it
	// shares with immutable strings, and the pipeline passes it on to the sink
	// as Record.Value without copying.
	Data []byte
	// Cursor is the resume position in effect after this event: the SSE id
	// field, or the event_id read from the message. "" when the stream gave none.
	Cursor string
	// TooLarge reports that the event exceeded the source's size limit and
	// Data was cut; the rest of the event was skipped, never held in memory.
	TooLarge bool
	// Err, when set, says why the source found the event unusable although
	// it read it whole (an SSE id that cannot be a cursor). The pipeline
	// rejects such a frame as a parse error; its Cursor is the previous one.
	Err error
	// Received is when the source finished reading the event.
	Received time.Time
}

// Record is one message for a broker. Sinks know records, not Restless.
type Record struct {
	// Dest is the Kafka topic or NATS subject.
	Dest string
	// Key is the Kafka message key; nil means no key.
	Key []byte
	// MsgID identifies the record for broker-side duplicate detection
	// (JetStream's Nats-Msg-Id). "" means none.
	MsgID string
	// Headers travel with the record, in order.
	Headers []Header
	// Value is the payload, byte for byte. Sinks must not modify it.
	Value []byte
	// JSONValue promises that Value is valid JSON in valid UTF-8 (the
	// pipeline sets it for events its decoder validated), so a sink that
	// embeds it in JSON need not validate it again. False promises nothing.
	JSONValue bool
}

// Header is one record header.
type Header struct {
	Key   string
	Value string
}

// Header returns the value of the first header named key, and whether it exists.
func (r *Record) Header(key string) (string, bool) {
	for _, h := range r.Headers {
		if h.Key == key {
			return h.Value, true
		}
	}
	return "", false
}

// Header names carried by every published record (INGEST.md, "What lands in the broker").
const (
	HeaderStream      = "restless-stream"
	HeaderEventID     = "restless-event-id"
	HeaderEventType   = "restless-event-type"
	HeaderTimestamp   = "restless-timestamp"
	HeaderVerified    = "restless-verified"
	HeaderContentType = "content-type"

	// Dead-letter records carry these instead of type, timestamp and verified.
	HeaderDLQReason = "restless-dlq-reason"
	HeaderDLQError  = "restless-dlq-error"

	ContentTypeJSON = "application/json"
)

// Reasons a record is sent to the dead-letter destination (restless-dlq-reason).
const (
	ReasonParseError       = "parse_error"
	ReasonTooLarge         = "too_large"
	ReasonSignatureMissing = "signature_missing"
	ReasonSignatureInvalid = "signature_invalid"
)

// ReasonPublishRejected counts a record the broker refused for good (the sink
// returned an ingest.PermanentError for it, e.g. a record larger than the
// broker accepts). It is counted and dropped rather than retried forever,
// which would stall its stream; it is not dead-lettered, since the broker
// would refuse the same bytes there too.
const ReasonPublishRejected = "publish_rejected"
