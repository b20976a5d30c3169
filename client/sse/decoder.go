package sse

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"time"
	"unicode/utf8"
)

// DefaultMaxEventBytes is the default limit of a Decoder (4 MiB), the same as
// client.DefaultMaxEventBytes (a test of package client ties the two).
const DefaultMaxEventBytes = 4 << 20

// ErrEventTooLarge is wrapped by the error Decode returns for an event over
// the limit set with SetMaxEventBytes. The decoder stays usable: the next
// Decode returns the next event. See Decoder for the exact rules.
var ErrEventTooLarge = errors.New("sse: event too large")

// Event is one dispatched event of an event stream.
type Event struct {
	// Type is the value of the block's last event field, or "message" when
	// it had none or an empty one (the type a browser dispatches).
	Type string
	// Data is the block's data lines joined by LF.
	Data string
	// ID is the last event ID in effect at dispatch: the value of the last
	// valid id field seen so far on the stream, in this block or an earlier
	// one ("" if none, or after an empty id field).
	ID string
}

const (
	sseReadBufSize = 32 << 10
	sseMinBufSize  = 16 // holds any known field name and its colon
	// Below this size, ID and Type share the allocation of Data; above it they
	// get their own so that a long-lived ID does not pin a large event.
	sseShareMax = 16 << 10
	// The largest retry, in milliseconds, that fits a time.Duration.
	sseMaxRetryMS = math.MaxInt64 / int64(time.Millisecond)
)

var sseBOM = []byte{0xEF, 0xBB, 0xBF}

// The field whose value the current line carries.
type sseField uint8

const (
	sseFieldIgnore sseField = iota // comment or unknown field
	sseFieldData
	sseFieldEvent
	sseFieldID
	sseFieldRetry
)

// Why an event was too large (the first reason seen in the block).
type sseOverflow uint8

const (
	sseOverflowNone sseOverflow = iota
	sseOverflowData
	sseOverflowEvent
	sseOverflowID
)

// Decoder reads events from an event stream ("text/event-stream") exactly as
// the WHATWG HTML "Server-sent events" parsing and interpretation algorithm
// does:
//
//   - The stream is UTF-8: one leading byte order mark is dropped (also when
//     it arrives split across reads) and invalid bytes become U+FFFD, one per
//     maximal subpart, as the WHATWG "UTF-8 decode" algorithm does.
//   - Lines end with CR LF, LF or CR; a CR LF pair split across reads is one
//     line end. An empty line dispatches the event; a line starting with a
//     colon is a comment; otherwise the field name runs to the first colon
//     and one space after that colon is dropped. A line without a colon is a
//     field with an empty value. Field names are case-sensitive; unknown
//     fields are ignored.
//   - data appends its value and LF to the data buffer; at dispatch one
//     trailing LF is removed, so "data:" alone dispatches an event with empty
//     Data while a block without any data field dispatches nothing.
//   - event sets the type of the current block only; it is reset after every
//     dispatch, also when nothing was dispatched.
//   - id sets the last event ID unless its value contains U+0000 NULL; it
//     stays in effect for later events, and a block without data still sets
//     it (reported in the next Event.ID and by LastEventID).
//   - retry sets the reconnection time (see Retry) when its value is one or
//     more ASCII digits, in milliseconds; any other value is ignored.
//   - At the end of the stream an unterminated last line and an event
//     without its closing empty line are discarded, and Decode returns io.EOF.
//
// Limits. No line length is limited as such: comments, unknown fields and
// retry lines of any length are processed in constant memory. What an event
// keeps is limited to n bytes (SetMaxEventBytes, default
// DefaultMaxEventBytes), counted on the bytes of the stream:
//
//   - An event whose Data would be longer than n bytes keeps only its first n
//     bytes (less a UTF-8 sequence cut at the limit); the rest of its data is
//     read and dropped, never held.
//   - An event or id field whose value is longer than n bytes is read and
//     dropped without taking effect (the type and last event ID stay as they
//     were), and its block is too large even when it has no data.
//
// A too-large block is reported when its closing empty line arrives: Decode
// returns the truncated Event together with an error wrapping
// ErrEventTooLarge; DecodeLimited returns it with tooLarge set and a nil
// error. Either way the next call continues with the next event.
//
// The decoder reads r through its own 32 KiB buffer and reuses its other
// buffers from event to event (the data buffer grows to the largest event
// seen, at most n+1 bytes). An event costs one allocation, for its strings,
// unless its data is over 16 KiB and its ID or Type is new (then two or
// three). A Decoder is not safe for concurrent use.
type Decoder struct {
	r       io.Reader
	buf     []byte // read buffer; buf[rpos:wpos] is unread
	rpos    int
	wpos    int
	scanned int   // bytes of buf[rpos:wpos] known to hold no line end
	err     error // sticky read error
	max     int

	bomDone bool
	skipLF  bool // the last line ended with CR: drop an LF right after it
	inLine  bool // a line longer than the buffer is being read in pieces

	// The current line.
	field      sseField
	stripSpace bool   // the value's first byte is still to come
	val        []byte // value of an event or id line
	valOver    bool   // val passed the limit
	retryMS    int64
	retryOK    bool // only digits so far
	retryAny   bool // at least one digit

	// The current block.
	data     []byte // the data buffer, at most max+1 bytes of it
	dataLen  int    // the data buffer's full length
	evType   []byte
	overflow sseOverflow

	lastOverflow sseOverflow // of the last event returned

	// The stream.
	idBuf      []byte // the last event ID buffer
	lastIDRaw  []byte // idBuf at the last dispatch
	lastID     string // lastIDRaw decoded
	lastType   string // cache: the last non-empty type decoded
	lastTypeRw []byte
	retry      time.Duration
	hasRetry   bool
	scratch    []byte
	rawData    bool // SetRawData: no U+FFFD in Data
}

// NewDecoder returns a decoder reading the event stream r.
func NewDecoder(r io.Reader) *Decoder {
	return newDecoderSize(r, sseReadBufSize)
}

func newDecoderSize(r io.Reader, size int) *Decoder {
	size = max(size, sseMinBufSize)
	return &Decoder{r: r, buf: make([]byte, size), max: DefaultMaxEventBytes}
}

// SetMaxEventBytes sets the limit n of an event's data and of an event or id
// value, in bytes (see Decoder). n <= 0 restores DefaultMaxEventBytes. Call it
// before the first Decode; a change applies to the input read after it.
func (d *Decoder) SetMaxEventBytes(n int) {
	if n <= 0 {
		n = DefaultMaxEventBytes
	}
	d.max = min(n, math.MaxInt-1) // max+1 bytes of data are kept

}

// SetRawData(true) keeps each event's Data byte for byte: invalid UTF-8 is
// left as it came instead of becoming U+FFFD, so that a caller that
// validates the data (a JSON decoder) sees, and can refuse, exactly what the
// server sent. It departs from the WHATWG algorithm for Data only; ID and
// Type are decoded as always.
func (d *Decoder) SetRawData(on bool) { d.rawData = on }

// Retry returns the reconnection time set by the last valid retry field read
// so far, and false when there was none.
func (d *Decoder) Retry() (time.Duration, bool) {
	return d.retry, d.hasRetry
}

// LastEventID returns the last event ID as of the last dispatch, including
// the dispatch of a block without data: the value a client sends as
// Last-Event-ID when it reconnects.
func (d *Decoder) LastEventID() string {
	return d.lastID
}

// Decode returns the next event. At the end of the stream it returns io.EOF;
// a read error is returned as is. Both are sticky. For a too-large event it
// returns the truncated event and an error wrapping ErrEventTooLarge; the
// next Decode continues with the next event.
func (d *Decoder) Decode() (Event, error) {
	ev, tooLarge, err := d.DecodeLimited()
	if tooLarge {
		return ev, fmt.Errorf("%w: %s", ErrEventTooLarge, d.overflowText(d.lastOverflow))
	}
	return ev, err
}

// DecodeLimited is Decode for callers that pass too-large events on instead
// of failing: such an event is returned with tooLarge set and a nil error,
// its Data cut to the first n bytes (see Decoder). err is io.EOF at the end of
// the stream, or the read error.
func (d *Decoder) DecodeLimited() (ev Event, tooLarge bool, err error) {
	for {
		seg, eol, err := d.segment()
		if err != nil {
			return Event{}, false, err
		}
		if !d.inLine {
			if eol && len(seg) == 0 {
				if ev, tooLarge, ok := d.dispatch(); ok {
					return ev, tooLarge, nil
				}
				continue
			}
			seg = d.startLine(seg, eol)
		}
		d.value(seg)
		if eol {
			d.endLine()
			d.inLine = false
		} else {
			d.inLine = true
		}
	}
}

func (d *Decoder) overflowText(o sseOverflow) string {
	switch o {
	case sseOverflowEvent:
		return fmt.Sprintf("event field longer than %d bytes", d.max)
	case sseOverflowID:
		return fmt.Sprintf("id field longer than %d bytes", d.max)
	default:
		return fmt.Sprintf("data longer than %d bytes", d.max)
	}
}

// segment returns the next piece of the current line; eol reports that the
// line ends after it (its line end consumed). A line that fits the buffer
// comes whole; a longer one comes in buffer-sized pieces.
func (d *Decoder) segment() (seg []byte, eol bool, err error) {
	if !d.bomDone {
		d.dropBOM()
	}
	for {
		if d.skipLF && d.rpos < d.wpos {
			if d.buf[d.rpos] == '\n' {
				d.rpos++
			}
			d.skipLF = false
		}
		if !d.skipLF && d.rpos < d.wpos {
			avail := d.buf[d.rpos:d.wpos]
			if i := sseLineEnd(avail, d.scanned); i >= 0 {
				d.rpos += i + 1
				if avail[i] == '\r' {
					if i+1 == len(avail) {
						d.skipLF = true
					} else if avail[i+1] == '\n' {
						d.rpos++
					}
				}
				d.scanned = 0
				return avail[:i], true, nil
			}
			d.scanned = len(avail)
			if d.inLine || len(avail) == len(d.buf) {
				d.rpos, d.wpos, d.scanned = 0, 0, 0
				return avail, false, nil
			}
		}
		if d.err != nil {
			return nil, false, d.err
		}
		d.fill()
	}
}

// dropBOM reads until it can tell whether the stream starts with a BOM, and
// drops it if so. It waits for more bytes only while they could still be a
// BOM.
func (d *Decoder) dropBOM() {
	for {
		avail := d.buf[d.rpos:d.wpos]
		if len(avail) >= len(sseBOM) || !bytes.HasPrefix(sseBOM, avail) || d.err != nil {
			if bytes.HasPrefix(avail, sseBOM) {
				d.rpos += len(sseBOM)
			}
			d.bomDone = true
			return
		}
		d.fill()
	}
}

// fill moves the unread bytes to the front and reads once.
func (d *Decoder) fill() {
	if d.rpos > 0 {
		d.wpos = copy(d.buf, d.buf[d.rpos:d.wpos])
		d.rpos = 0
	}
	for range 100 {
		n, err := d.r.Read(d.buf[d.wpos:])
		if n < 0 || n > len(d.buf)-d.wpos {
			d.err = errors.New("sse: reader returned an invalid count")
			return
		}
		d.wpos += n
		if err != nil {
			d.err = err
			return
		}
		if n > 0 {
			return
		}
	}
	d.err = io.ErrNoProgress
}

// sseLineEnd returns the index of the first CR or LF in b at or after from,
// or -1.
func sseLineEnd(b []byte, from int) int {
	b = b[from:]
	lf := bytes.IndexByte(b, '\n')
	scan := b
	if lf >= 0 {
		scan = b[:lf]
	}
	if cr := bytes.IndexByte(scan, '\r'); cr >= 0 {
		return from + cr
	}
	if lf >= 0 {
		return from + lf
	}
	return -1
}

// startLine classifies a non-empty line by its first piece and returns the
// part of the piece that belongs to the value.
func (d *Decoder) startLine(seg []byte, eol bool) []byte {
	d.stripSpace = false
	if seg[0] == ':' {
		d.field = sseFieldIgnore
		return nil
	}
	name, value, found := bytes.Cut(seg, []byte{':'})
	if !found && !eol {
		// The name fills the whole buffer: longer than any known name.
		d.field = sseFieldIgnore
		return nil
	}
	d.stripSpace = found
	switch string(name) {
	case "data":
		d.field = sseFieldData
	case "event":
		d.field = sseFieldEvent
		d.val, d.valOver = d.val[:0], false
	case "id":
		d.field = sseFieldID
		d.val, d.valOver = d.val[:0], false
	case "retry":
		d.field = sseFieldRetry
		d.retryMS, d.retryOK, d.retryAny = 0, true, false
	default:
		d.field = sseFieldIgnore
	}
	return value
}

// value takes the next piece of the current line's value.
func (d *Decoder) value(p []byte) {
	if d.stripSpace && len(p) > 0 {
		if p[0] == ' ' {
			p = p[1:]
		}
		d.stripSpace = false
	}
	switch d.field {
	case sseFieldData:
		d.appendData(p)
	case sseFieldEvent, sseFieldID:
		if d.valOver {
			return
		}
		if len(d.val)+len(p) > d.max {
			d.valOver = true
			return
		}
		d.val = append(d.val, p...)
	case sseFieldRetry:
		for _, c := range p {
			if c < '0' || c > '9' {
				d.retryOK = false
				return
			}
			d.retryAny = true
			d.retryMS = min(d.retryMS*10+int64(c-'0'), sseMaxRetryMS)
		}
	}
}

// endLine applies the field of the line just completed.
func (d *Decoder) endLine() {
	switch d.field {
	case sseFieldData:
		d.appendData([]byte{'\n'})
	case sseFieldEvent:
		if d.valOver {
			d.setOverflow(sseOverflowEvent)
			return
		}
		d.evType, d.val = d.val, d.evType
	case sseFieldID:
		if d.valOver {
			d.setOverflow(sseOverflowID)
			return
		}
		if bytes.IndexByte(d.val, 0) < 0 {
			d.idBuf, d.val = d.val, d.idBuf
		}
	case sseFieldRetry:
		if d.retryOK && d.retryAny {
			d.retry, d.hasRetry = time.Duration(d.retryMS)*time.Millisecond, true
		}
	}
}

func (d *Decoder) setOverflow(o sseOverflow) {
	if d.overflow == sseOverflowNone {
		d.overflow = o
	}
}

// appendData adds p to the data buffer, keeping at most max+1 bytes of it:
// enough to tell a too-large event and to return its first max bytes.
func (d *Decoder) appendData(p []byte) {
	d.dataLen += len(p)
	if room := d.max + 1 - len(d.data); room > 0 {
		d.data = append(d.data, p[:min(room, len(p))]...)
	}
}

// dispatch ends the current block. ok is false when it dispatches nothing.
func (d *Decoder) dispatch() (ev Event, tooLarge, ok bool) {
	defer d.resetBlock()
	idChanged := !bytes.Equal(d.idBuf, d.lastIDRaw)
	var data []byte
	switch {
	case d.dataLen > len(d.data) || d.dataLen-1 > d.max:
		d.setOverflow(sseOverflowData)
		data = sseTrimCut(d.data[:min(len(d.data), d.max)])
	case d.dataLen > 0:
		data = d.data[:d.dataLen-1]
	case d.overflow == sseOverflowNone:
		// No data: nothing to dispatch, but the last event ID takes effect.
		if idChanged {
			d.setLastID(sseDecodeString(d.idBuf))
		}
		return Event{}, false, false
	}
	tooLarge = d.overflow != sseOverflowNone
	d.lastOverflow = d.overflow

	// Data, and a new ID or Type, become one string: one allocation.
	buf := data
	if !d.rawData && !utf8.Valid(buf) {
		d.scratch = sseAppendUTF8(d.scratch[:0], buf)
		buf = d.scratch
	}
	nData := len(buf)
	share := nData <= sseShareMax
	needType := len(d.evType) > 0 && !bytes.Equal(d.evType, d.lastTypeRw)
	if share && idChanged {
		buf = sseAppendDecoded(buf, d.idBuf)
	}
	nID := len(buf)
	if share && needType {
		buf = sseAppendDecoded(buf, d.evType)
	}
	s := string(buf)
	ev.Data = s[:nData]
	if idChanged {
		if share {
			d.setLastID(s[nData:nID])
		} else {
			d.setLastID(sseDecodeString(d.idBuf))
		}
	}
	if needType {
		if share {
			d.lastType = s[nID:]
		} else {
			d.lastType = sseDecodeString(d.evType)
		}
		d.lastTypeRw = append(d.lastTypeRw[:0], d.evType...)
	}
	ev.ID = d.lastID
	ev.Type = "message"
	if len(d.evType) > 0 {
		ev.Type = d.lastType
	}
	return ev, tooLarge, true
}

func (d *Decoder) setLastID(s string) {
	d.lastID = s
	d.lastIDRaw = append(d.lastIDRaw[:0], d.idBuf...)
}

func (d *Decoder) resetBlock() {
	d.data = d.data[:0]
	d.dataLen = 0
	d.evType = d.evType[:0]
	d.overflow = sseOverflowNone
}

// sseTrimCut drops an incomplete UTF-8 sequence that the limit cut off at
// the end of b, so that valid input stays valid.
func sseTrimCut(b []byte) []byte {
	for i := len(b) - 1; i >= 0 && i >= len(b)-utf8.UTFMax+1; i-- {
		if b[i] < utf8.RuneSelf {
			break
		}
		if utf8.RuneStart(b[i]) {
			if !utf8.FullRune(b[i:]) {
				return b[:i]
			}
			break
		}
	}
	return b
}

func sseDecodeString(b []byte) string {
	if utf8.Valid(b) {
		return string(b)
	}
	return string(sseAppendUTF8(nil, b))
}

func sseAppendDecoded(dst, b []byte) []byte {
	if utf8.Valid(b) {
		return append(dst, b...)
	}
	return sseAppendUTF8(dst, b)
}

// sseAppendUTF8 appends b decoded by the WHATWG Encoding "UTF-8 decode"
// algorithm (without BOM handling): every maximal subpart of an invalid
// sequence becomes one U+FFFD, also an incomplete sequence at the end.
func sseAppendUTF8(dst, b []byte) []byte {
	var (
		needed int
		seen   int
		lower  byte = 0x80
		upper  byte = 0xBF
		start  int  // where the current sequence began
	)
	for i := 0; i < len(b); i++ {
		c := b[i]
		if needed == 0 {
			switch {
			case c <= 0x7F:
				dst = append(dst, c)
			case 0xC2 <= c && c <= 0xDF:
				needed = 1
			case 0xE0 <= c && c <= 0xEF:
				if c == 0xE0 {
					lower = 0xA0
				} else if c == 0xED {
					upper = 0x9F
				}
				needed = 2
			case 0xF0 <= c && c <= 0xF4:
				if c == 0xF0 {
					lower = 0x90
				} else if c == 0xF4 {
					upper = 0x8F
				}
				needed = 3
			default:
				dst = utf8.AppendRune(dst, utf8.RuneError)
			}
			start = i
			continue
		}
		if c < lower || c > upper {
			// The sequence so far is a maximal subpart: replace it and
			// read c again as the start of something new.
			needed, seen, lower, upper = 0, 0, 0x80, 0xBF
			dst = utf8.AppendRune(dst, utf8.RuneError)
			i--
			continue
		}
		lower, upper = 0x80, 0xBF
		seen++
		if seen == needed {
			dst = append(dst, b[start:i+1]...)
			needed, seen = 0, 0
		}
	}
	if needed != 0 {
		dst = utf8.AppendRune(dst, utf8.RuneError)
	}
	return dst
}
