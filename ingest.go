// Package ingest holds the vocabulary shared by every part of restless-ingest:
// the frames a source reads, the records a sink writes, the states a source
// or sink reports, the errors that cross between them, and secrets.
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
	// Cursor is the resume position in effect after this event, as the
	// source tracks it for its reconnects: the last cursor the stream
	// carried (the SSE id field, or the event_id of an event that came
	// without one, as every WebSocket message does). "" when the stream gave
	// none yet. The pipeline decides the checkpoint: it uses
	// Cursor only for an event whose event_id it cannot read.
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
	// Headers travel with the record, in order. Their names are the
	// pipeline's (pipeline.HeaderStream and the rest); a sink carries them
	// without reading them.
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
