package client

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
	"unsafe"
)

// Envelope fields, as bits for duplicate detection.
const (
	fType = 1 << iota
	fMeta
	fData
	fError
	fSignature
	fEventID
	fTimestamp
	fAttemptID
	fStatus
	fLatency
	fFallback
)

// span is a string value found in the input, turned into a Go string only
// once the whole event has been validated.
type span struct {
	start, end int // the bytes between the quotes, or a number's literal
	escaped    bool
}

// eventDecoder holds the state of one DecodeEvent call. It lives on the
// stack.
type eventDecoder struct {
	b    []byte
	seen int
	// canonData makes data valid only in canonical form (IsCanonical),
	// checked in the pass that delimits it (DecodeEventCanonical).
	canonData bool
	// strings to materialise: timestamp, attempt id, signature, event id
	strs [4]span
	// ks refuses a key that occurs twice in any object of the event.
	ks keySet
}

const (
	sTimestamp = iota
	sAttemptID
	sSignature
	sEventID
)

// DecodeEvent is the hot-path decoder: it fully validates b as JSON (RFC 8259,
// including escapes and valid UTF-8), fills *ev (reusing it; Data and Error
// alias b, no copy), and returns a *ParseError saying what is wrong:
// malformed JSON, invalid UTF-8, not an object, a duplicated envelope key
// (event_id and eventId count as one key, so do the two casings of each meta
// key), type missing or not "update"/"error", a known field of the wrong
// JSON type, event_id not a string or number. null for data, error,
// signature, event_id, meta and the meta fields means absent. Unknown keys
// are validated and ignored. Keys written with escapes are matched by their
// decoded text.
//
// It makes at most one allocation: the backing store of the event's
// strings.
func DecodeEvent(b []byte, ev *Event) error {
	return decodeEvent(b, ev, false)
}

// decodeEvent is DecodeEvent, or with canonData DecodeEventCanonical (whose
// refusal of data that is not canonical is errNotCanonical).
func decodeEvent(b []byte, ev *Event, canonData bool) error {
	*ev = Event{}
	d := eventDecoder{b: b, canonData: canonData}
	i := skipWS(b, 0)
	if i >= len(b) {
		return syntaxErr(i, "empty input, expected a JSON object")
	}
	if b[i] != '{' {
		n, err := skipValue(b, i, 0)
		if err != nil {
			return err
		}
		if n = skipWS(b, n); n < len(b) {
			return syntaxErr(n, "invalid character '%s' after the top-level value", printable(b[n]))
		}
		return fieldErr(i, "", "event is not a JSON object")
	}
	n, err := d.object(i, ev)
	if err != nil {
		if pe, ok := err.(*ParseError); ok && !pe.syntax && !canonData {
			// A malformed document is reported as such, wherever it breaks.
			// (DecodeEventCanonical only says no: the caller asks DecodeEvent.)
			if serr := validateDocument(b); serr != nil {
				return serr
			}
		}
		*ev = Event{}
		return err
	}
	if n = skipWS(b, n); n < len(b) {
		return syntaxErr(n, "invalid character '%s' after the top-level value", printable(b[n]))
	}
	if d.seen&fType == 0 {
		*ev = Event{}
		return fieldErr(i, "type", "missing")
	}
	d.materialise(ev)
	if ev.EventID != "" && !validID(ev.EventID) {
		at := d.strs[sEventID].start
		*ev = Event{}
		return &ParseError{Offset: at, Field: "event_id", Reason: CheckEventID(d.idText()).Error(), cause: ErrInvalidEventID}
	}
	return nil
}

// idText is the event id as materialise decoded it, for an error message:
// cut, since it may be long.
func (d *eventDecoder) idText() string {
	s := d.strs[sEventID]
	id := d.b[s.start:s.end]
	if s.escaped {
		id = appendUnescaped(nil, id)
	}
	return string(id)
}

// DecodeEventCanonical decodes b as DecodeEvent does when the event's data
// is absent, null or in canonical form (see IsCanonical), the form the
// service signs: it then fills *ev exactly as DecodeEvent would and reports
// true. Data is checked for canonical form in the pass that delimits it,
// which also proves it valid JSON, so a caller that verifies the signature
// with Verifier.VerifyCanonical reads data once instead of twice. It
// reports false for everything else (data not canonical, or anything
// DecodeEvent would refuse), leaving *ev unspecified: DecodeEvent then
// gives the answer and the reason.
func DecodeEventCanonical(b []byte, ev *Event) bool {
	return decodeEvent(b, ev, true) == nil
}

// errNotCanonical ends a DecodeEventCanonical whose data is not canonical.
var errNotCanonical = errors.New("data is not in canonical form")

// validateDocument reports the first syntax error of the JSON document b.
func validateDocument(b []byte) error {
	n, err := skipValue(b, skipWS(b, 0), 0)
	if err != nil {
		return err
	}
	if n = skipWS(b, n); n < len(b) {
		return syntaxErr(n, "invalid character '%s' after the top-level value", printable(b[n]))
	}
	return nil
}

// memberKey reads the key of the object member at b[i] (whitespace
// skipped) and the colon after it. It returns the decoded key (in kbuf when
// it had escapes) and the index of the value.
func (d *eventDecoder) memberKey(i int, kbuf *[24]byte) ([]byte, int, error) {
	b := d.b
	if i >= len(b) || b[i] != '"' {
		return nil, i, expected(b, i, "a string key")
	}
	n, esc, err := scanString(b, i)
	if err != nil {
		return nil, n, err
	}
	key := b[i+1 : n-1]
	if esc {
		// Decoded, a known field's name fits kbuf; a longer key is unknown
		// (appendUnescaped then allocates, rarely).
		key = appendUnescaped(kbuf[:0], key)
	}

	i = skipWS(b, n)
	if i >= len(b) || b[i] != ':' {
		return nil, i, expected(b, i, "':' after an object key")
	}
	i = skipWS(b, i+1)
	if i >= len(b) {
		return nil, i, expected(b, i, "a value")
	}
	return key, i, nil
}

// memberEnd reads what follows a member's value: ',' (more is true and i is
// the next key) or '}' (i is past the object). err is the error of reading
// the value, returned as it is.
func (d *eventDecoder) memberEnd(i int, err error) (int, bool, error) {
	if err != nil {
		return i, false, err
	}
	b := d.b
	i = skipWS(b, i)
	if i < len(b) {
		switch b[i] {
		case ',':
			return skipWS(b, i+1), true, nil
		case '}':
			return i + 1, false, nil
		}
	}
	return i, false, expected(b, i, "',' or '}' after an object value")
}

// objectEnd ends an object whose keys were pushed on d.ks: a key repeated
// in it is an error.
func (d *eventDecoder) objectEnd(i int) (int, error) {
	if at := d.ks.pop(d.b); at >= 0 {
		return i, dupErr(d.b, at)
	}
	return i, nil
}

// objectStart skips the '{' at b[i]; done is true for an empty object.
func (d *eventDecoder) objectStart(i int) (int, bool) {
	i = skipWS(d.b, i+1)
	if i < len(d.b) && d.b[i] == '}' {
		return i + 1, true
	}
	return i, false
}

func (d *eventDecoder) object(i int, ev *Event) (int, error) {
	i, done := d.objectStart(i)
	var kbuf [24]byte
	d.ks.push()
	for more := !done; more; {
		key, v, err := d.memberKey(i, &kbuf)
		if err != nil {
			return v, err
		}
		switch string(key) {
		case "type":
			i, err = d.typeField(v, ev)
		case "meta":
			if err = d.mark(fMeta, v, "meta"); err != nil {
				break
			}
			switch d.b[v] {
			case 'n':
				i, err = scanLiteral(d.b, v, "null")
			case '{':
				i, err = d.meta(v, &ev.Meta)
			default:
				i, err = d.wrongType(v, "meta", "an object")
			}
		case "data":
			if err = d.mark(fData, v, "data"); err != nil {
				break
			}
			if d.canonData && d.b[v] != 'n' {
				n, ok := canonValue(d.b, v, 1) // inside the envelope, as raw's skipValue
				if !ok {
					return n, errNotCanonical
				}
				i, ev.Data = n, json.RawMessage(d.b[v:n:n])
				break
			}
			i, err = d.raw(v, &ev.Data)
		case "error":
			if err = d.mark(fError, v, "error"); err != nil {
				break
			}
			if c := d.b[v]; c != '{' && c != '"' && c != 'n' {
				i, err = d.wrongType(v, "error", "an object or a string")
			} else {
				i, err = d.raw(v, &ev.Error)
			}
		case "signature":
			if err = d.mark(fSignature, v, "signature"); err != nil {
				break
			}
			if c := d.b[v]; c == '"' || c == 'n' {
				i, err = d.str(v, sSignature, "signature")
				break
			}
			// Any other value is a signature that cannot match (PROTOCOL §4:
			// invalid, not a broken event): kept as written, for the
			// verifier to refuse.
			i, err = d.skip(v, 1)
			d.strs[sSignature] = span{start: v, end: i}
		case "event_id", "eventId":
			name := "event_id"
			if key[5] == 'I' {
				name = "eventId"
			}
			if err = d.mark(fEventID, v, name); err != nil {
				break
			}
			switch c := d.b[v]; {
			case c == '-' || ('0' <= c && c <= '9'):
				i, err = scanNumber(d.b, v)
				d.strs[sEventID] = span{start: v, end: i}
			case c == '"' || c == 'n':
				i, err = d.str(v, sEventID, name)
			default:
				i, err = d.wrongType(v, name, "a string or a number")
			}
		default:
			// Known fields are refused twice by mark; an unknown key is
			// checked against the other unknown ones.
			i, err = d.unknownMember(i, v, "", 1)
		}
		if i, more, err = d.memberEnd(i, err); err != nil {
			return i, err
		}
	}
	return d.objectEnd(i)
}

func (d *eventDecoder) meta(i int, m *EventMeta) (int, error) {
	i, done := d.objectStart(i)
	var kbuf [24]byte
	d.ks.push()
	for more := !done; more; {
		key, v, err := d.memberKey(i, &kbuf)
		if err != nil {
			return v, err
		}
		var x int64
		switch string(key) {
		case "timestamp":
			if err = d.mark(fTimestamp, v, "meta.timestamp"); err == nil {
				i, err = d.str(v, sTimestamp, "meta.timestamp")
			}
		case "attempt_id", "attemptId":
			name := "meta.attempt_id"
			if key[7] == 'I' {
				name = "meta.attemptId"
			}
			if err = d.mark(fAttemptID, v, name); err == nil {
				i, err = d.str(v, sAttemptID, name)
			}
		case "status":
			if err = d.mark(fStatus, v, "meta.status"); err == nil {
				i, x, err = d.integer(v, "meta.status")
				m.Status = int(x)
			}
		case "latency_ms", "latencyMs":
			name := "meta.latency_ms"
			if key[7] == 'M' {
				name = "meta.latencyMs"
			}
			if err = d.mark(fLatency, v, name); err == nil {
				i, x, err = d.integer(v, name)
				m.LatencyMS = x
			}
		case "payload_mode_fallback", "payloadModeFallback":
			name := "meta.payload_mode_fallback"
			if key[7] == 'M' {
				name = "meta.payloadModeFallback"
			}
			if err = d.mark(fFallback, v, name); err == nil {
				i, err = d.raw(v, &m.PayloadModeFallback)
			}
		default:
			i, err = d.unknownMember(i, v, "meta.", 2)
		}
		if i, more, err = d.memberEnd(i, err); err != nil {
			return i, err
		}
	}
	return d.objectEnd(i)
}

// unknownKey records the unknown key at b[i] (its opening quote) in the
// innermost object and refuses a repeat.
func (d *eventDecoder) unknownKey(i int, prefix string) error {
	n := stringEnd(d.b, i) // validated by memberKey
	raw := d.b[i+1 : n-1]
	esc := bytes.IndexByte(raw, '\\') >= 0
	if d.ks.add(d.b, i+1, n-1, esc) < 0 {
		return nil
	}
	return fieldErr(i, prefix+string(appendUnescaped(nil, raw)), "duplicate key")
}

// skip validates the value at b[v], at depth, refusing duplicate keys.
// unknownMember records the unknown key at b[i] and skips its value at
// b[v], at depth.
func (d *eventDecoder) unknownMember(i, v int, prefix string, depth int) (int, error) {
	if err := d.unknownKey(i, prefix); err != nil {
		return i, err
	}
	return d.skip(v, depth)
}

func (d *eventDecoder) skip(v, depth int) (int, error) {
	return skipValueKeys(d.b, v, depth, &d.ks)
}

// mark records that field bit f was seen, rejecting a second occurrence.
func (d *eventDecoder) mark(f, at int, name string) error {
	if d.seen&f != 0 {
		return fieldErr(at, name, "duplicate key")
	}
	d.seen |= f
	return nil
}

func (d *eventDecoder) typeField(v int, ev *Event) (int, error) {
	if err := d.mark(fType, v, "type"); err != nil {
		return v, err
	}
	if d.b[v] != '"' {
		if _, err := d.skip(v, 1); err != nil {
			return v, err
		}
		return v, fieldErr(v, "type", `must be the string "update" or "error"`)
	}
	n, esc, err := scanString(d.b, v)
	if err != nil {
		return n, err
	}
	s := d.b[v+1 : n-1]
	var buf [12]byte
	if esc && len(s) <= 2*len(buf) {
		s = appendUnescaped(buf[:0], s)
	}
	switch string(s) {
	case EventUpdate:
		ev.Type = EventUpdate
	case EventError:
		ev.Type = EventError
	default:
		return v, fieldErr(v, "type", strconv.Quote(string(s))+` is not "update" or "error"`)
	}
	return n, nil
}

// raw stores the value at b[v] in *dst, aliasing the input; null stores nil.
func (d *eventDecoder) raw(v int, dst *json.RawMessage) (int, error) {
	if d.b[v] == 'n' {
		return scanLiteral(d.b, v, "null")
	}
	n, err := d.skip(v, 1)
	if err == nil {
		*dst = json.RawMessage(d.b[v:n:n])
	}
	return n, err
}

// str records the string (or null) at b[v] as string number k.
func (d *eventDecoder) str(v, k int, name string) (int, error) {
	switch d.b[v] {
	case '"':
		n, esc, err := scanString(d.b, v)
		d.strs[k] = span{start: v + 1, end: n - 1, escaped: esc}
		return n, err
	case 'n':
		return scanLiteral(d.b, v, "null")
	}
	return d.wrongType(v, name, "a string")
}

// integer reads the integer (or null, as 0) at b[v].
func (d *eventDecoder) integer(v int, name string) (int, int64, error) {
	b := d.b
	if b[v] == 'n' {
		n, err := scanLiteral(b, v, "null")
		return n, 0, err
	}
	if c := b[v]; c != '-' && (c < '0' || c > '9') {
		n, err := d.wrongType(v, name, "a number")
		return n, 0, err
	}
	n, err := scanNumber(b, v)
	if err != nil {
		return n, 0, err
	}
	lit := b[v:n]
	if x, err := strconv.ParseInt(unsafe.String(&lit[0], len(lit)), 10, 64); err == nil {
		return n, x, nil
	}
	f, err := strconv.ParseFloat(unsafe.String(&lit[0], len(lit)), 64)
	if err != nil || f != float64(int64(f)) || f < -1<<53 || f > 1<<53 {
		return n, 0, fieldErr(v, name, "must be an integer, got "+strconv.Quote(string(lit)))
	}
	return n, int64(f), nil
}

// wrongType validates the value at b[v] and reports that it has the wrong
// JSON type (a syntax error inside the value wins).
func (d *eventDecoder) wrongType(v int, name, want string) (int, error) {
	if _, err := d.skip(v, 1); err != nil {
		return v, err
	}
	return v, fieldErr(v, name, "must be "+want+", got "+jsonKind(d.b[v]))
}

func jsonKind(c byte) string {
	switch c {
	case '{':
		return "an object"
	case '[':
		return "an array"
	case '"':
		return "a string"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	}
	return "a number"
}

// materialise turns the recorded string spans into Go strings sharing one
// allocation.
func (d *eventDecoder) materialise(ev *Event) {
	total := 0
	for _, s := range d.strs {
		total += s.end - s.start
	}
	if total == 0 {
		return
	}
	buf := make([]byte, 0, total)
	var ends [4]int
	for k, s := range d.strs {
		if s.escaped {
			buf = appendUnescaped(buf, d.b[s.start:s.end])
		} else {
			buf = append(buf, d.b[s.start:s.end]...)
		}
		ends[k] = len(buf)
	}
	all := unsafe.String(unsafe.SliceData(buf), len(buf))
	ev.Meta.Timestamp = all[:ends[sTimestamp]]
	ev.Meta.AttemptID = all[ends[sTimestamp]:ends[sAttemptID]]
	ev.Signature = all[ends[sAttemptID]:ends[sSignature]]
	ev.EventID = all[ends[sSignature]:ends[sEventID]]
}

// ParseEvent copies b and decodes the copy, so the event owns its Data and

// Error.
func ParseEvent(b []byte) (*Event, error) {
	ev := new(Event)
	if err := DecodeEvent(append([]byte(nil), b...), ev); err != nil {
		return nil, err
	}
	return ev, nil
}
