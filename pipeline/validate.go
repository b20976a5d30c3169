package pipeline

import (
	"errors"
	"fmt"
	"time"

	"github.com/restless-stream/ingest"
	"github.com/restless-stream/ingest/checkpoint"
	"github.com/restless-stream/ingest/client"
)

// Validate reports everything wrong with c, without changing it: nil, or
// one *ingest.FieldError per problem joined with errors.Join, each naming
// its field by its Go path inside Config ("Streams[2].Name",
// "Batch.MaxEvents"). Zero values are valid: they stand for the defaults
// documented on each field. New calls Validate.
func (c Config) Validate() error {
	var errs []error
	if len(c.Streams) == 0 && !c.KeepRunning {
		errs = append(errs, ingest.FieldErrorf("Streams", "at least one stream is required"))
	}
	first := make(map[string]int, len(c.Streams))
	for i, s := range c.Streams {
		at := fmt.Sprintf("Streams[%d]", i)
		errs = append(errs, ingest.Prefix(at, s.Validate()))
		if s.Name == "" {
			continue
		}
		if j, dup := first[s.Name]; dup {
			errs = append(errs, ingest.FieldErrorf(at+".Name", "%q duplicates the name of Streams[%d]", s.Name, j))
		} else {
			first[s.Name] = i
		}
	}
	errs = append(errs,
		ingest.Prefix("Dedupe", c.Dedupe.Validate()),
		ingest.Prefix("Batch", c.Batch.Validate()))
	errs = append(errs,
		checkDuration("CheckpointInterval", c.CheckpointInterval),
		checkCount("Buffer", c.Buffer, MaxBatchEvents))
	return flatten(errs)
}

// Validate reports everything wrong with s, as Config.Validate does, with
// paths inside StreamConfig ("Name", "VerifyMode").
func (s StreamConfig) Validate() error {
	var errs []error
	if s.Name == "" {
		errs = append(errs, ingest.FieldErrorf("Name", "required"))
	} else if err := checkpoint.ValidateStream(s.Name); err != nil {
		errs = append(errs, &ingest.FieldError{Field: "Name", Err: err})
	}
	if s.Open == nil {
		errs = append(errs, ingest.FieldErrorf("Open", "required: the function that opens the stream's source"))
	}
	switch s.VerifyMode {
	case "", VerifyOff:
	case VerifyRequire, VerifyOptional:
		if s.Verifier == nil {
			errs = append(errs, ingest.FieldErrorf("VerifyMode", "%q needs a Verifier (the stream's HMAC secrets)", s.VerifyMode))
		}
	default:
		errs = append(errs, ingest.FieldErrorf("VerifyMode", "%q is not one of %s, %s, %s", s.VerifyMode, VerifyRequire, VerifyOptional, VerifyOff))
	}
	switch s.KeyMode {
	case "", KeyStream, KeyEventID, KeyNone:
	default:
		errs = append(errs, ingest.FieldErrorf("KeyMode", "%q is not one of %s, %s, %s", s.KeyMode, KeyStream, KeyEventID, KeyNone))
	}
	if s.MaxEventBytes < 0 {
		errs = append(errs, ingest.FieldErrorf("MaxEventBytes", "%d is negative", s.MaxEventBytes))
	}
	if s.Materialize != "" {
		dest := s.Destination
		if dest == "" {
			dest = "restless." + s.Name
		}
		if s.Materialize == dest {
			errs = append(errs, ingest.FieldErrorf("Materialize", "%q is the stream's own destination: the documents need a destination of their own", s.Materialize))
		}
		if s.MaxEventBytes > checkpoint.MaxDocumentBytes {
			errs = append(errs, ingest.FieldErrorf("MaxEventBytes", "%d is more than %d, the largest document a checkpoint holds (with Materialize)", s.MaxEventBytes, checkpoint.MaxDocumentBytes))
		}
	}
	return flatten(errs)
}

// Validate reports everything wrong with d, with paths inside DedupeConfig.
func (d DedupeConfig) Validate() error {
	return flatten([]error{checkCount("Size", d.Size, MaxDedupeSize), checkDuration("TTL", d.TTL)})
}

// Validate reports everything wrong with b, with paths inside BatchConfig.
func (b BatchConfig) Validate() error {
	return flatten([]error{checkCount("MaxEvents", b.MaxEvents, MaxBatchEvents), checkDuration("MaxWait", b.MaxWait)})
}

// checkCount checks a count whose zero means its default.
func checkCount(field string, n, most int) error {
	switch {
	case n < 0:
		return ingest.FieldErrorf(field, "%d is negative", n)
	case n > most:
		return ingest.FieldErrorf(field, "%d is more than %d", n, most)
	}
	return nil
}

// checkDuration checks a duration whose zero means its default.
func checkDuration(field string, d time.Duration) error {
	if d < 0 {
		return ingest.FieldErrorf(field, "%v is negative", d)
	}
	return nil
}

// flatten joins errs into one flat list of field errors (nil when there
// is none), taking the errors out of the joins among them.
func flatten(errs []error) error {
	return errors.Join(ingest.Split(errors.Join(errs...))...)
}

// withDefaults returns a copy of c, which Validate accepted, with every
// zero value replaced by its default.
func (c Config) withDefaults() Config {
	if c.Dedupe.Size == 0 {
		c.Dedupe.Size = DefaultDedupeSize
	}
	if c.Dedupe.TTL == 0 {
		c.Dedupe.TTL = DefaultDedupeTTL
	}
	if c.Batch.MaxEvents == 0 {
		c.Batch.MaxEvents = DefaultBatchMaxEvents
	}
	if c.Batch.MaxWait == 0 {
		c.Batch.MaxWait = DefaultBatchMaxWait
	}
	if c.Retry.Initial <= 0 {
		c.Retry.Initial = DefaultRetryInitial
	}
	if c.Retry.Max <= 0 {
		c.Retry.Max = DefaultRetryMax
	}
	c.Retry.MaxAttempts = 0
	if c.Buffer == 0 {
		c.Buffer = c.Batch.MaxEvents
	}
	streams := make([]StreamConfig, len(c.Streams))
	for i, s := range c.Streams {
		streams[i] = s.withDefaults()
	}
	c.Streams = streams
	return c
}

// withDefaults returns a copy of s, which Validate accepted, with every
// zero value replaced by its default.
func (s StreamConfig) withDefaults() StreamConfig {
	if s.Destination == "" {
		s.Destination = client.DefaultDestination(s.Name)
	}
	if s.VerifyMode == "" {
		s.VerifyMode = VerifyOff
		if s.Verifier != nil {
			s.VerifyMode = VerifyRequire
		}
	}
	if s.KeyMode == "" {
		s.KeyMode = KeyStream
	}
	if s.MaxEventBytes == 0 {
		s.MaxEventBytes = DefaultMaxEventBytes
	}
	return s
}
