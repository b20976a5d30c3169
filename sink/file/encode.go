package file

import (
	"bytes"
	"unicode/utf8"
	"unsafe"

	"github.com/restless-stream/ingest"
)

const hexDigits = "0123456789abcdef"

// plainASCII marks the bytes a JSON string holds as they are: printable
// ASCII but for the quote and the backslash.
var plainASCII = func() (t [256]bool) {
	for c := 0x20; c < 0x80; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// encoder builds the lines of one batch. It is not safe for concurrent use.
type encoder struct {
	buf []byte
	// Records of a batch mostly repeat their destination, key and header
	// names and many header values (often the very same strings): the last
	// encoding of each is kept and copied when the string is equal again.
	dest, key memo
	hdrs      [2 * maxMemoHeaders]memo // name, value of header i at 2i, 2i+1
}

// maxMemoHeaders is how many leading headers of a record are memoised.
const maxMemoHeaders = 8

// memo is the JSON string encoding of s.
type memo struct {
	s   string
	enc []byte
}

// appendMemoBytes is appendMemo for a byte slice the caller may reuse: the
// memo keeps its own copy.
func appendMemoBytes(dst []byte, m *memo, b []byte) []byte {
	if m.enc == nil || m.s != view(b) {
		m.s = string(b)
		m.enc = appendString(m.enc[:0], m.s)
	}
	return append(dst, m.enc...)
}

// appendMemo appends s as a JSON string, reusing m's encoding when s is the
// string m last encoded.
func appendMemo(dst []byte, m *memo, s string) []byte {
	if m.enc == nil || m.s != s {
		m.s = s
		m.enc = appendString(m.enc[:0], s)
	}
	return append(dst, m.enc...)
}

// appendLine appends the JSON line of r, newline included, to dst.
//
// The envelope is written by hand: encoding/json would reflect over a map for
// the headers and re-encode the value, which is both slow and not allowed
// (the value must stay byte for byte apart from whitespace).
func (e *encoder) appendLine(dst []byte, r *ingest.Record) []byte {
	dst = append(dst, `{"destination":`...)
	dst = appendMemo(dst, &e.dest, r.Dest)
	dst = append(dst, `,"key":`...)
	if r.Key == nil {
		dst = append(dst, "null"...)
	} else {
		dst = appendMemoBytes(dst, &e.key, r.Key)
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
		if i < maxMemoHeaders {
			dst = appendMemo(dst, &e.hdrs[2*i], h.Key)
			dst = append(dst, ':')
			dst = appendMemo(dst, &e.hdrs[2*i+1], h.Value)
			continue
		}
		dst = appendString(dst, h.Key)
		dst = append(dst, ':')
		dst = appendString(dst, h.Value)
	}
	dst = append(dst, `},"value":`...)
	if r.JSONValue && len(r.Value) > 0 && bytes.IndexByte(r.Value, '\n') < 0 && bytes.IndexByte(r.Value, '\r') < 0 {
		// Declared valid JSON and on one line already: copied as is, since
		// validating it again would cost as much as writing and syncing
		// the batch. Anything else is checked (and compacted) below.
		dst = append(dst, r.Value...)
	} else {
		dst = e.appendValue(dst, r.Value)
	}
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
	// Most strings here (header names and values, subjects, keys) are plain
	// ASCII: copy them in one piece.
	i := 0
	for i < len(s) && plainASCII[s[i]] {
		i++
	}
	dst = append(dst, '"')
	if i == len(s) {
		dst = append(dst, s...)
		return append(dst, '"')
	}
	start := 0
	for i < len(s) {
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
