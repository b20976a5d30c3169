package client

import (
	"bytes"
	"unicode/utf8"
)

// IsCanonical reports whether raw is valid JSON already in the form Canonical
// writes, so that it can be signed as is. It allocates nothing (except for
// comparing keys longer than 64 bytes that contain escapes).
func IsCanonical(raw []byte) bool {
	n, ok := canonValue(raw, 0, 0)
	return ok && n == len(raw)
}

// canonValue checks the value at raw[i] and returns the index past it.
func canonValue(raw []byte, i, depth int) (int, bool) {
	if i >= len(raw) {
		return i, false
	}
	switch c := raw[i]; c {
	case '"':
		n, _, ok := canonString(raw, i)
		return n, ok
	case '{':
		return canonObject(raw, i, depth+1)
	case '[':
		return canonArray(raw, i, depth+1)
	case 't':
		n, err := scanLiteral(raw, i, "true")
		return n, err == nil
	case 'f':
		n, err := scanLiteral(raw, i, "false")
		return n, err == nil
	case 'n':
		n, err := scanLiteral(raw, i, "null")
		return n, err == nil
	default:
		n, err := scanNumber(raw, i)
		return n, err == nil
	}
}

func canonArray(raw []byte, i, depth int) (int, bool) {
	if depth > maxDepth {
		return i, false
	}
	i++
	if i < len(raw) && raw[i] == ']' {
		return i + 1, true
	}
	for {
		n, ok := canonValue(raw, i, depth)
		if !ok || n >= len(raw) {
			return n, false
		}
		switch raw[n] {
		case ',':
			i = n + 1
		case ']':
			return n + 1, true
		default:
			return n, false
		}
	}
}

func canonObject(raw []byte, i, depth int) (int, bool) {
	if depth > maxDepth {
		return i, false
	}
	i++
	if i < len(raw) && raw[i] == '}' {
		return i + 1, true
	}
	var prev []byte
	prevEsc := false
	for {
		if i >= len(raw) || raw[i] != '"' {
			return i, false
		}
		n, esc, ok := canonString(raw, i)
		if !ok {
			return n, false
		}
		key := raw[i+1 : n-1]
		if prev != nil && compareKeys(prev, prevEsc, key, esc) >= 0 {
			return n, false
		}
		prev, prevEsc = key, esc
		if n >= len(raw) || raw[n] != ':' {
			return n, false
		}
		if n, ok = canonValue(raw, n+1, depth); !ok || n >= len(raw) {
			return n, false
		}
		switch raw[n] {
		case ',':
			i = n + 1
		case '}':
			return n + 1, true
		default:
			return n, false
		}
	}
}

// compareKeys compares two raw keys (the bytes between the quotes) by their
// decoded text.
func compareKeys(a []byte, aEsc bool, b []byte, bEsc bool) int {
	if !aEsc && !bEsc {
		return bytes.Compare(a, b)
	}
	var abuf, bbuf [64]byte
	if aEsc {
		a = appendUnescaped(abuf[:0], a)
	}
	if bEsc {
		b = appendUnescaped(bbuf[:0], b)
	}
	return bytes.Compare(a, b)
}

// canonString checks that the string at raw[i] is valid and written exactly
// as appendCanonString writes it. It returns the index past it and whether
// it holds escapes.
func canonString(raw []byte, i int) (int, bool, bool) {
	esc := false
	for i++; ; {
		for i+8 <= len(raw) && plain8(leUint64(raw[i:])) {
			i += 8
		}
		if i >= len(raw) {
			return i, esc, false
		}
		c := raw[i]
		switch {
		case c == '"':
			return i + 1, esc, true
		case c < 0x20:
			return i, esc, false
		case c < utf8.RuneSelf && c != '\\':
			i++
		case c == '\\':
			esc = true
			n, ok := canonEscape(raw, i)
			if !ok {
				return n, esc, false
			}
			i = n
		default:
			r, size := utf8.DecodeRune(raw[i:])
			if r == utf8.RuneError && size == 1 {
				return i, esc, false
			}
			i += size
		}
	}
}

// canonEscape checks that the escape at raw[i] is one the canonical writer
// produces: a short escape, \u00xx (lowercase) for a control character
// without a short form, or \udxxx (lowercase) for a lone surrogate.
func canonEscape(raw []byte, i int) (int, bool) {
	if i+1 >= len(raw) {
		return i, false
	}
	switch raw[i+1] {
	case '"', '\\', 'b', 'f', 'n', 'r', 't':
		return i + 2, true
	case 'u':
	default:
		return i, false
	}
	if i+6 > len(raw) {
		return i, false
	}
	for _, h := range raw[i+2 : i+6] {
		if !('0' <= h && h <= '9' || 'a' <= h && h <= 'f') {
			return i, false
		}
	}
	r := hex4(raw[i+2:])
	switch {
	case r < 0x20:
		return i + 6, r != '\b' && r != '\f' && r != '\n' && r != '\r' && r != '\t'
	case r >= 0xD800 && r < 0xDC00:
		// lone only if no low-surrogate escape follows
		if i+12 <= len(raw) && raw[i+6] == '\\' && raw[i+7] == 'u' {
			if hexVal(raw[i+8]) >= 0 && hexVal(raw[i+9]) >= 0 && hexVal(raw[i+10]) >= 0 && hexVal(raw[i+11]) >= 0 {
				if r2 := hex4(raw[i+8:]); r2 >= 0xDC00 && r2 < 0xE000 {
					return i, false
				}
			}
		}
		return i + 6, true
	case r >= 0xDC00 && r < 0xE000:
		// a low surrogate right after a high one would have been a pair;
		// canonEscape already refused that high one, so this one is lone.
		return i + 6, true
	}
	return i, false
}
