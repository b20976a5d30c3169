package emulator

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/itchyny/gojq"
)

// jqTimeout bounds one run of a stream's jqFilter on one upstream body.
// gojq checks its context between steps, so a filter that loops for ever
// (until(false; .)) ends with an error event instead of holding the poller.
const jqTimeout = time.Second

// compileJQ compiles a stream's jqFilter with gojq, the jq the emulator
// runs; "" (or blanks) is no filter and gives nil. The program sees no
// environment ($ENV and env are empty) and can load no modules, so it reads
// only the upstream body.
func compileJQ(filter string) (*gojq.Code, error) {
	if strings.TrimSpace(filter) == "" {
		return nil, nil
	}
	q, err := gojq.Parse(filter)
	if err != nil {
		return nil, err
	}
	return gojq.Compile(q)
}

// runJQ runs code on the JSON document doc and returns its result as JSON.
// The filter must give at most one value: none means the poll has nothing
// to publish (ok false, as jq prints nothing), two or more are an error
// (collect them with [ … ] in the filter). A run longer than timeout, and a
// result larger than maxBytes, are errors.
func runJQ(ctx context.Context, code *gojq.Code, doc []byte, timeout time.Duration, maxBytes int64) (out []byte, ok bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber() // keeps integers beyond 2^53 exact
	var in any
	if err := dec.Decode(&in); err != nil {
		return nil, false, fmt.Errorf("jq input: %w", err)
	}
	iter := code.RunWithContext(ctx, in)
	v, ok := iter.Next()
	if !ok {
		return nil, false, nil
	}
	if err := jqError(v, timeout); err != nil {
		return nil, false, err
	}
	if extra, more := iter.Next(); more {
		if err := jqError(extra, timeout); err != nil {
			return nil, false, err
		}
		return nil, false, errors.New("jq filter gave more than one result (wrap it in [ ] to publish them as one array)")
	}
	out, _ = gojq.Marshal(v) // never fails on the values a run gives
	if int64(len(out)) > maxBytes {
		return nil, false, fmt.Errorf("jq result is larger than %d bytes", maxBytes)
	}
	return out, true, nil
}

// jqError returns the error a value of a jq run stands for, if it is one.
func jqError(v any, timeout time.Duration) error {
	err, ok := v.(error)
	if !ok {
		return nil
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("jq filter ran longer than %v", timeout)
	}
	var halt *gojq.HaltError
	if errors.As(err, &halt) && halt.Value() == nil {
		return errors.New("jq filter halted")
	}
	return fmt.Errorf("jq: %w", err)
}
