package client

import "bytes"

// EventIDOf finds the top-level event_id (or eventId) of an event quickly,
// without a full parse or validation; ok is false when the id is absent or
// null, is not an acceptable id (see CheckEventID), or b does not start as
// a JSON object. A number keeps its literal text. Sources use it to track
// their cursor.
func EventIDOf(b []byte) (id string, ok bool) {
	id, ok = eventIDOf(b)
	if !ok || !validID(id) {
		return "", false
	}
	return id, true
}

func eventIDOf(b []byte) (id string, ok bool) {
	i := skipWS(b, 0)
	if i >= len(b) || b[i] != '{' {
		return "", false
	}
	i = skipWS(b, i+1)
	for i < len(b) && b[i] == '"' {
		end, esc := quickString(b, i)
		if end < 0 {
			return "", false
		}
		key := b[i+1 : end-1]
		var kbuf [16]byte
		if esc && len(key) <= 2*len(kbuf) {
			if _, _, err := scanString(b, i); err != nil {
				return "", false
			}
			key = appendUnescaped(kbuf[:0], key)
		}
		i = skipWS(b, end)
		if i >= len(b) || b[i] != ':' {
			return "", false
		}
		i = skipWS(b, i+1)
		if i >= len(b) {
			return "", false
		}
		if k := string(key); k == "event_id" || k == "eventId" {
			return quickScalar(b, i)
		}
		if i = quickSkip(b, i); i < 0 {
			return "", false
		}
		i = skipWS(b, i)
		if i >= len(b) || b[i] != ',' {
			return "", false
		}
		i = skipWS(b, i+1)
	}
	return "", false
}

// quickString returns the index past the string at b[i] == '"' and whether
// it holds escapes, or -1 when it is unterminated. It does not validate.
func quickString(b []byte, i int) (int, bool) {
	end := stringEnd(b, i)
	if end < 0 {
		return -1, false
	}
	return end, bytes.IndexByte(b[i+1:end-1], '\\') >= 0
}

// stringEnd returns the index past the string at b[i] == '"', or -1 when it
// is unterminated. It finds quotes with bytes.IndexByte (vector
// instructions), which long strings such as padding and embedded documents
// reward.
func stringEnd(b []byte, i int) int {
	for j := i + 1; ; {
		k := bytes.IndexByte(b[j:], '"')
		if k < 0 {
			return -1
		}
		q := j + k
		// The quote is escaped when an odd number of backslashes precede it.
		n := 0
		for p := q - 1; p > i && b[p] == '\\'; p-- {
			n++
		}
		if n%2 == 0 {
			return q + 1
		}
		j = q + 1
	}
}

// skipClass sorts the bytes quickSkip stops at: 1 a quote, 2 an opening
// bracket, 3 a closing one, 4 what ends a top-level scalar.
var skipClass = [256]uint8{'"': 1, '{': 2, '[': 2, '}': 3, ']': 3, ',': 4, ' ': 4, '\t': 4, '\n': 4, '\r': 4, ':': 4}

// quickSkip returns the index past the value at b[i], or -1. It does not
// validate.
func quickSkip(b []byte, i int) int {
	depth := 0
	for i < len(b) {
		switch skipClass[b[i]] {
		case 0:
			i++
		case 1:
			// Most strings are short: step over them here, and hand a
			// long one to stringEnd.
			j := i + 1
			for ; j < len(b) && j < i+24; j++ {
				if c := b[j]; c == '"' {
					break
				} else if c == '\\' {
					j++
				}
			}
			switch {
			case j < len(b) && j < i+24 && b[j] == '"':
				i = j + 1
			default:
				if i = stringEnd(b, i); i < 0 {
					return -1
				}
			}
			if depth == 0 {
				return i
			}
		case 2:
			depth++
			i++
		case 3:
			depth--
			i++
			if depth <= 0 {
				return i
			}
		case 4:
			if depth == 0 {
				return i
			}
			i++
		}
	}
	if depth == 0 {
		return i
	}
	return -1
}

// quickScalar reads the string or number at b[i] as an id.
func quickScalar(b []byte, i int) (string, bool) {
	switch c := b[i]; {
	case c == '"':
		end, esc := quickString(b, i)
		if end < 0 {
			return "", false
		}
		s := b[i+1 : end-1]
		if esc {
			if _, _, err := scanString(b, i); err != nil {
				return "", false
			}
			return string(appendUnescaped(nil, s)), true
		}
		return string(s), true
	case c == '-' || ('0' <= c && c <= '9'):
		end, err := scanNumber(b, i)
		if err != nil {
			return "", false
		}
		return string(b[i:end]), true
	}
	return "", false
}
