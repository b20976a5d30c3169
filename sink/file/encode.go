package file

import (
	"unicode/utf8"
	"unsafe"

	"github.com/restless-stream/ingest"
)

const hexDigits = "0123456789abcdef"

// encoder builds the lines of one batch. It is not safe for concurrent use.
type encoder struct {
	buf []byte
}

// appendLine appends the JSON line of r, newline included, to dst.
//
// The envelope is written by hand: encoding/json would reflect over a map for
// the headers and re-encode the value, which is both slow and not allowed
// (the value must stay byte for byte apart from whitespace).
func (e *encoder) appendLine(dst []byte, r *ingest.Record) []byte {
	dst = append(dst, `{"destination":`...)
	dst = appendString(dst, r.Dest)
	dst = append(dst, `,"key":`...)
	if r.Key == nil {
		dst = append(dst, "null"...)
	} else {
		dst = appendString(dst, view(r.Key))
	}
	dst = append(dst, `,"headers":{`...)
	first := true
	for i, h := range r.Headers {
		if shadowed(r.Headers, i) {
			continue
		}
		if !first {
			dst = append(dst, ',')
		}
		first = false
		dst = appendString(dst, h.Key)
		dst = append(dst, ':')
		dst = appendString(dst, h.Value)
	}
	dst = append(dst, `},"value":`...)
	dst = e.appendValue(dst, r.Value)
	dst = append(dst, '}', '\n')
	return dst
}

// shadowed reports whether a later header has the same name as hs[i]: a JSON
// object keeps one value per name, and the last one wins.
func shadowed(hs []ingest.Header, i int) bool {
	for j := i + 1; j < len(hs); j++ {
		if hs[j].Key == hs[i].Key {
			return true
		}
	}
	return false
}

// appendValue embeds v unchanged apart from whitespace outside strings when v
// is valid JSON in valid UTF-8, and as a JSON string otherwise.
func (e *encoder) appendValue(dst, v []byte) []byte {
	if utf8.Valid(v) {
		// Pretty-printed values lose their newlines here, which a JSON line
		// cannot contain; nothing is re-escaped or reordered.
		if valid, space := scanJSON(v); valid {
			if space {
				return appendCompact(dst, v)
			}
			return append(dst, v...)
		}
	}
	return appendString(dst, view(v))
}

// appendString appends s as a JSON string. Control characters are escaped,
// invalid UTF-8 becomes U+FFFD (as encoding/json does), everything else is
// copied as is: unlike strconv.Quote this never produces Go-only escapes such
// as \x00 or \U0001F600.
func appendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i++
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// view returns b as a string without copying. The string must not outlive
// the call it is passed to, and b must not change meanwhile: appendString
// only reads it.
func view(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }
