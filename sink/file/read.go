package file

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
)

// Line is one decoded line of a file written by the sink.
type Line struct {
	Destination string
	// Key is nil when the record had no key (null in the file).
	Key     *string
	Headers map[string]string
	// Value is the value as written: the event JSON, or a JSON string when
	// the record's bytes were not JSON.
	Value json.RawMessage
}

// ParseLine decodes one line (without its newline). It fails when the line is
// not a JSON object with a string "destination", a string or null "key", an
// object of strings "headers" and a "value".
func ParseLine(b []byte) (Line, error) {
	var raw struct {
		Destination *string           `json:"destination"`
		Key         *string           `json:"key"`
		Headers     map[string]string `json:"headers"`
		Value       json.RawMessage   `json:"value"`
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&raw); err != nil {
		return Line{}, fmt.Errorf("file: line: %w", err)
	}
	if dec.More() {
		return Line{}, errors.New("file: line: data after the JSON object")
	}
	if _, err := dec.Token(); err != io.EOF {
		return Line{}, errors.New("file: line: data after the JSON object")
	}
	switch {
	case raw.Destination == nil:
		return Line{}, errors.New(`file: line: "destination" missing`)
	case raw.Value == nil:
		return Line{}, errors.New(`file: line: "value" missing`)
	case raw.Headers == nil:
		return Line{}, errors.New(`file: line: "headers" missing`)
	}
	return Line{Destination: *raw.Destination, Key: raw.Key, Headers: raw.Headers, Value: raw.Value}, nil
}

// ReadFile reads every line of a file written by the sink, in order. Torn
// lines left by a crash are skipped: a last line without its newline, and a
// line that does not parse (New ends a torn line with a newline before it
// appends more). torn is the number of lines skipped.
func ReadFile(path string) (lines []Line, torn int, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, fmt.Errorf("file: %w", err)
	}
	defer f.Close()
	return Read(f)
}

// Read is ReadFile over any reader.
func Read(r io.Reader) (lines []Line, torn int, err error) {
	br := bufio.NewReader(r)
	for {
		b, err := br.ReadBytes('\n')
		if err == io.EOF {
			if len(b) > 0 {
				torn++
			}
			return lines, torn, nil
		}
		if err != nil {
			return lines, torn, fmt.Errorf("file: read: %w", err)
		}
		l, perr := ParseLine(b[:len(b)-1])
		if perr != nil {
			torn++
			continue
		}
		lines = append(lines, l)
	}
}
