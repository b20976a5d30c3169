package client

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/url"
	"strconv"
	"strings"
)

// Default base URLs of the hosted service.
const (
	DefaultBaseURL       = "https://api.restlessapi.stream"
	DefaultStreamBaseURL = "https://stream.restlessapi.stream"
)

// The runtime query parameters and header (PROTOCOL.md §2): which stream
// (exactly one of ParamStreamID and ParamSessionID), where to start
// (HeaderLastEventID and ParamCursor carry the last cursor on every
// reconnect; ParamSince is sent before any cursor exists), and the API key
// in the query for clients that cannot send a header. This is the one place
// that names them, for clients and servers (the emulator) alike.
const (
	ParamStreamID     = "streamId"
	ParamSessionID    = "sessionId"
	ParamSince        = "since"
	ParamCursor       = "cursor"
	ParamAPIKey       = "apiKey"
	HeaderLastEventID = "Last-Event-ID"
)

// The runtime routes (PROTOCOL.md §2), as http.ServeMux patterns of a server
// at the root of the stream base URL: managed SSE (?streamId= or
// ?sessionId=), managed WebSocket, direct SSE and direct WebSocket. The URL
// builders below produce exactly these paths.
const (
	RouteSSE             = "GET /{$}"
	RouteWebSocket       = "GET " + pathWebSocket
	RouteDirectSSE       = "GET " + pathDirect
	RouteDirectWebSocket = "GET " + pathWebSocket + pathDirect
)

// Runtime paths and the direct-URL query names. The direct-URL encoding is
// [chosen]: this is the one place that fixes it.
const (
	pathDirect    = "/direct"
	pathWebSocket = "/ws"

	qURL               = "url"
	qMethod            = "method"
	qHeaders           = "headers"
	qBody              = "body"
	qJQFilter          = "jqFilter"
	qPayloadMode       = "payloadMode"
	qPollingInterval   = "pollingInterval"
	qPollingStrategies = "pollingStrategies"
	qAPIKey            = ParamAPIKey
)

// RuntimeTarget names a managed stream or a direct session to subscribe to.
type RuntimeTarget struct {
	StreamID  string // exactly one of StreamID and SessionID
	SessionID string
	Since     string // optional: an ISO-8601 timestamp or a cursor, sent as since=
}

// BuildSSEURL returns the managed SSE URL of t: {base}?streamId=ID (or
// sessionId=ID), plus since= when set. base "" means DefaultStreamBaseURL; a
// ws(s) base is taken as its http(s) counterpart (a leading /ws of its path
// removed). A query already in base is kept.
func BuildSSEURL(base string, t RuntimeTarget) (string, error) {
	u, err := runtimeBase(base)
	if err != nil {
		return "", err
	}
	var q []string
	switch {
	case t.StreamID != "" && t.SessionID != "":
		return "", errors.New("restless: runtime URL: give a stream ID or a session ID, not both")
	case t.StreamID != "":
		q = append(q, ParamStreamID+"="+url.QueryEscape(t.StreamID))
	case t.SessionID != "":
		q = append(q, ParamSessionID+"="+url.QueryEscape(t.SessionID))
	default:
		return "", errors.New("restless: runtime URL: a stream ID or a session ID is required")
	}
	if t.Since != "" {
		q = append(q, ParamSince+"="+url.QueryEscape(t.Since))
	}
	addQuery(u, q)
	return u.String(), nil
}

// BuildWebSocketURL returns the managed WebSocket URL of t: the SSE URL of
// BuildSSEURL turned into a WebSocket URL by ToWebSocketURL, e.g.
// wss://stream.restlessapi.stream/ws?streamId=ID.
func BuildWebSocketURL(base string, t RuntimeTarget) (string, error) {
	s, err := BuildSSEURL(base, t)
	if err != nil {
		return "", err
	}
	return ToWebSocketURL(s)
}

// BuildDirectSSEURL returns the direct SSE URL of in: {base}/direct?url=…
// with each present input as a query parameter (headers, body and
// pollingStrategies as compact JSON; absent inputs omitted). base "" means
// DefaultStreamBaseURL. in.URL must be an absolute http or https URL.
func BuildDirectSSEURL(base string, in DirectInput) (string, error) {
	u, err := runtimeBase(base)
	if err != nil {
		return "", err
	}
	q, err := directQuery(in)
	if err != nil {
		return "", err
	}
	appendPath(u, pathDirect)
	addQuery(u, q)
	return u.String(), nil
}

// BuildDirectWebSocketURL returns the direct WebSocket URL of in:
// {wsbase}/ws/direct?… (see BuildDirectSSEURL).
func BuildDirectWebSocketURL(base string, in DirectInput) (string, error) {
	s, err := BuildDirectSSEURL(base, in)
	if err != nil {
		return "", err
	}
	return ToWebSocketURL(s)
}

// ToWebSocketURL turns a runtime SSE URL into its WebSocket URL: https
// becomes wss and http ws, "/ws" is put in front of the path, the query is
// kept. A ws or wss URL is returned as is. Other schemes and relative URLs
// are errors.
func ToWebSocketURL(s string) (string, error) {
	u, err := url.Parse(s)
	if err != nil {
		return "", fmt.Errorf("restless: websocket URL: %w", redactURLError(err))
	}
	if u.Host == "" {
		return "", errors.New("restless: websocket URL: must be absolute, with a host")
	}
	switch u.Scheme {
	case "ws", "wss":
		return s, nil
	case "http":
		u.Scheme = "ws"
	case "https":
		u.Scheme = "wss"
	default:
		return "", fmt.Errorf("restless: websocket URL: scheme %q is not http, https, ws or wss", u.Scheme)
	}
	if u.Path == "" || u.Path == "/" {
		u.Path, u.RawPath = pathWebSocket, ""
	} else {
		u.Path = pathWebSocket + u.Path
		if u.RawPath != "" {
			u.RawPath = pathWebSocket + u.RawPath
		}
	}
	return u.String(), nil
}

// runtimeBase parses a runtime base URL into its http(s) form.
func runtimeBase(base string) (*url.URL, error) {
	if base == "" {
		base = DefaultStreamBaseURL
	}
	u, err := url.Parse(base)
	if err != nil {
		return nil, fmt.Errorf("restless: stream base URL: %w", redactURLError(err))
	}
	switch u.Scheme {
	case "http", "https":
	case "ws", "wss":
		u.Scheme = "http" + strings.TrimPrefix(u.Scheme, "ws")
		if p, ok := strings.CutPrefix(u.Path, pathWebSocket); ok && (p == "" || p[0] == '/') {
			u.Path, u.RawPath = p, strings.TrimPrefix(u.RawPath, pathWebSocket)
		}
	default:
		return nil, fmt.Errorf("restless: stream base URL: scheme %q is not http, https, ws or wss", u.Scheme)
	}
	if u.Host == "" {
		return nil, errors.New("restless: stream base URL: must be absolute, with a host")
	}
	u.Fragment, u.RawFragment = "", ""
	return u, nil
}

func appendPath(u *url.URL, p string) {
	if u.RawPath != "" {
		u.RawPath = strings.TrimSuffix(u.RawPath, "/") + p
	}
	u.Path = strings.TrimSuffix(u.Path, "/") + p
}

// addQuery appends the encoded parameters q to u's query.
func addQuery(u *url.URL, q []string) {
	all := strings.Join(q, "&")
	if u.RawQuery != "" {
		all = u.RawQuery + "&" + all
	}
	u.RawQuery = all
	u.ForceQuery = false
}

// redactURLError drops the URL from a url.Parse error: it may hold a key.
func redactURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// directQuery validates in and encodes it as query parameters, in a fixed
// order. Errors never quote the inputs: URLs, headers and keys may be
// secret.
func directQuery(in DirectInput) ([]string, error) {
	if err := validateDirect(in); err != nil {
		return nil, err
	}
	q := []string{qURL + "=" + url.QueryEscape(in.URL)}
	add := func(k, v string) { q = append(q, k+"="+url.QueryEscape(v)) }
	if in.Method != "" {
		add(qMethod, string(in.Method))
	}
	if len(in.Headers) > 0 {
		h, err := compactJSON(in.Headers)
		if err != nil {
			return nil, fmt.Errorf("restless: direct input: headers: %w", err)
		}
		add(qHeaders, h)
	}
	if in.Body != nil {
		b, err := compactJSON(in.Body)
		if err != nil {
			return nil, fmt.Errorf("restless: direct input: body: %w", err)
		}
		add(qBody, b)
	}
	if in.JQFilter != "" {
		add(qJQFilter, in.JQFilter)
	}
	if in.PayloadMode != "" {
		add(qPayloadMode, string(in.PayloadMode))
	}
	if in.PollingInterval != 0 {
		add(qPollingInterval, strconv.FormatFloat(in.PollingInterval, 'f', -1, 64))
	}
	if len(in.PollingStrategies) > 0 {
		ps, err := compactJSON(in.PollingStrategies)
		if err != nil {
			return nil, fmt.Errorf("restless: direct input: polling strategies: %w", err)
		}
		add(qPollingStrategies, ps)
	}
	if in.APIKey != "" {
		add(qAPIKey, in.APIKey)
	}
	return q, nil
}

// validateDirect checks the inputs of a direct stream.
func validateDirect(in DirectInput) error {
	if in.URL == "" {
		return errors.New("restless: direct input: url is required")
	}
	u, err := url.Parse(in.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return errors.New("restless: direct input: url must be an absolute http or https URL")
	}
	if in.Method != "" && !in.Method.Valid() {
		return fmt.Errorf("restless: direct input: method %q is not GET, POST, PUT, PATCH, DELETE or OPTIONS", in.Method)
	}
	if in.PayloadMode != "" && !in.PayloadMode.Valid() {
		return fmt.Errorf("restless: direct input: payload mode %q is not FULL_DATA or JSON_PATCH", in.PayloadMode)
	}
	if !validInterval(in.PollingInterval) {
		return fmt.Errorf("restless: direct input: polling interval %v is not a finite number of seconds >= 0", in.PollingInterval)
	}
	for i, s := range in.PollingStrategies {
		if !validInterval(s.PollingInterval) {
			return fmt.Errorf("restless: direct input: polling strategy %d: polling interval %v is not a finite number of seconds >= 0", i, s.PollingInterval)
		}
	}
	return nil
}

func validInterval(f float64) bool { return f >= 0 && !math.IsInf(f, 0) && !math.IsNaN(f) }

// compactJSON marshals v without HTML escaping or a trailing newline.
func compactJSON(v any) (string, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return "", err
	}
	return strings.TrimSuffix(buf.String(), "\n"), nil
}

// ParseDirectQuery decodes the query of a direct runtime URL, the inverse of
// BuildDirectSSEURL's encoding, and validates the result. body comes back as
// a json.RawMessage; method is read in any case and returned in upper case.
// Servers (such as the emulator) use it.
func ParseDirectQuery(q url.Values) (DirectInput, error) {
	in := DirectInput{
		URL:         q.Get(qURL),
		Method:      HTTPMethod(strings.ToUpper(q.Get(qMethod))),
		JQFilter:    q.Get(qJQFilter),
		PayloadMode: PayloadMode(q.Get(qPayloadMode)),
		APIKey:      q.Get(qAPIKey),
	}
	if s := q.Get(qHeaders); s != "" {
		if err := json.Unmarshal([]byte(s), &in.Headers); err != nil {
			return in, errors.New("restless: direct query: headers is not a JSON object of strings")
		}
	}
	if s := q.Get(qBody); s != "" {
		if !json.Valid([]byte(s)) {
			return in, errors.New("restless: direct query: body is not valid JSON")
		}
		in.Body = json.RawMessage(s)
	}
	if s := q.Get(qPollingInterval); s != "" {
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return in, fmt.Errorf("restless: direct query: pollingInterval %q is not a number", s)
		}
		in.PollingInterval = f
	}
	if s := q.Get(qPollingStrategies); s != "" {
		if err := json.Unmarshal([]byte(s), &in.PollingStrategies); err != nil {
			return in, errors.New("restless: direct query: pollingStrategies is not a JSON array of strategies")
		}
	}
	return in, validateDirect(in)
}
