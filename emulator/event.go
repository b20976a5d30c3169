package emulator

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strconv"
	"time"

	"github.com/restless-stream/ingest/client"
)

// timestampLayout is how meta.timestamp is written: the service's sample
// ("2026-06-07T00:49:36.562+00:00"), always in UTC.
const timestampLayout = "2006-01-02T15:04:05.000+00:00"

// fallbackFullData is meta.payload_mode_fallback on a JSON_PATCH stream's event
// that carries the full document instead of a patch.
const fallbackFullData = `"` + string(client.PayloadFullData) + `"`

// eventMeta is the meta object of one event.
type eventMeta struct {
	Time      time.Time
	AttemptID string
	Status    int
	LatencyMS int64
	Fallback  string // raw JSON; "" = null
}

// appendEvent appends one event in the PROTOCOL.md §3 form (snake_case, the
// key order of the service's sample). data and errJSON are raw JSON or nil
// (written as null); sig "" is written as null.
func appendEvent(dst []byte, typ string, m eventMeta, data, errJSON []byte, sig, id string) []byte {
	dst = append(dst, `{"type":`...)
	dst = strconv.AppendQuote(dst, typ)
	dst = append(dst, `,"meta":{"timestamp":"`...)
	dst = m.Time.UTC().AppendFormat(dst, timestampLayout)
	dst = append(dst, `","attempt_id":`...)
	dst = strconv.AppendQuote(dst, m.AttemptID)
	dst = append(dst, `,"status":`...)
	dst = strconv.AppendInt(dst, int64(m.Status), 10)
	dst = append(dst, `,"latency_ms":`...)
	dst = strconv.AppendInt(dst, m.LatencyMS, 10)
	dst = append(dst, `,"payload_mode_fallback":`...)
	dst = appendRawOrNull(dst, []byte(m.Fallback))
	dst = append(dst, `},"data":`...)
	dst = appendRawOrNull(dst, data)
	dst = append(dst, `,"error":`...)
	dst = appendRawOrNull(dst, errJSON)
	dst = append(dst, `,"signature":`...)
	if sig == "" {
		dst = append(dst, "null"...)
	} else {
		dst = append(dst, '"')
		dst = append(dst, sig...)
		dst = append(dst, '"')
	}
	dst = append(dst, `,"event_id":"`...)
	dst = append(dst, id...)
	return append(dst, `"}`...)
}

func appendRawOrNull(dst, raw []byte) []byte {
	if len(raw) == 0 {
		return append(dst, "null"...)
	}
	return append(dst, raw...)
}

// errorBody is the error object of an error event.
type errorBody struct {
	Message string `json:"message"`
	Status  int    `json:"status,omitempty"`
	Code    string `json:"code"`
}

func (b errorBody) json() []byte {
	raw, _ := json.Marshal(b) // a struct of strings and ints cannot fail
	return raw
}

// sign returns the lowercase hex HMAC-SHA256 of canonical data (PROTOCOL.md §4).
// data must already be in canonical form (see canonical); it is then the same
// value client.ComputeSignatureRaw computes.
func sign(secret string, data []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(data)
	return hex.EncodeToString(mac.Sum(nil))
}

// canonical returns the PROTOCOL.md §4 canonical form of raw JSON. Event data
// is always embedded in this form, so that what is signed is byte for byte what
// is sent and verifiers take their no-re-serialisation fast path.
func canonical(raw []byte) ([]byte, error) {
	return client.Canonical(nil, raw)
}

// newAttemptID returns a random UUID (version 4) for meta.attempt_id.
func newAttemptID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	var s [36]byte
	hex.Encode(s[0:8], b[0:4])
	s[8] = '-'
	hex.Encode(s[9:13], b[4:6])
	s[13] = '-'
	hex.Encode(s[14:18], b[6:8])
	s[18] = '-'
	hex.Encode(s[19:23], b[8:10])
	s[23] = '-'
	hex.Encode(s[24:], b[10:])
	return string(s[:])
}

// randomHex returns n random bytes as lowercase hex.
func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
