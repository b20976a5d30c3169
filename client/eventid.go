package client

// EventIDOf finds the top-level event_id (or eventId) of an event quickly,
// without a full parse or validation; ok is false when the id is absent or
// null, or b does not start as a JSON object. A number keeps its literal
// text. Sources use it to track their cursor.
func EventIDOf(b []byte) (id string, ok bool) {
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

// quickString returns the index past the string at b[i] == '"' (-1 when it
// is unterminated) and whether it holds escapes. It does not validate.
func quickString(b []byte, i int) (int, bool) {
	esc := false
	for i++; i < len(b); i++ {
		for i+8 <= len(b) {
			x := leUint64(b[i:])
			if hasZeroByte(x^(lo8*'"')) || hasZeroByte(x^(lo8*'\\')) {
				break
			}
			i += 8
		}
		if i >= len(b) {
			break
		}
		switch b[i] {
		case '\\':
			esc = true
			i++
		case '"':
			return i + 1, esc
		}
	}
	return -1, esc
}

// quickSkip returns the index past the value at b[i], or -1. It does not
// validate.
func quickSkip(b []byte, i int) int {
	depth := 0
	for i < len(b) {
		if depth > 0 {
			// Inside a container only quotes and brackets matter.
			for i+8 <= len(b) {
				x := leUint64(b[i:])
				y := x &^ (lo8 * 0x20) // '{' → '[', '}' → ']'
				if hasZeroByte(x^(lo8*'"')) || hasZeroByte(y^(lo8*'[')) || hasZeroByte(y^(lo8*']')) {
					break
				}
				i += 8
			}
			if i >= len(b) {
				break
			}
		}
		switch b[i] {
		case '"':
			end, _ := quickString(b, i)
			if end < 0 {
				return -1
			}
			i = end
			if depth == 0 {
				return i
			}
			continue
		case '{', '[':
			depth++
		case '}', ']':
			depth--
			if depth <= 0 {
				return i + 1
			}
		case ',', ' ', '\t', '\n', '\r', ':':
			if depth == 0 {
				return i
			}
		}
		i++
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
