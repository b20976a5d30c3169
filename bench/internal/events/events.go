// Package events builds the benchmark's events: signed update events of a
// fixed size, laid out exactly like the emulator's firehose events, so that a
// bound fed with them carries the same bytes as the product does.
package events

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"time"
)

// IDDigits is the width of the event ids Build writes: epoch milliseconds.
const IDDigits = 13

// timestampLayout is the emulator's meta.timestamp layout.
const timestampLayout = "2006-01-02T15:04:05.000+00:00"

// Build returns event n of a firehose: event_id id (IDDigits digits), data
// {"n":n,"pad":"xx…"} padded so that the event is size bytes long (or the
// smallest event when size is smaller), signed with secret over data, which
// is already in canonical form.
func Build(secret string, n, id int64, size int, ts time.Time) []byte {
	head := make([]byte, 0, size+64)
	head = append(head, `{"type":"update","meta":{"timestamp":"`...)
	head = ts.UTC().AppendFormat(head, timestampLayout)
	head = append(head, `","attempt_id":"00000000-0000-4000-8000-000000000000","status":200,"latency_ms":0,"payload_mode_fallback":null},"data":`...)
	ds := len(head)
	head = append(head, `{"n":`...)
	head = strconv.AppendInt(head, n, 10)
	head = append(head, `,"pad":"`...)
	// The fixed tail: `"}` closing data, then error, signature, event_id.
	tail := len(`"},"error":null,"signature":"`) + 2*sha256.Size + len(`","event_id":"`) + IDDigits + len(`"}`)
	for len(head)+tail < size {
		head = append(head, 'x')
	}
	head = append(head, `"}`...)
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(head[ds:])
	var sig [2 * sha256.Size]byte
	hex.Encode(sig[:], mac.Sum(nil))
	head = append(head, `,"error":null,"signature":"`...)
	head = append(head, sig[:]...)
	head = append(head, `","event_id":"`...)
	head = appendID(head, id)
	return append(head, `"}`...)
}

// SetID overwrites the event_id of an event made by Build, in place. The
// signature stays valid: it covers data only.
func SetID(ev []byte, id int64) {
	at := len(ev) - 2 - IDDigits
	appendID(ev[at:at], id)
}

// appendID appends id as exactly IDDigits digits, zero-padded on the left.
func appendID(dst []byte, id int64) []byte {
	var buf [20]byte
	s := strconv.AppendInt(buf[:0], id, 10)
	for i := len(s); i < IDDigits; i++ {
		dst = append(dst, '0')
	}
	return append(dst, s[len(s)-min(len(s), IDDigits):]...)
}
