package client

import (
	"encoding/json"
	"time"
)

// HTTPMethod is the method a stream polls its endpoint with.
type HTTPMethod string

// The methods a stream may use.
const (
	MethodGet     HTTPMethod = "GET"
	MethodPost    HTTPMethod = "POST"
	MethodPut     HTTPMethod = "PUT"
	MethodPatch   HTTPMethod = "PATCH"
	MethodDelete  HTTPMethod = "DELETE"
	MethodOptions HTTPMethod = "OPTIONS"
)

// Valid reports whether m is one of the six methods.
func (m HTTPMethod) Valid() bool {
	switch m {
	case MethodGet, MethodPost, MethodPut, MethodPatch, MethodDelete, MethodOptions:
		return true
	}
	return false
}

// StreamStatus says whether a stream is polling.
type StreamStatus string

// The stream statuses.
const (
	StatusActive   StreamStatus = "ACTIVE"
	StatusInactive StreamStatus = "INACTIVE"
)

// PayloadMode says what an update event's data holds.
type PayloadMode string

// The payload modes.
const (
	// PayloadFullData: data is the whole document.
	PayloadFullData PayloadMode = "FULL_DATA"
	// PayloadJSONPatch: data is an RFC 6902 patch against the previous
	// document (PROTOCOL.md §3).
	PayloadJSONPatch PayloadMode = "JSON_PATCH"
)

// Valid reports whether p is one of the two modes.
func (p PayloadMode) Valid() bool { return p == PayloadFullData || p == PayloadJSONPatch }

// PollingStrategy is a time window with its own polling interval.
type PollingStrategy struct {
	Start           string   `json:"start,omitempty"`           // "HH:MM"
	End             string   `json:"end,omitempty"`             // "HH:MM"
	Days            []string `json:"days,omitempty"`            // "MON", "TUE", …
	Timezone        string   `json:"timezone,omitempty"`        // IANA name
	PollingInterval float64  `json:"pollingInterval,omitempty"` // seconds
}

// DirectInput are the inputs of a direct stream (PROTOCOL.md §1, §2): a REST
// endpoint streamed without creating a persisted stream.
type DirectInput struct {
	URL               string            `json:"url"`
	Method            HTTPMethod        `json:"method,omitempty"`            // "" = GET
	Headers           map[string]string `json:"headers,omitempty"`           // nil or empty = absent
	Body              any               `json:"body,omitempty"`              // any JSON-compatible value; nil = absent
	JQFilter          string            `json:"jqFilter,omitempty"`          // "" = absent
	PayloadMode       PayloadMode       `json:"payloadMode,omitempty"`       // "" = absent (server default)
	PollingInterval   float64           `json:"pollingInterval,omitempty"`   // seconds; 0 = absent (server default)
	PollingStrategies []PollingStrategy `json:"pollingStrategies,omitempty"` // nil or empty = absent
	APIKey            string            `json:"apiKey,omitempty"`            // "" = absent
}

// DirectSessionRequest opens or reuses a direct session.
type DirectSessionRequest struct {
	DirectInput
	// DedupeKey makes the server reuse the session opened with the same key.
	DedupeKey string `json:"dedupeKey,omitempty"`
}

// DirectSessionResponse is a direct session's runtime URLs and expiry.
type DirectSessionResponse struct {
	SessionID    string    `json:"sessionId"`
	SSEURL       string    `json:"sseUrl"`
	WebSocketURL string    `json:"websocketUrl"`
	ExpiresAt    time.Time `json:"expiresAt"` // zero when absent
	// Raw is the whole response body.
	Raw json.RawMessage `json:"-"`
}
