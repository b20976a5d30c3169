package client

import "encoding/json"

// The two event types of PROTOCOL.md §3.
const (
	EventUpdate = "update"
	EventError  = "error"
)

// EventMeta is the "meta" object of an event. Both snake_case and camelCase
// keys are read.
type EventMeta struct {
	Timestamp           string          // meta.timestamp as sent ("" if absent)
	AttemptID           string          // attempt_id | attemptId
	Status              int             // the polled endpoint's HTTP status
	LatencyMS           int64           // latency_ms | latencyMs
	PayloadModeFallback json.RawMessage // payload_mode_fallback | payloadModeFallback; nil when absent or null
}

// Event is one runtime event (PROTOCOL.md §3).
type Event struct {
	Type      string          // "update" or "error"
	Meta      EventMeta       // zero when absent or null
	Data      json.RawMessage // raw JSON of "data"; nil when absent or null. ALIASES the input.
	Error     json.RawMessage // raw JSON of "error"; nil when absent or null. ALIASES the input.
	Signature string          // "" when absent, null or ""; a value that is not a string, as written
	EventID   string          // event_id | eventId; "" when absent or null; a number keeps its literal text
}

// StreamEvent, StreamEventMeta: the names the Python SDK gives the event
// models.
type (
	StreamEvent     = Event
	StreamEventMeta = EventMeta
)

// StreamErrorDetail is the "error" object of an error event.
type StreamErrorDetail struct {
	Message string          `json:"message"`
	Raw     json.RawMessage `json:"-"`
}

// ErrorDetail returns the event's error as a StreamErrorDetail (zero when
// the event has no error; Message as ErrorMessage reads it).
func (e *Event) ErrorDetail() StreamErrorDetail {
	if len(e.Error) == 0 {
		return StreamErrorDetail{}
	}
	return StreamErrorDetail{Message: e.ErrorMessage(), Raw: append(json.RawMessage(nil), e.Error...)}
}

// ErrorMessage returns the message of an error event: error.message when
// error is an object with a string message, the text when error is a
// string, else the raw error JSON; "" when the event has no error.
func (e *Event) ErrorMessage() string {
	if len(e.Error) == 0 {
		return ""
	}
	var s string
	if e.Error[0] == '"' {
		if json.Unmarshal(e.Error, &s) == nil {
			return s
		}
		return string(e.Error)
	}
	var obj struct {
		Message json.RawMessage `json:"message"`
	}
	if json.Unmarshal(e.Error, &obj) == nil && json.Unmarshal(obj.Message, &s) == nil && s != "" {
		return s
	}
	return string(e.Error)
}
