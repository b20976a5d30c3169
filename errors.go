package ingest

import (
	"errors"
	"fmt"
	"strings"
)

// ErrStreamEnded is returned by a source whose server ended the stream for
// good (HTTP 204). It is a clean end, not a failure.
var ErrStreamEnded = errors.New("stream ended by server")

// PermanentError marks a failure that retrying cannot fix. Who returns it,
// and what becomes of it:
//
//   - the sources (source/sse, source/ws, source/direct, through
//     internal/stream) return it from Next for 401, 403, 404, a bad URL or
//     a spent reconnect budget, instead of reconnecting; the pipeline ends
//     the stream's lane with it;
//   - the sinks (sink/nats, sink/kafka) put it in the WriteErrors entry of a
//     record the broker will never take (an unusable subject or topic, a
//     record larger than the broker accepts); the pipeline rejects that
//     record as publish_rejected instead of retrying it. sink/file never
//     returns it: a failed file write may succeed later.
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

// FieldError is what a library Config's Validate returns for one field at
// fault: Field is its Go path inside the Config ("Brokers[1]",
// "Streams[0].Name", "TLS.CAFile"), Err what is wrong with it. Validate joins
// one FieldError per problem with errors.Join, so that a caller (the daemon
// maps each Go path to its YAML key) can report every problem at once.
type FieldError struct {
	Field string
	Err   error
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Err.Error() }
func (e *FieldError) Unwrap() error { return e.Err }

// FieldErrorf returns a *FieldError for field with a formatted message.
func FieldErrorf(field, format string, args ...any) *FieldError {
	return &FieldError{Field: field, Err: fmt.Errorf(format, args...)}
}

// Prefix returns err with prefix (and a dot, or nothing before an index)
// put in front of the Field of every FieldError it holds, for a Config that
// validates a nested Config: Prefix("TLS", tls.Validate()). The result is
// one flat join (Split), however deep the joins in err; other errors are
// kept as they are. A nil err stays nil.
func Prefix(prefix string, err error) error {
	errs := Split(err)
	for i, e := range errs {
		var fe *FieldError
		if errors.As(e, &fe) {
			sep := "."
			if strings.HasPrefix(fe.Field, "[") {
				sep = ""
			}
			errs[i] = &FieldError{Field: prefix + sep + fe.Field, Err: fe.Err}
		}
	}
	return errors.Join(errs...)
}

// Split returns the errors that err joins (errors.Join), taking them out of
// every join within it as well, or err alone; nil for nil. It lists the
// problems a Validate reported, one by one.
func Split(err error) []error {
	j, ok := err.(interface{ Unwrap() []error })
	if !ok {
		if err == nil {
			return nil
		}
		return []error{err}
	}
	var out []error
	for _, e := range j.Unwrap() {
		out = append(out, Split(e)...)
	}
	return out
}
