package ingest

import (
	"errors"
	"fmt"
	"strings"
)

// ErrStreamEnded is returned by a source whose server ended the stream for
// good (HTTP 204). It is a clean end, not a failure.
var ErrStreamEnded = errors.New("stream ended by server")

// PermanentError marks a failure that retrying cannot fix (401, 403, 404, a bad
// URL). A source returns it instead of reconnecting.
type PermanentError struct {
	Err error
}

func (e *PermanentError) Error() string { return e.Err.Error() }
func (e *PermanentError) Unwrap() error { return e.Err }

// IsPermanent reports whether err is, or wraps, a PermanentError.
func IsPermanent(err error) bool {
	var p *PermanentError
	return errors.As(err, &p)
}

// WriteErrors reports which records of a batch a sink failed to write. It is
// index-aligned with the batch: WriteErrors[i] is nil when record i was
// acknowledged by the broker.
type WriteErrors []error

// Count returns the number of failed records.
func (e WriteErrors) Count() int {
	n := 0
	for _, err := range e {
		if err != nil {
			n++
		}
	}
	return n
}

func (e WriteErrors) Error() string {
	n := e.Count()
	var first error
	for _, err := range e {
		if err != nil {
			first = err
			break
		}
	}
	if first == nil {
		return "write: no errors"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "write: %d of %d records failed", n, len(e))
	fmt.Fprintf(&b, " (first: %v)", first)
	return b.String()
}
