package emulator

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// jqStep is one step of the jq path subset the emulator evaluates:
// ".", ".a.b", ".a[0]", `.["a b"]`, ".items[-1]".
type jqStep struct {
	key   string
	index int
	isIdx bool
}

// parseJQ parses a jq filter of the supported subset (path expressions only).
func parseJQ(f string) ([]jqStep, error) {
	f = strings.TrimSpace(f)
	if f == "" || f == "." {
		return nil, nil
	}
	if f[0] != '.' {
		return nil, errors.New("must be a jq path expression starting with '.' (the emulator supports .a.b[0] and .[\"key\"] paths only)")
	}
	var steps []jqStep
	i := 0
	for i < len(f) {
		switch {
		case f[i] == '.' && i+1 < len(f) && f[i+1] == '[':
			i++
		case f[i] == '.':
			j := i + 1
			for j < len(f) && (f[j] == '_' || f[j] >= 'a' && f[j] <= 'z' || f[j] >= 'A' && f[j] <= 'Z' || (j > i+1 && f[j] >= '0' && f[j] <= '9')) {
				j++
			}
			if j == i+1 {
				return nil, fmt.Errorf("has an empty or unsupported name at offset %d (the emulator supports .a.b[0] and .[\"key\"] paths only)", i)
			}
			steps = append(steps, jqStep{key: f[i+1 : j]})
			i = j
		case f[i] == '[':
			j := strings.IndexByte(f[i:], ']')
			if j < 0 {
				return nil, fmt.Errorf("has an unclosed '[' at offset %d", i)
			}
			inner := f[i+1 : i+j]
			if strings.HasPrefix(inner, `"`) {
				var k string
				if err := json.Unmarshal([]byte(inner), &k); err != nil {
					return nil, fmt.Errorf("has a bad quoted key at offset %d", i)
				}
				steps = append(steps, jqStep{key: k})
			} else {
				n, err := strconv.Atoi(inner)
				if err != nil {
					return nil, fmt.Errorf("has a bad array index %q (the emulator supports .a.b[0] and .[\"key\"] paths only)", inner)
				}
				steps = append(steps, jqStep{index: n, isIdx: true})
			}
			i += j + 1
		default:
			return nil, fmt.Errorf("has an unsupported character %q at offset %d (the emulator supports .a.b[0] and .[\"key\"] paths only)", f[i], i)
		}
	}
	return steps, nil
}

// applyJQ evaluates steps on doc with jq's semantics for paths: a missing
// member or index is null; indexing a value of the wrong type is an error.
func applyJQ(steps []jqStep, doc []byte) ([]byte, error) {
	if len(steps) == 0 {
		return doc, nil
	}
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	for _, s := range steps {
		switch t := v.(type) {
		case nil:
		case map[string]any:
			if s.isIdx {
				return nil, fmt.Errorf("jq: cannot index object with number")
			}
			v = t[s.key]
		case []any:
			if !s.isIdx {
				return nil, fmt.Errorf("jq: cannot index array with %q", s.key)
			}
			i := s.index
			if i < 0 {
				i += len(t)
			}
			if i < 0 || i >= len(t) {
				v = nil
			} else {
				v = t[i]
			}
		default:
			return nil, fmt.Errorf("jq: cannot index %T", t)
		}
	}
	return json.Marshal(v)
}
