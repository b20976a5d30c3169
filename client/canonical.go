package client

import (
	"bytes"
	"errors"
	"slices"
	"sync"
	"unicode/utf8"
)

// Canonicalizer appends the form of the raw JSON document raw that is signed
// (PROTOCOL.md §4) to dst. It is the one swappable piece of signing: if the
// service turns out to sign another form, a Verifier takes another
// Canonicalizer (WithCanonicalizer) and nothing else changes.
type Canonicalizer func(dst, raw []byte) ([]byte, error)

// Canonical appends to dst the canonical form of the JSON document raw, as
// PROTOCOL.md §4 defines it: exactly what Python's
// json.dumps(v, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
// writes for the decoded value, except that numbers are copied as received.
//
//   - object keys sorted by code point of the decoded key; no whitespace;
//   - strings decoded (\u00e9 and surrogate pairs become raw UTF-8) and
//     written with \" \\ \b \f \n \r \t, lowercase \u00xx for the other
//     control characters, and everything else raw (including /, <, >, &,
//     DEL, U+2028 and U+2029);
//   - a key that occurs twice keeps its last value, as Python's json.loads
//     does;
//   - a \u escape of a lone surrogate (which Python would keep as a lone
//     code point, and which has no UTF-8 form) is written back as a
//     lowercase \udxxx escape and sorts by its code point.
//
// raw must be valid JSON in valid UTF-8; otherwise dst is returned
// unchanged with a *ParseError. Canonical is the default Canonicalizer.
func Canonical(dst, raw []byte) ([]byte, error) {
	return canonical(dst, raw, false)
}

// canonicalStrict is Canonical that refuses a duplicate key (a *ParseError)
// instead of keeping its last value: what a Verifier signs, so that verified
// data has one reading.
func canonicalStrict(dst, raw []byte) ([]byte, error) {
	return canonical(dst, raw, true)
}

func canonical(dst, raw []byte, strict bool) ([]byte, error) {
	w := canonPool.Get().(*canonWriter)
	defer w.release()
	w.raw, w.strict = raw, strict
	start := len(dst)
	i := skipWS(raw, 0)
	out, n, err := w.value(dst, i, 0)
	if err == nil {
		if n = skipWS(raw, n); n < len(raw) {
			err = syntaxErr(n, "invalid character '%s' after the top-level value", printable(raw[n]))
		}
	}
	if err != nil {
		var pe *ParseError
		if errors.As(err, &pe) {
			pe.what = "canonical JSON"
		}
		return dst[:start], err
	}
	return out, nil
}

var canonPool = sync.Pool{New: func() any { return new(canonWriter) }}

// canonWriter holds the scratch space of one Canonical call, reused through
// canonPool.
type canonWriter struct {
	raw     []byte
	members []member // the members of the objects being written, innermost last
	keys    []byte   // decoded keys of members, referenced by offset
	tmp     []byte   // a decoded string value
	strict  bool     // a duplicate key is an error
}

type member struct {
	kStart, kEnd int // decoded key in keys
	vStart, vEnd int // raw value in raw
}

func (w *canonWriter) release() {
	w.raw = nil
	if cap(w.keys) > 1<<20 || cap(w.tmp) > 1<<20 || cap(w.members) > 1<<14 {
		return // do not keep huge buffers alive
	}
	w.members, w.keys, w.tmp = w.members[:0], w.keys[:0], w.tmp[:0]
	canonPool.Put(w)
}

// value writes the canonical form of the value at raw[i] and returns the
// index past it.
func (w *canonWriter) value(dst []byte, i, depth int) ([]byte, int, error) {
	raw := w.raw
	if i >= len(raw) {
		return dst, i, syntaxErr(i, "unexpected end of input, expected a value")
	}
	switch c := raw[i]; c {
	case '"':
		n, esc, err := scanString(raw, i)
		if err != nil {
			return dst, n, err
		}
		if !esc {
			return append(dst, raw[i:n]...), n, nil
		}
		w.tmp = appendUnescaped(w.tmp[:0], raw[i+1:n-1])
		return appendCanonString(dst, w.tmp), n, nil
	case '{':
		return w.object(dst, i, depth+1)
	case '[':
		return w.array(dst, i, depth+1)
	default:
		n, err := skipValue(raw, i, depth)
		if err != nil {
			return dst, n, err
		}
		return append(dst, raw[i:n]...), n, nil
	}
}

func (w *canonWriter) array(dst []byte, i, depth int) ([]byte, int, error) {
	if depth > maxDepth {
		return dst, i, syntaxErr(i, "nesting deeper than %d", maxDepth)
	}
	raw := w.raw
	dst = append(dst, '[')
	i = skipWS(raw, i+1)
	if i < len(raw) && raw[i] == ']' {
		return append(dst, ']'), i + 1, nil
	}
	for {
		var err error
		if dst, i, err = w.value(dst, i, depth); err != nil {
			return dst, i, err
		}
		i = skipWS(raw, i)
		if i < len(raw) && raw[i] == ',' {
			dst = append(dst, ',')
			i = skipWS(raw, i+1)
			continue
		}
		if i < len(raw) && raw[i] == ']' {
			return append(dst, ']'), i + 1, nil
		}
		return dst, i, expected(raw, i, "',' or ']' after an array element")
	}
}

func (w *canonWriter) object(dst []byte, i, depth int) ([]byte, int, error) {
	if depth > maxDepth {
		return dst, i, syntaxErr(i, "nesting deeper than %d", maxDepth)
	}
	raw := w.raw
	base, kbase := len(w.members), len(w.keys)
	defer func() { w.members, w.keys = w.members[:base], w.keys[:kbase] }()

	// Collect the members (validating each value), then write them sorted.
	i = skipWS(raw, i+1)
	if i < len(raw) && raw[i] == '}' {
		return append(dst, '{', '}'), i + 1, nil
	}
	sorted := true
	for {
		if i >= len(raw) || raw[i] != '"' {
			return dst, i, expected(raw, i, "a string key")
		}
		n, esc, err := scanString(raw, i)
		if err != nil {
			return dst, n, err
		}
		m := member{kStart: len(w.keys)}
		if esc {
			w.keys = appendUnescaped(w.keys, raw[i+1:n-1])
		} else {
			w.keys = append(w.keys, raw[i+1:n-1]...)
		}
		m.kEnd = len(w.keys)
		i = skipWS(raw, n)
		if i >= len(raw) || raw[i] != ':' {
			return dst, i, expected(raw, i, "':' after an object key")
		}
		m.vStart = skipWS(raw, i+1)
		if m.vEnd, err = skipValue(raw, m.vStart, depth); err != nil {
			return dst, m.vEnd, err
		}
		if len(w.members) > base && sorted {
			p := w.members[len(w.members)-1]
			sorted = bytes.Compare(w.keys[p.kStart:p.kEnd], w.keys[m.kStart:m.kEnd]) < 0
		}
		w.members = append(w.members, m)
		i = skipWS(raw, m.vEnd)
		if i < len(raw) && raw[i] == ',' {
			i = skipWS(raw, i+1)
			continue
		}
		if i < len(raw) && raw[i] == '}' {
			i++
			break
		}
		return dst, i, expected(raw, i, "',' or '}' after an object value")
	}
	if !sorted {
		keys := w.keys
		slices.SortStableFunc(w.members[base:], func(a, b member) int {
			return bytes.Compare(keys[a.kStart:a.kEnd], keys[b.kStart:b.kEnd])
		})
	}

	dst = append(dst, '{')
	first := true
	for k := base; k < len(w.members); k++ {
		m := w.members[k]
		if k+1 < len(w.members) {
			// A duplicated key keeps its last value.
			next := w.members[k+1]
			if bytes.Equal(w.keys[m.kStart:m.kEnd], w.keys[next.kStart:next.kEnd]) {
				if w.strict {
					return dst, i, &ParseError{Offset: max(m.vStart, next.vStart), Reason: "duplicate key " + quoteKey(w.keys[m.kStart:m.kEnd])}
				}
				continue
			}
		}
		if !first {
			dst = append(dst, ',')
		}
		first = false
		dst = appendCanonString(dst, w.keys[m.kStart:m.kEnd])
		dst = append(dst, ':')
		var err error
		if dst, _, err = w.value(dst, m.vStart, depth); err != nil {
			return dst, i, err // cannot happen: the value was validated
		}
	}
	return append(dst, '}'), i, nil
}

// appendCanonString writes the decoded string s as a canonical JSON string.
// s is valid UTF-8 except for WTF-8 lone surrogates (see appendUnescaped).
func appendCanonString(dst, s []byte) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c != 0xED {
			i++
			continue
		}
		if c == 0xED {
			if r, size := utf8.DecodeRune(s[i:]); r != utf8.RuneError || size != 1 {
				i += size
				continue
			}
			// a lone surrogate: ED A0..BF xx
			dst = append(dst, s[start:i]...)
			r := rune(c&0x0F)<<12 | rune(s[i+1]&0x3F)<<6 | rune(s[i+2]&0x3F)
			dst = append(dst, '\\', 'u', hex[r>>12], hex[r>>8&15], hex[r>>4&15], hex[r&15])
			i += 3
			start = i
			continue
		}
		dst = append(dst, s[start:i]...)
		switch c {
		case '"', '\\':
			dst = append(dst, '\\', c)
		case '\b':
			dst = append(dst, '\\', 'b')
		case '\f':
			dst = append(dst, '\\', 'f')
		case '\n':
			dst = append(dst, '\\', 'n')
		case '\r':
			dst = append(dst, '\\', 'r')
		case '\t':
			dst = append(dst, '\\', 't')
		default:
			dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&15])
		}
		i++
		start = i
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
