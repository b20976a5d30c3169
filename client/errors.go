package client

import (
	"errors"
	"fmt"
	"strings"
)

// ErrRestless is the common base of this package's errors: every *APIError and
// every *ParseError matches errors.Is(err, ErrRestless).
var ErrRestless = errors.New("restless")

// Sentinels matched by errors.Is on an *APIError with the corresponding
// HTTP status.
var (
	// ErrUnauthorized matches a 401 answer (missing or wrong API key).
	ErrUnauthorized = errors.New("restless: unauthorized")
	// ErrForbidden matches a 403 answer (the key may not do this).
	ErrForbidden = errors.New("restless: forbidden")
	// ErrNotFound matches a 404 answer.
	ErrNotFound = errors.New("restless: not found")
	// ErrRateLimited matches a 429 answer.
	ErrRateLimited = errors.New("restless: rate limited")
)

// APIError is a non-2xx answer of the REST API. Its text never contains the
// API key.
type APIError struct {
	// StatusCode is the HTTP status of the answer.
	StatusCode int
	// Message is the body's "message" (a string, or an array of strings joined
	// with "; "), else its "error", else the raw body, else the HTTP status text.
	Message string
	// Body is the raw response body (at most 1 MiB of it).
	Body []byte
	// Method and Path name the request that failed (the path has no query).
	Method, Path string
}

func (e *APIError) Error() string {
	var b strings.Builder
	b.WriteString("restless: ")
	if e.Method != "" {
		fmt.Fprintf(&b, "%s %s: ", e.Method, e.Path)
	}
	fmt.Fprintf(&b, "HTTP %d", e.StatusCode)
	if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(e.Message)
	}
	return b.String()
}

// Is reports whether target is ErrRestless or the sentinel of e's status.
func (e *APIError) Is(target error) bool {
	switch target {
	case ErrRestless:
		return true
	case ErrUnauthorized:
		return e.StatusCode == 401
	case ErrForbidden:
		return e.StatusCode == 403
	case ErrNotFound:
		return e.StatusCode == 404
	case ErrRateLimited:
		return e.StatusCode == 429
	}
	return false
}

// ParseError reports a runtime event that could not be decoded: malformed
// JSON, invalid UTF-8, or a well-formed document that is not a valid event.
type ParseError struct {
	// Offset is the byte offset in the input where the problem was found.
	Offset int
	// Field names the envelope field concerned ("type", "meta.status", …);
	// "" for a malformed document.
	Field string
	// Reason says what is wrong.
	Reason string

	syntax bool   // the document itself is not valid JSON
	what   string // what was being parsed; "" = an event
	cause  error  // what Unwrap returns, if anything
}

func (e *ParseError) Error() string {
	what := e.what
	if what == "" {
		what = "parse event"
	}
	if e.Field != "" {
		return fmt.Sprintf("restless: %s: %s: %s (offset %d)", what, e.Field, e.Reason, e.Offset)
	}
	return fmt.Sprintf("restless: %s: %s (offset %d)", what, e.Reason, e.Offset)
}

// Is reports whether target is ErrRestless.
func (e *ParseError) Is(target error) bool { return target == ErrRestless }

// Unwrap returns the cause of the error when there is one, such as
// ErrInvalidEventID for an event id that cannot be a cursor.
func (e *ParseError) Unwrap() error { return e.cause }

// Malformed reports whether the input is not valid JSON (including invalid
// UTF-8), as opposed to valid JSON that is not a valid event.
func (e *ParseError) Malformed() bool { return e.syntax }

func syntaxErr(off int, format string, args ...any) *ParseError {
	return &ParseError{Offset: off, Reason: fmt.Sprintf(format, args...), syntax: true}
}

func fieldErr(off int, field, reason string) *ParseError {
	return &ParseError{Offset: off, Field: field, Reason: reason}
}
