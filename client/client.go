package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Version is this SDK's version, sent in the default User-Agent.
const Version = "0.1.0"

// DefaultUserAgent is the User-Agent sent unless WithUserAgent says otherwise.
const DefaultUserAgent = "restless-stream-go/" + Version

// HeaderAPIKey is the header that carries the API key on REST requests
// (PROTOCOL.md §1); the runtime takes it as Authorization: Bearer instead.
const HeaderAPIKey = "x-api-key"

// DefaultTimeout bounds each REST request of a Client that owns its
// http.Client.
const DefaultTimeout = 30 * time.Second

// Response size limits: a larger answer is an error, not a memory hazard.
const (
	maxResponseBytes = 32 << 20
	maxErrorBytes    = 1 << 20
)

// Client talks to the REST management API. Create it with New; it is safe
// for concurrent use. Its Streams field holds the twelve stream operations.
type Client struct {
	// Streams is the stream management service.
	Streams *StreamsService

	apiKey        string
	baseURL       *url.URL
	streamBaseURL string
	http          *http.Client
	userAgent     string
}

// Option configures a Client.
type Option func(*settings)

type settings struct {
	baseURL, streamBaseURL, userAgent string
	httpClient                        *http.Client
	timeout                           time.Duration
}

// WithBaseURL sets the REST API base URL (default DefaultBaseURL).
func WithBaseURL(u string) Option { return func(s *settings) { s.baseURL = u } }

// WithStreamBaseURL sets the runtime stream base URL (default
// DefaultStreamBaseURL), returned by StreamBaseURL for building runtime URLs.
func WithStreamBaseURL(u string) Option { return func(s *settings) { s.streamBaseURL = u } }

// WithHTTPClient makes the Client send its requests through h, used as is:
// WithTimeout does not change it and the Client never closes it.
func WithHTTPClient(h *http.Client) Option { return func(s *settings) { s.httpClient = h } }

// WithTimeout sets the timeout of each REST request (default
// DefaultTimeout) of a Client that owns its http.Client.
func WithTimeout(d time.Duration) Option { return func(s *settings) { s.timeout = d } }

// WithUserAgent sets the User-Agent header (default DefaultUserAgent).
func WithUserAgent(ua string) Option { return func(s *settings) { s.userAgent = ua } }

// New returns a Client that authenticates with apiKey (sent as x-api-key;
// "" sends none). The base URLs must be absolute http or https URLs.
func New(apiKey string, opts ...Option) (*Client, error) {
	s := settings{baseURL: DefaultBaseURL, streamBaseURL: DefaultStreamBaseURL,
		userAgent: DefaultUserAgent, timeout: DefaultTimeout}
	for _, o := range opts {
		o(&s)
	}
	if strings.ContainsAny(apiKey, "\r\n") {
		return nil, errors.New("restless: API key contains a line break")
	}
	if strings.ContainsAny(s.userAgent, "\r\n") {
		return nil, errors.New("restless: user agent contains a line break")
	}
	base, err := parseBase("base URL", s.baseURL, "http", "https")
	if err != nil {
		return nil, err
	}
	if _, err := parseBase("stream base URL", s.streamBaseURL, "http", "https", "ws", "wss"); err != nil {
		return nil, err
	}
	if s.timeout < 0 {
		return nil, fmt.Errorf("restless: timeout %v is negative", s.timeout)
	}
	h := s.httpClient
	if h == nil {
		h = &http.Client{Timeout: s.timeout}
	}
	// A copy, so that the caller's client is left as it was: credentials
	// follow a redirect only to the origin they were sent to.
	hc := *h
	hc.CheckRedirect = credentialRedirect(h.CheckRedirect)
	c := &Client{apiKey: apiKey, baseURL: base, streamBaseURL: s.streamBaseURL, http: &hc, userAgent: s.userAgent}
	c.Streams = &StreamsService{c: c}
	return c, nil
}

func parseBase(what, raw string, schemes ...string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("restless: %s: %w", what, redactURLError(err))
	}
	for _, s := range schemes {
		if u.Scheme == s {
			if u.Host == "" {
				return nil, fmt.Errorf("restless: %s: must be absolute, with a host", what)
			}
			u.Path = strings.TrimSuffix(u.Path, "/")
			u.RawPath = strings.TrimSuffix(u.RawPath, "/")
			u.RawQuery, u.Fragment, u.RawFragment = "", "", ""
			return u, nil
		}
	}
	return nil, fmt.Errorf("restless: %s: scheme %q is not %s", what, u.Scheme, strings.Join(schemes, ", "))
}

// StreamBaseURL returns the runtime stream base URL, for BuildSSEURL and
// friends.
func (c *Client) StreamBaseURL() string { return c.streamBaseURL }

// BaseURL returns the REST API base URL.
func (c *Client) BaseURL() string { return c.baseURL.String() }

// HasAPIKey reports whether the Client authenticates with an API key.
func (c *Client) HasAPIKey() bool { return c.apiKey != "" }

// do sends one REST request. path is already escaped; body (if not nil) is
// sent as JSON; a 2xx answer's body is decoded into out (if not nil).
func (c *Client) do(ctx context.Context, method, path string, query url.Values, body, out any) error {
	u := *c.baseURL
	rawPath := u.EscapedPath() + path
	p, err := url.PathUnescape(rawPath)
	if err != nil {
		return fmt.Errorf("restless: %s %s: %w", method, path, err)
	}
	u.Path, u.RawPath = p, rawPath
	u.RawQuery = query.Encode()

	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("restless: %s %s: marshal request: %w", method, path, err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return fmt.Errorf("restless: %s %s: %w", method, path, redactURLError(err))
	}
	if c.apiKey != "" {
		req.Header.Set(HeaderAPIKey, c.apiKey)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.userAgent)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("restless: %s %s: %w", method, path, redactURLError(err))
	}
	defer resp.Body.Close()

	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBytes))
		e := newAPIError(resp.StatusCode, method, path, b)
		e.Message = redactKeys(e.Message, c.apiKey, bodyAPIKey(body))
		return e
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes+1))
	if err != nil {
		return fmt.Errorf("restless: %s %s: read response: %w", method, path, err)
	}
	if len(b) > maxResponseBytes {
		return fmt.Errorf("restless: %s %s: response larger than %d bytes", method, path, maxResponseBytes)
	}
	if out == nil || len(bytes.TrimSpace(b)) == 0 {
		return nil
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("restless: %s %s: decode response: %w", method, path, err)
	}
	return nil
}

// newAPIError builds the error of a non-2xx answer (PROTOCOL.md §1):
// {statusCode, message, error} with message a string or an array of
// strings.
func newAPIError(status int, method, path string, body []byte) *APIError {
	e := &APIError{StatusCode: status, Body: body, Method: method, Path: path}
	var parsed struct {
		Message json.RawMessage `json:"message"`
		Error   json.RawMessage `json:"error"`
	}
	if json.Unmarshal(body, &parsed) == nil {
		e.Message = messageText(parsed.Message)
		if e.Message == "" {
			e.Message = messageText(parsed.Error)
		}
	}
	if e.Message == "" {
		e.Message = strings.TrimSpace(string(body))
		if len(e.Message) > 512 {
			e.Message = e.Message[:512] + "…"
		}
	}
	if e.Message == "" {
		e.Message = http.StatusText(status)
	}
	return e
}

// messageText reads a JSON string, or an array of strings joined by "; ".
func messageText(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var list []string
	if json.Unmarshal(raw, &list) == nil {
		return strings.Join(list, "; ")
	}
	return ""
}

// redactKeys hides API keys that a server may echo in its error message.
func redactKeys(s string, keys ...string) string {
	for _, k := range keys {
		if len(k) >= 4 {
			s = strings.ReplaceAll(s, k, "[REDACTED]")
		}
	}
	return s
}

// bodyAPIKey returns the apiKey a request body carries, if any.
func bodyAPIKey(body any) string {
	if m, ok := body.(map[string]any); ok {
		for _, k := range []string{"apiKey", "api_key"} {
			if s, ok := m[k].(string); ok {
				return s
			}
		}
	}
	return ""
}

// credentialHeaders are the headers that carry the Client's key: x-api-key
// on REST calls, Authorization on runtime requests.
var credentialHeaders = []string{HeaderAPIKey, "Authorization"}

// credentialRedirect returns a CheckRedirect that removes the credential
// headers from a redirected request unless it goes to the exact origin
// (scheme, host, port) of the first request, then applies next (or the
// default policy of net/http: at most 10 redirects). net/http itself keeps
// Authorization for another port of the same host, and from https to http.
func credentialRedirect(next func(*http.Request, []*http.Request) error) func(*http.Request, []*http.Request) error {
	return func(req *http.Request, via []*http.Request) error {
		if len(via) > 0 && !sameOrigin(req.URL, via[0].URL) {
			for _, h := range credentialHeaders {
				req.Header.Del(h)
			}
		}
		if next != nil {
			return next(req, via)
		}
		if len(via) >= 10 {
			return errors.New("stopped after 10 redirects")
		}
		return nil
	}
}

// sameOrigin reports whether a and b have the same scheme, host and port
// (ws counts as http and wss as https; a missing port is the scheme's).
func sameOrigin(a, b *url.URL) bool {
	as, ah, ap := origin(a)
	bs, bh, bp := origin(b)
	return as == bs && ah == bh && ap == bp
}

func origin(u *url.URL) (scheme, host, port string) {
	scheme = strings.ToLower(u.Scheme)
	switch scheme {
	case "ws":
		scheme = "http"
	case "wss":
		scheme = "https"
	}
	host, port = strings.ToLower(u.Hostname()), u.Port()
	if port == "" {
		switch scheme {
		case "http":
			port = "80"
		case "https":
			port = "443"
		}
	}
	return scheme, host, port
}
