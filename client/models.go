package client

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
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

// Valid reports whether s is one of the two statuses.
func (s StreamStatus) Valid() bool { return s == StatusActive || s == StatusInactive }

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
	// Extra holds fields this package does not model, sent as given.
	Extra map[string]any `json:"-"`
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

// UnmarshalJSON reads the response leniently: snake_case keys, and an
// expiresAt in RFC 3339 or epoch milliseconds.
func (r *DirectSessionResponse) UnmarshalJSON(b []byte) error {
	type plain DirectSessionResponse
	aux := struct {
		*plain
		ExpiresAt json.RawMessage `json:"expiresAt"`
	}{plain: (*plain)(r)}
	if err := lenient(json.Unmarshal(camelKeys(b), &aux)); err != nil {
		return err
	}
	r.ExpiresAt = parseTime(aux.ExpiresAt)
	r.Raw = append(json.RawMessage(nil), b...)
	return nil
}

// CreateStreamRequest is the body of Create. Zero-valued optional fields are
// not sent (the server's defaults apply); name, description and url always
// are.
type CreateStreamRequest struct {
	Name              string            `json:"name"`
	Description       string            `json:"description"`
	Status            StreamStatus      `json:"status,omitempty"`
	Method            HTTPMethod        `json:"method,omitempty"`
	URL               string            `json:"url"`
	Headers           map[string]string `json:"headers,omitempty"`
	Body              any               `json:"body,omitempty"` // any JSON-compatible value; nil = absent
	PayloadMode       PayloadMode       `json:"payloadMode,omitempty"`
	PollingInterval   float64           `json:"pollingInterval,omitempty"` // seconds
	JQFilter          string            `json:"jqFilter,omitempty"`
	PollingStrategies []PollingStrategy `json:"pollingStrategies,omitempty"`
	// APIKey is sent as apiKey; "" means the client's key (PROTOCOL.md §1).
	APIKey string `json:"apiKey,omitempty"`
	// Extra holds fields this package does not model, sent as given (and
	// winning over the fields above); snake_case keys become camelCase.
	Extra map[string]any `json:"-"`
}

// UpdateStreamRequest is the body of Update: nil fields are not sent. Use
// Ptr to set one (Ptr("Orders v2")).
type UpdateStreamRequest struct {
	Name              *string           `json:"name,omitempty"`
	Description       *string           `json:"description,omitempty"`
	Status            *StreamStatus     `json:"status,omitempty"`
	Method            *HTTPMethod       `json:"method,omitempty"`
	URL               *string           `json:"url,omitempty"`
	Headers           map[string]string `json:"headers,omitempty"`
	Body              any               `json:"body,omitempty"`
	PayloadMode       *PayloadMode      `json:"payloadMode,omitempty"`
	PollingInterval   *float64          `json:"pollingInterval,omitempty"`
	JQFilter          *string           `json:"jqFilter,omitempty"`
	PollingStrategies []PollingStrategy `json:"pollingStrategies,omitempty"`
	// APIKey is sent as apiKey; "" means the client's key (PROTOCOL.md §1).
	APIKey string `json:"apiKey,omitempty"`
	// Extra holds fields this package does not model, sent as given (and
	// winning over the fields above); snake_case keys become camelCase. Use
	// it to send an explicit null: Extra: map[string]any{"body": nil}.
	Extra map[string]any `json:"-"`
}

// Ptr returns a pointer to v, for the optional fields of UpdateStreamRequest.
func Ptr[T any](v T) *T { return &v }

// ConnectionSnippetsRequest asks for a managed stream's runtime URLs and
// snippets.
type ConnectionSnippetsRequest struct {
	StreamID string `json:"streamId"`
	Language string `json:"language,omitempty"` // e.g. "python", "go", "curl"
	// Extra holds fields this package does not model, sent as given.
	Extra map[string]any `json:"-"`
}

// DirectSetupRequest asks for a direct stream's commands, URLs and snippets.
type DirectSetupRequest struct {
	DirectInput
	Language string `json:"language,omitempty"`
	// Extra holds fields this package does not model, sent as given.
	Extra map[string]any `json:"-"`
}

// Stream is a persisted stream.
type Stream struct {
	ID                string            `json:"id"`
	Name              string            `json:"name"`
	Description       string            `json:"description"`
	Status            StreamStatus      `json:"status"`
	Method            HTTPMethod        `json:"method"`
	URL               string            `json:"url"`
	Headers           map[string]string `json:"headers"`
	Body              json.RawMessage   `json:"body"`
	PayloadMode       PayloadMode       `json:"payloadMode"`
	PollingInterval   float64           `json:"pollingInterval"`
	JQFilter          string            `json:"jqFilter"`
	PollingStrategies []PollingStrategy `json:"pollingStrategies"`
	SSEURL            string            `json:"sseUrl"`
	WebSocketURL      string            `json:"websocketUrl"`
	// HMACSecret signs the stream's events. Only the create response has it:
	// store it then.
	HMACSecret string    `json:"hmacSecret"`
	CreatedAt  time.Time `json:"createdAt"` // zero when absent
	UpdatedAt  time.Time `json:"updatedAt"` // zero when absent
	// Raw is the stream's JSON as received.
	Raw json.RawMessage `json:"-"`
}

// UnmarshalJSON reads a stream leniently: snake_case keys, fields of an
// unexpected JSON type left zero, times in RFC 3339 or epoch milliseconds.
func (s *Stream) UnmarshalJSON(b []byte) error {
	type plain Stream
	aux := struct {
		*plain
		CreatedAt json.RawMessage `json:"createdAt"`
		UpdatedAt json.RawMessage `json:"updatedAt"`
	}{plain: (*plain)(s)}
	if err := lenient(json.Unmarshal(camelKeys(b), &aux)); err != nil {
		return err
	}
	s.CreatedAt, s.UpdatedAt = parseTime(aux.CreatedAt), parseTime(aux.UpdatedAt)
	s.Raw = append(json.RawMessage(nil), b...)
	return nil
}

// StreamsResponse is one page of List.
type StreamsResponse struct {
	Streams        []Stream        `json:"streams"`
	PaginationInfo PaginationInfo  `json:"paginationInfo"` // also read from pagination_info
	Raw            json.RawMessage `json:"-"`
}

// PaginationInfo says whether more pages follow.
type PaginationInfo struct {
	HasNextPage bool `json:"hasNextPage"` // also read from has_next_page
}

// UnmarshalJSON accepts camelCase and snake_case keys.
func (r *StreamsResponse) UnmarshalJSON(b []byte) error {
	type plain StreamsResponse
	if err := lenient(json.Unmarshal(camelKeys(b), (*plain)(r))); err != nil {
		return err
	}
	r.Raw = append(json.RawMessage(nil), b...)
	return nil
}

// UnmarshalJSON accepts camelCase and snake_case keys.
func (p *PaginationInfo) UnmarshalJSON(b []byte) error {
	type plain PaginationInfo
	return lenient(json.Unmarshal(camelKeys(b), (*plain)(p)))
}

// BaseActionResponse is the answer of start, stop, delete and
// validate-api-key.
type BaseActionResponse struct {
	ID       string          `json:"id"` // a number is kept as its literal text
	Affected bool            `json:"affected"`
	Raw      json.RawMessage `json:"-"`
}

// UnmarshalJSON reads the response leniently.
func (r *BaseActionResponse) UnmarshalJSON(b []byte) error {
	type plain BaseActionResponse
	aux := struct {
		*plain
		ID json.RawMessage `json:"id"`
	}{plain: (*plain)(r)}
	if err := lenient(json.Unmarshal(camelKeys(b), &aux)); err != nil {
		return err
	}
	r.ID = scalarText(aux.ID)
	r.Raw = append(json.RawMessage(nil), b...)
	return nil
}

// StreamCreditUsageStats is a stream's credit usage (shape [chosen]; Raw
// keeps the JSON as received).
type StreamCreditUsageStats struct {
	StreamID     string             `json:"streamId"`
	TotalCredits float64            `json:"totalCredits"`
	Daily        []DailyCreditUsage `json:"daily"`
	Raw          json.RawMessage    `json:"-"`
}

// UnmarshalJSON reads the stats leniently.
func (r *StreamCreditUsageStats) UnmarshalJSON(b []byte) error {
	type plain StreamCreditUsageStats
	if err := lenient(json.Unmarshal(camelKeys(b), (*plain)(r))); err != nil {
		return err
	}
	r.Raw = append(json.RawMessage(nil), b...)
	return nil
}

// DailyCreditUsage is one day of credit usage.
type DailyCreditUsage struct {
	Date         string                           `json:"date"`
	Credits      float64                          `json:"credits"`
	ByChargeType []CreditUsageChargeTypeBreakdown `json:"byChargeType"`
}

// UnmarshalJSON reads the day leniently.
func (r *DailyCreditUsage) UnmarshalJSON(b []byte) error {
	type plain DailyCreditUsage
	return lenient(json.Unmarshal(camelKeys(b), (*plain)(r)))
}

// CreditUsageChargeTypeBreakdown is one charge type's share of a day.
type CreditUsageChargeTypeBreakdown struct {
	ChargeType string  `json:"chargeType"`
	Credits    float64 `json:"credits"`
	Count      int64   `json:"count"`
}

// UnmarshalJSON reads the breakdown leniently.
func (r *CreditUsageChargeTypeBreakdown) UnmarshalJSON(b []byte) error {
	type plain CreditUsageChargeTypeBreakdown
	return lenient(json.Unmarshal(camelKeys(b), (*plain)(r)))
}

// ConnectionSnippetsResponse is a managed stream's runtime URLs and code
// snippets by language.
type ConnectionSnippetsResponse struct {
	SSEURL       string            `json:"sseUrl"`
	WebSocketURL string            `json:"websocketUrl"`
	Snippets     map[string]string `json:"snippets"`
	Raw          json.RawMessage   `json:"-"`
}

// UnmarshalJSON reads the response leniently.
func (r *ConnectionSnippetsResponse) UnmarshalJSON(b []byte) error {
	type plain ConnectionSnippetsResponse
	if err := lenient(json.Unmarshal(camelKeys(b), (*plain)(r))); err != nil {
		return err
	}
	r.Raw = append(json.RawMessage(nil), b...)
	return nil
}

// DirectSetupResponse is a direct stream's commands, runtime URLs, snippets
// and normalised configuration.
type DirectSetupResponse struct {
	Commands DirectSetupCommands `json:"commands"`
	Runtime  DirectSetupRuntime  `json:"runtime"`
	Snippets map[string]string   `json:"snippets"`
	Config   json.RawMessage     `json:"config"` // the normalised direct inputs
	Raw      json.RawMessage     `json:"-"`
}

// DirectSetupCommands are ready-to-run commands, with the key in a header or
// in the query.
type DirectSetupCommands struct {
	Header Command `json:"header"`
	Query  Command `json:"query"`
}

// Command is one ready-to-run command.
type Command struct {
	Curl string `json:"curl"`
}

// DirectSetupRuntime holds a direct stream's runtime URLs.
type DirectSetupRuntime struct {
	DirectSSEURL       string `json:"directSseUrl"`
	DirectWebSocketURL string `json:"directWebsocketUrl"`
}

// UnmarshalJSON reads the runtime URLs leniently.
func (r *DirectSetupRuntime) UnmarshalJSON(b []byte) error {
	type plain DirectSetupRuntime
	return lenient(json.Unmarshal(camelKeys(b), (*plain)(r)))
}

// UnmarshalJSON reads the response leniently.
func (r *DirectSetupResponse) UnmarshalJSON(b []byte) error {
	type plain DirectSetupResponse
	if err := lenient(json.Unmarshal(camelKeys(b), (*plain)(r))); err != nil {
		return err
	}
	r.Raw = append(json.RawMessage(nil), b...)
	return nil
}

// lenient drops the errors encoding/json reports for values of an
// unexpected type (it still fills every other field): response shapes are
// not public, so a surprise must not lose the rest.
func lenient(err error) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return nil
	}
	return err
}

// camelKeys rewrites the top-level snake_case keys of a JSON object into
// camelCase, unless the camelCase key is present too. Other input is
// returned as is.
func camelKeys(b []byte) []byte {
	if bytes.IndexByte(b, '_') < 0 {
		return b
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(b, &m) != nil {
		return b
	}
	changed := false
	for _, k := range mapKeys(m) {
		c := snakeToCamel(k)
		if _, dup := m[c]; c != k && !dup {
			m[c] = m[k]
			delete(m, k)
			changed = true
		}
	}
	if !changed {
		return b
	}
	out, err := json.Marshal(m)
	if err != nil {
		return b
	}
	return out
}

func mapKeys(m map[string]json.RawMessage) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	return keys
}

// parseTime reads an RFC 3339 string or epoch milliseconds; anything else
// is the zero time.
func parseTime(raw json.RawMessage) time.Time {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
			return t
		}
		return time.Time{}
	}
	if ms, err := strconv.ParseInt(string(raw), 10, 64); err == nil {
		return time.UnixMilli(ms).UTC()
	}
	return time.Time{}
}

// scalarText reads a JSON string, or keeps another scalar's literal text.
func scalarText(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	if t := strings.TrimSpace(string(raw)); t != "null" {
		return t
	}
	return ""
}
