package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"net/url"
	"strconv"
	"strings"
)

// The REST routes (PROTOCOL.md §1), as http.ServeMux patterns: the method,
// a space, and the path with {id} for the stream ID. They are [chosen]: this
// table is the one place to change when the real paths are learned. Servers
// (the emulator) register these same patterns.
const (
	RouteListStreams        = "GET /streams"
	RouteGetStream          = "GET /streams/{id}"
	RouteCreateStream       = "POST /streams"
	RouteUpdateStream       = "PATCH /streams/{id}"
	RouteStartStream        = "POST /streams/{id}/start"
	RouteStopStream         = "POST /streams/{id}/stop"
	RouteDeleteStream       = "DELETE /streams/{id}"
	RouteValidateAPIKey     = "POST /streams/validate-api-key"
	RouteCreditUsageStats   = "GET /streams/{id}/credit-usage-stats"
	RouteConnectionSnippets = "POST /streams/connection-snippets"
	RouteDirectSetup        = "POST /streams/direct/setup"
	RouteDirectSession      = "POST /streams/direct/session"
)

// Defaults of List.
const (
	DefaultListLimit = 20
)

// The query parameters of RouteListStreams.
const (
	ParamLimit  = "limit"
	ParamOffset = "offset"
)

// StreamsService holds the stream operations of the REST API, one per
// operation of the Python SDK's client.streams. Reach it as Client.Streams.
type StreamsService struct {
	c *Client
}

// call sends the request of route, with id substituted (path-escaped).
func (s *StreamsService) call(ctx context.Context, route, id string, query url.Values, body, out any) error {
	method, path, _ := strings.Cut(route, " ")
	if strings.Contains(path, "{id}") {
		if id == "" {
			return fmt.Errorf("restless: %s: stream ID is required", route)
		}
		path = strings.Replace(path, "{id}", url.PathEscape(id), 1)
	}
	return s.c.do(ctx, method, path, query, body, out)
}

// List returns one page of streams. limit 0 means DefaultListLimit (20);
// negative values are errors.
func (s *StreamsService) List(ctx context.Context, limit, offset int) (*StreamsResponse, error) {
	if limit < 0 || offset < 0 {
		return nil, fmt.Errorf("restless: list streams: limit %d and offset %d must not be negative", limit, offset)
	}
	if limit == 0 {
		limit = DefaultListLimit
	}
	q := url.Values{ParamLimit: {strconv.Itoa(limit)}, ParamOffset: {strconv.Itoa(offset)}}
	var out StreamsResponse
	if err := s.call(ctx, RouteListStreams, "", q, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// All iterates over every stream, fetching pages of pageSize (0 means
// DefaultListLimit) as it goes. An error is yielded once, and ends the
// iteration.
func (s *StreamsService) All(ctx context.Context, pageSize int) iter.Seq2[Stream, error] {
	return func(yield func(Stream, error) bool) {
		offset := 0
		for {
			page, err := s.List(ctx, pageSize, offset)
			if err != nil {
				yield(Stream{}, err)
				return
			}
			for _, st := range page.Streams {
				if !yield(st, nil) {
					return
				}
			}
			if !page.PaginationInfo.HasNextPage || len(page.Streams) == 0 {
				return
			}
			offset += len(page.Streams)
		}
	}
}

// Get returns one stream.
func (s *StreamsService) Get(ctx context.Context, id string) (*Stream, error) {
	var out Stream
	if err := s.call(ctx, RouteGetStream, id, nil, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Create creates a persisted stream. Unless the request carries an API key
// (APIKey, or "apiKey"/"api_key" in Extra), the client's key is added to the
// body as apiKey, as the Python SDK does.
func (s *StreamsService) Create(ctx context.Context, req CreateStreamRequest) (*Stream, error) {
	if req.Name == "" || req.URL == "" {
		return nil, errors.New("restless: create stream: name and url are required")
	}
	if err := validateStreamFields(req.Method, req.PayloadMode, req.Status, req.PollingInterval, req.PollingStrategies); err != nil {
		return nil, fmt.Errorf("restless: create stream: %w", err)
	}
	body, err := requestBody(req, req.Extra)
	if err != nil {
		return nil, fmt.Errorf("restless: create stream: %w", err)
	}
	s.addAPIKey(body)
	var out Stream
	if err := s.call(ctx, RouteCreateStream, "", nil, body, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Update patches a stream: only the fields set in req are sent. The apiKey
// rule of Create applies.
func (s *StreamsService) Update(ctx context.Context, id string, req UpdateStreamRequest) (*Stream, error) {
	var method HTTPMethod
	var mode PayloadMode
	var status StreamStatus
	var interval float64
	if req.Method != nil {
		method = *req.Method
		if method == "" {
			return nil, errors.New(`restless: update stream: method "" is not a method`)
		}
	}
	if req.PayloadMode != nil {
		mode = *req.PayloadMode
		if mode == "" {
			return nil, errors.New(`restless: update stream: payload mode "" is not a payload mode`)
		}
	}
	if req.Status != nil {
		status = *req.Status
		if status == "" {
			return nil, errors.New(`restless: update stream: status "" is not a status`)
		}
	}
	if req.PollingInterval != nil {
		interval = *req.PollingInterval
	}
	if err := validateStreamFields(method, mode, status, interval, req.PollingStrategies); err != nil {
		return nil, fmt.Errorf("restless: update stream: %w", err)
	}
	body, err := requestBody(req, req.Extra)
	if err != nil {
		return nil, fmt.Errorf("restless: update stream: %w", err)
	}
	s.addAPIKey(body)
	var out Stream
	if err := s.call(ctx, RouteUpdateStream, id, nil, body, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Start marks a stream active.
func (s *StreamsService) Start(ctx context.Context, id string) (*BaseActionResponse, error) {
	return s.action(ctx, RouteStartStream, id, nil)
}

// Stop marks a stream inactive.
func (s *StreamsService) Stop(ctx context.Context, id string) (*BaseActionResponse, error) {
	return s.action(ctx, RouteStopStream, id, nil)
}

// Delete deletes a stream.
func (s *StreamsService) Delete(ctx context.Context, id string) (*BaseActionResponse, error) {
	return s.action(ctx, RouteDeleteStream, id, nil)
}

// ValidateAPIKey asks the service whether apiKey is valid; "" validates the
// client's own key. A valid key answers {id: key, affected: true}; an
// invalid one is an *APIError (its text never shows the key).
func (s *StreamsService) ValidateAPIKey(ctx context.Context, apiKey string) (*BaseActionResponse, error) {
	if apiKey == "" {
		apiKey = s.c.apiKey
	}
	if apiKey == "" {
		return nil, errors.New("restless: validate API key: no key given and the client has none")
	}
	return s.action(ctx, RouteValidateAPIKey, "", map[string]any{"apiKey": apiKey})
}

func (s *StreamsService) action(ctx context.Context, route, id string, body any) (*BaseActionResponse, error) {
	var out BaseActionResponse
	if err := s.call(ctx, route, id, nil, body, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// CreditUsageStats returns a stream's credit usage totals and daily usage.
func (s *StreamsService) CreditUsageStats(ctx context.Context, id string) (*StreamCreditUsageStats, error) {
	var out StreamCreditUsageStats
	if err := s.call(ctx, RouteCreditUsageStats, id, nil, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ConnectionSnippets returns a managed stream's runtime URLs and code
// snippets.
func (s *StreamsService) ConnectionSnippets(ctx context.Context, req ConnectionSnippetsRequest) (*ConnectionSnippetsResponse, error) {
	if req.StreamID == "" {
		return nil, errors.New("restless: connection snippets: stream ID is required")
	}
	body, err := requestBody(req, req.Extra)
	if err != nil {
		return nil, fmt.Errorf("restless: connection snippets: %w", err)
	}
	var out ConnectionSnippetsResponse
	if err := s.call(ctx, RouteConnectionSnippets, "", nil, body, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// DirectSetup returns the commands, runtime URLs and snippets of a direct
// stream, without subscribing.
func (s *StreamsService) DirectSetup(ctx context.Context, req DirectSetupRequest) (*DirectSetupResponse, error) {
	if err := validateDirect(req.DirectInput); err != nil {
		return nil, err
	}
	body, err := requestBody(req, req.Extra)
	if err != nil {
		return nil, fmt.Errorf("restless: direct setup: %w", err)
	}
	var out DirectSetupResponse
	if err := s.call(ctx, RouteDirectSetup, "", nil, body, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// DirectSession creates, or reuses by DedupeKey, a direct stream session,
// whose server-issued SSEURL and WebSocketURL are stable.
func (s *StreamsService) DirectSession(ctx context.Context, req DirectSessionRequest) (*DirectSessionResponse, error) {
	if err := validateDirect(req.DirectInput); err != nil {
		return nil, err
	}
	body, err := requestBody(req, req.Extra)
	if err != nil {
		return nil, fmt.Errorf("restless: direct session: %w", err)
	}
	var out DirectSessionResponse
	if err := s.call(ctx, RouteDirectSession, "", nil, body, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// addAPIKey applies the rule of PROTOCOL.md §1: the client's key goes into a
// create or update body unless the body has apiKey or api_key already.
func (s *StreamsService) addAPIKey(body map[string]any) {
	if s.c.apiKey == "" {
		return
	}
	if _, ok := body["apiKey"]; ok {
		return
	}
	if _, ok := body["api_key"]; ok {
		return
	}
	body["apiKey"] = s.c.apiKey
}

// requestBody turns a typed request into the JSON object sent: its modelled
// fields, then extra's entries (which win), with snake_case keys of extra
// turned into camelCase as the Python SDK does (so "api_key" is sent as
// apiKey).
func requestBody(req any, extra map[string]any) (map[string]any, error) {
	b, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	var body map[string]any
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.UseNumber()
	if err := dec.Decode(&body); err != nil {
		return nil, err
	}
	for k, v := range extra {
		body[snakeToCamel(k)] = v
	}
	return body, nil
}

// snakeToCamel turns snake_case into camelCase ("polling_interval" →
// "pollingInterval"); other keys are returned as is.
func snakeToCamel(k string) string {
	if !strings.Contains(k, "_") || strings.HasPrefix(k, "_") {
		return k
	}
	var b strings.Builder
	up := false
	for _, r := range k {
		switch {
		case r == '_':
			up = true
		case up:
			b.WriteString(strings.ToUpper(string(r)))
			up = false
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

func validateStreamFields(m HTTPMethod, p PayloadMode, st StreamStatus, interval float64, strategies []PollingStrategy) error {
	if m != "" && !m.Valid() {
		return fmt.Errorf("method %q is not GET, POST, PUT, PATCH, DELETE or OPTIONS", m)
	}
	if p != "" && !p.Valid() {
		return fmt.Errorf("payload mode %q is not FULL_DATA or JSON_PATCH", p)
	}
	if st != "" && !st.Valid() {
		return fmt.Errorf("status %q is not ACTIVE or INACTIVE", st)
	}
	if !validInterval(interval) {
		return fmt.Errorf("polling interval %v is not a finite number of seconds >= 0", interval)
	}
	for i, s := range strategies {
		if !validInterval(s.PollingInterval) {
			return fmt.Errorf("polling strategy %d: polling interval %v is not a finite number of seconds >= 0", i, s.PollingInterval)
		}
	}
	return nil
}
