// Package fielderr takes apart what a library Config's Validate returns:
// *ingest.FieldErrors joined with errors.Join, possibly nested (a Config
// that validates a nested Config) and wrapped ("kafka: %w").
package fielderr

import (
	"errors"

	"github.com/restless-stream/ingest"
)

// Split returns the *ingest.FieldErrors held in err, at any depth, in
// order, and the errors that are not FieldErrors. A wrapper around nothing
// but FieldErrors (a prefix such as "kafka: ") is dropped: the field names
// the place already. A nil err gives nothing.
func Split(err error) (fields []*ingest.FieldError, others []error) {
	switch e := err.(type) {
	case nil:
		return nil, nil
	case *ingest.FieldError:
		return []*ingest.FieldError{e}, nil
	case interface{ Unwrap() []error }:
		for _, inner := range e.Unwrap() {
			f, o := Split(inner)
			fields, others = append(fields, f...), append(others, o...)
		}
		return fields, others
	}
	if inner := errors.Unwrap(err); inner != nil {
		if f, o := Split(inner); len(f) > 0 && len(o) == 0 {
			return f, nil
		}
	}
	return nil, []error{err}
}

// Fields lists the Field of each FieldError that Split finds in err, and
// the other errors.
func Fields(err error) (fields []string, others []error) {
	fes, others := Split(err)
	for _, fe := range fes {
		fields = append(fields, fe.Field)
	}
	return fields, others
}
