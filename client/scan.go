package client

import (
	"encoding/binary"
	"unicode/utf8"
)

// This file holds the validating JSON scanner shared by DecodeEvent,
// Canonical and IsCanonical. Every function takes the whole input and an
// index, returns the index just past what it scanned, and never allocates
// except to build an error.

// maxDepth bounds nesting, so that hostile input cannot exhaust the stack
// or make a document that other readers choke on: 512 levels, the envelope
// counting as one.
const maxDepth = 512

// skipWS returns the index of the first byte at or after i that is not JSON
// whitespace.
func skipWS(b []byte, i int) int {
	for i < len(b) {
		switch b[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

const (
	lo8 = 0x0101010101010101
	hi8 = 0x8080808080808080
)

// plain8 reports whether none of the 8 bytes of x needs attention inside a
// string: no control character, quote, backslash or non-ASCII byte.
func plain8(x uint64) bool {
	q := x ^ (lo8 * '"')
	s := x ^ (lo8 * '\\')
	m := ((x - lo8*0x20) & ^x) | ((q - lo8) & ^q) | ((s - lo8) & ^s) | x
	return m&hi8 == 0
}

// scanString validates the string starting at b[i] == '"'. It returns the
// index past the closing quote and whether the string holds any escape.
func scanString(b []byte, i int) (int, bool, error) {
	start := i
	i++
	escaped := false
	for {
		for i+8 <= len(b) && plain8(binary.LittleEndian.Uint64(b[i:])) {
			i += 8
		}
		if i >= len(b) {
			return i, escaped, syntaxErr(start, "unterminated string")
		}
		c := b[i]
		switch {
		case c == '"':
			return i + 1, escaped, nil
		case c == '\\':
			escaped = true
			n, err := scanEscape(b, i)
			if err != nil {
				return n, escaped, err
			}
			i = n
		case c < 0x20:
			return i, escaped, syntaxErr(i, "control character 0x%02x in string", c)
		case c < utf8.RuneSelf:
			i++
		default:
			r, size := utf8.DecodeRune(b[i:])
			if r == utf8.RuneError && size == 1 {
				return i, escaped, syntaxErr(i, "invalid UTF-8 in string")
			}
			i += size
		}
	}
}

// scanEscape validates the escape at b[i] == '\\' and returns the index past it.
func scanEscape(b []byte, i int) (int, error) {
	if i+1 >= len(b) {
		return i, syntaxErr(i, "unterminated string")
	}
	switch b[i+1] {
	case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
		return i + 2, nil
	case 'u':
		if i+6 > len(b) {
			return i, syntaxErr(i, "unterminated string")
		}
		for _, h := range b[i+2 : i+6] {
			if hexVal(h) < 0 {
				return i, syntaxErr(i, "invalid \\u escape: %q is not a hex digit", h)
			}
		}
		return i + 6, nil
	default:
		return i, syntaxErr(i, "invalid escape \\%s in string", printable(b[i+1]))
	}
}

func hexVal(c byte) int {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0')
	case 'a' <= c && c <= 'f':
		return int(c-'a') + 10
	case 'A' <= c && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}

// printable renders a byte for an error message.
func printable(c byte) string {
	if c >= 0x20 && c < 0x7f {
		return string(rune(c))
	}
	const hex = "0123456789abcdef"
	return "x" + string([]byte{hex[c>>4], hex[c&15]})
}

// scanNumber validates the number starting at b[i] (a '-' or a digit) and
// returns the index past it.
func scanNumber(b []byte, i int) (int, error) {
	start := i
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i >= len(b):
		return i, syntaxErr(start, "number has no digits")
	case b[i] == '0':
		i++
	case '1' <= b[i] && b[i] <= '9':
		i++
		for i < len(b) && '0' <= b[i] && b[i] <= '9' {
			i++
		}
	default:
		return i, syntaxErr(start, "number has no digits")
	}
	if i < len(b) && b[i] == '.' {
		i++
		d := i
		for i < len(b) && '0' <= b[i] && b[i] <= '9' {
			i++
		}
		if i == d {
			return i, syntaxErr(start, "number has no digits after the decimal point")
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		d := i
		for i < len(b) && '0' <= b[i] && b[i] <= '9' {
			i++
		}
		if i == d {
			return i, syntaxErr(start, "number has no digits in its exponent")
		}
	}
	return i, nil
}

// scanLiteral checks that b[i:] starts with lit (true, false or null).
func scanLiteral(b []byte, i int, lit string) (int, error) {
	if len(b)-i >= len(lit) && string(b[i:i+len(lit)]) == lit {
		return i + len(lit), nil
	}
	return i, syntaxErr(i, "invalid literal, expected %s", lit)
}

// skipValue validates the value starting at b[i] (whitespace already
// skipped) and returns the index past it. depth is the nesting depth of the
// containers around it. It walks nested containers in one loop, keeping
// the open brackets on a small stack, because this is where DecodeEvent
// spends its time (the event's data).
func skipValue(b []byte, i, depth int) (int, error) {
	return skipValueKeys(b, i, depth, nil)
}

// skipValueKeys is skipValue that, with ks not nil, also refuses a key that
// occurs twice in one object (compared after unescaping).
func skipValueKeys(b []byte, i, depth int, ks *keySet) (int, error) {
	var arr [32]byte
	open := arr[:0] // '{' or '[' of each open container
	var err error
	for {
		// A value starts at b[i].
		if i >= len(b) {
			return i, syntaxErr(i, "unexpected end of input, expected a value")
		}
		switch c := b[i]; c {
		case '"':
			if i, _, err = scanString(b, i); err != nil {
				return i, err
			}
		case '{', '[':
			if depth+len(open)+1 > maxDepth {
				return i, syntaxErr(i, "nesting deeper than %d", maxDepth)
			}
			i = skipWS(b, i+1)
			if i < len(b) && b[i] == c+2 { // '}' or ']'
				i++
				break
			}
			open = append(open, c)
			if c == '{' {
				if ks != nil {
					ks.push()
				}
				if i, err = objectKey(b, i, ks); err != nil {
					return i, err
				}
			}
			continue
		case 't':
			if i, err = scanLiteral(b, i, "true"); err != nil {
				return i, err
			}
		case 'f':
			if i, err = scanLiteral(b, i, "false"); err != nil {
				return i, err
			}
		case 'n':
			if i, err = scanLiteral(b, i, "null"); err != nil {
				return i, err
			}
		default:
			if c != '-' && (c < '0' || c > '9') {
				return i, syntaxErr(i, "invalid character '%s' looking for the beginning of a value", printable(c))
			}
			if i, err = scanNumber(b, i); err != nil {
				return i, err
			}
		}
		// A value ended at b[i]: close containers until one continues.
		for {
			if len(open) == 0 {
				return i, nil
			}
			i = skipWS(b, i)
			top := open[len(open)-1]
			if i < len(b) && b[i] == ',' {
				i = skipWS(b, i+1)
				if top == '{' {
					if i, err = objectKey(b, i, ks); err != nil {
						return i, err
					}
				}
				break
			}
			if i < len(b) && b[i] == top+2 {
				i++
				open = open[:len(open)-1]
				if top == '{' && ks != nil {
					if at := ks.pop(b); at >= 0 {
						return i, dupErr(b, at)
					}
				}
				continue
			}
			if top == '{' {
				return i, expected(b, i, "',' or '}' after an object value")
			}
			return i, expected(b, i, "',' or ']' after an array element")
		}
	}
}

// objectKey validates an object key and its colon at b[i] and returns the
// index of the value (whitespace skipped). With ks it records the key in
// the innermost open object and refuses a duplicate.
func objectKey(b []byte, i int, ks *keySet) (int, error) {
	if i >= len(b) || b[i] != '"' {
		return i, expected(b, i, "a string key")
	}
	n, esc, err := scanString(b, i)
	if err != nil {
		return n, err
	}
	if ks != nil {
		if at := ks.add(b, i+1, n-1, esc); at >= 0 {
			return i, dupErr(b, i+1)
		}
	}
	i = skipWS(b, n)
	if i >= len(b) || b[i] != ':' {
		return i, expected(b, i, "':' after an object key")
	}
	return skipWS(b, i+1), nil
}

// expected builds the error for a missing piece of syntax at b[i].
func expected(b []byte, i int, what string) error {
	if i >= len(b) {
		return syntaxErr(i, "unexpected end of input, expected %s", what)
	}
	return syntaxErr(i, "invalid character '%s', expected %s", printable(b[i]), what)
}

// appendUnescaped appends the decoded content of the string literal s (the
// bytes between the quotes, already validated) to dst. A \u escape that is a
// lone surrogate is written in WTF-8 (a 3-byte sequence that is not valid
// UTF-8): it keeps code point order under byte comparison, and the
// canonical writer turns it back into a \u escape.
func appendUnescaped(dst, s []byte) []byte {
	for i := 0; i < len(s); {
		c := s[i]
		if c != '\\' {
			j := i + 1
			for j < len(s) && s[j] != '\\' {
				j++
			}
			dst = append(dst, s[i:j]...)
			i = j
			continue
		}
		switch s[i+1] {
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'u':
			r := hex4(s[i+2:])
			i += 6
			if r >= 0xD800 && r < 0xDC00 && i+6 <= len(s) && s[i] == '\\' && s[i+1] == 'u' {
				if r2 := hex4(s[i+2:]); r2 >= 0xDC00 && r2 < 0xE000 {
					dst = utf8.AppendRune(dst, (r-0xD800)<<10+(r2-0xDC00)+0x10000)
					i += 6
					continue
				}
			}
			if r >= 0xD800 && r < 0xE000 {
				dst = append(dst, 0xE0|byte(r>>12), 0x80|byte(r>>6)&0x3F, 0x80|byte(r)&0x3F)
			} else {
				dst = utf8.AppendRune(dst, r)
			}
			continue
		default: // '"', '\\', '/'
			dst = append(dst, s[i+1])
		}
		i += 2
	}
	return dst
}

func hex4(s []byte) rune {
	return rune(hexVal(s[0])<<12 | hexVal(s[1])<<8 | hexVal(s[2])<<4 | hexVal(s[3]))
}

func leUint64(b []byte) uint64 { return binary.LittleEndian.Uint64(b) }
