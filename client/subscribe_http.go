package client

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/restless-stream/ingest/client/internal/stream"
)

// StatusError is a runtime connection refused with an unexpected HTTP
// status (PROTOCOL.md §2): the SSE request or the WebSocket handshake. Like
// an *APIError it matches ErrRestless, and ErrUnauthorized, ErrForbidden,
// ErrNotFound or ErrRateLimited by its status. Its text never holds a
// secret of the URL.
type StatusError struct {
	// Code is the HTTP status code.
	Code int
	// URL is the request URL with secrets redacted.
	URL string
	// Body is the start of the response body (at most 256 bytes), for the
	// message.
	Body string
}

func (e *StatusError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: HTTP %d %s", e.URL, e.Code, http.StatusText(e.Code))
	switch e.Code {
	case http.StatusUnauthorized, http.StatusForbidden:
		b.WriteString(" (the API key was refused: check it)")
	}
	if e.Body != "" {
		fmt.Fprintf(&b, ": %q", e.Body)
	}
	return b.String()
}

// Is reports whether target is ErrRestless or the sentinel of e's status.
func (e *StatusError) Is(target error) bool {
	return (&APIError{StatusCode: e.Code}).Is(target)
}

// maxErrorBody is how much of a refused response's body an error quotes.
const maxErrorBody = 256

// checkStatus classifies a response that did not open a stream: 204 wraps
// ErrStreamEnded; 408, 414, 429, 431 and 5xx are transient (with the
// server's Retry-After attached); every other 4xx is permanent; anything
// else is transient. body is the start of the response body (may be nil).
func checkStatus(resp *http.Response, redactedURL string, body []byte, now time.Time) error {
	if resp.StatusCode == http.StatusNoContent {
		return fmt.Errorf("%s: %w (HTTP 204)", redactedURL, ErrStreamEnded)
	}
	se := &StatusError{Code: resp.StatusCode, URL: redactedURL, Body: cleanBody(body)}
	switch c := resp.StatusCode; {
	case c == http.StatusRequestTimeout || c == http.StatusTooManyRequests || c >= 500,
		// The request was too large: the subscription retries without the
		// cursor where it did not fit (see tooLarge).
		c == http.StatusRequestURITooLong || c == http.StatusRequestHeaderFieldsTooLarge:
		d, _ := stream.ParseRetryAfter(resp.Header.Get("Retry-After"), now)
		return stream.WithRetryAfter(se, d)
	case c >= 400 && c < 500:
		return stream.Permanent(se)
	}
	return se
}

func cleanBody(b []byte) string {
	if len(b) > maxErrorBody {
		b = b[:maxErrorBody]
	}
	return strings.TrimSpace(strings.ToValidUTF8(string(b), string(utf8.RuneError)))
}

// resumeURL returns u with the resume position in its query: cursor= (set,
// replacing any) when cursor is non-empty, else since= when since is
// non-empty. since= is removed once a cursor exists.
func resumeURL(u *url.URL, cursor, since string) string {
	if cursor == "" && since == "" {
		return u.String()
	}
	c := *u
	q := c.Query()
	if cursor != "" {
		q.Set(ParamCursor, cursor)
		q.Del(ParamSince)
	} else {
		q.Set(ParamSince, since)
	}
	c.RawQuery = q.Encode()
	return c.String()
}

// sensitive are query parameters whose values never appear in errors: the
// upstream API key of direct streams and the upstream request headers,
// which often carry credentials.
var sensitive = map[string]bool{
	"apikey": true, "api_key": true, "key": true, "token": true,
	"access_token": true, "headers": true, "password": true, "secret": true,
}

// redactRawURL returns raw with credentials replaced: the userinfo password
// and the values of sensitive query parameters such as apiKey.
func redactRawURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	return redactURL(u)
}

// redactURL is redactRawURL for a parsed URL.
func redactURL(u *url.URL) string {
	c := *u
	if _, ok := c.User.Password(); ok {
		c.User = url.UserPassword(c.User.Username(), "REDACTED")
	}
	if c.RawQuery != "" {
		q := c.Query()
		changed := false
		for k := range q {
			if sensitive[strings.ToLower(k)] {
				q[k] = []string{"REDACTED"}
				changed = true
			}
		}
		if changed {
			c.RawQuery = q.Encode()
		}
	}
	return c.String()
}

// scrubError returns err with the secrets of rawURL (sensitive query values
// and the userinfo password, raw and escaped) removed from its message. When
// something had to be removed the result does not unwrap, since the wrapped
// errors would still print the secrets; otherwise err is returned as is.
// Use it for errors whose message was built by a library from the URL.
func scrubError(err error, rawURL string) error {
	if err == nil {
		return nil
	}
	u, perr := url.Parse(rawURL)
	if perr != nil {
		return err
	}
	var secrets []string
	if p, ok := u.User.Password(); ok && p != "" {
		secrets = append(secrets, p, url.UserPassword("", p).String()[1:])
	}
	for k, vs := range u.Query() {
		if !sensitive[strings.ToLower(k)] {
			continue
		}
		for _, v := range vs {
			if v != "" {
				secrets = append(secrets, v, url.QueryEscape(v), url.PathEscape(v))
			}
		}
	}
	msg := err.Error()
	scrubbed := msg
	for _, s := range secrets {
		scrubbed = strings.ReplaceAll(scrubbed, s, "REDACTED")
	}
	if scrubbed == msg {
		return err
	}
	return errors.New(scrubbed)
}

// cursorPlaces says where a dialer may still put the cursor after a server
// refused a request as too large: 431 (header fields too large) drops the
// Last-Event-ID header, 414 (URI too long) the cursor= parameter, for the
// rest of the subscription.
type cursorPlaces struct {
	noHeader, noQuery bool
}

// refused notes a refusal of the request with status code.
func (p *cursorPlaces) refused(code int) {
	switch code {
	case http.StatusRequestHeaderFieldsTooLarge:
		p.noHeader = true
	case http.StatusRequestURITooLong:
		p.noQuery = true
	}
}
