package emulator

import (
	"bytes"
	"fmt"
	"strconv"
	"sync"
)

// Faults are misbehaviours a stream's runtime endpoints show, for testing
// clients. They are set per stream with Emulator.SetFaults or
// POST /_emulator/streams/{id}/faults (this struct as JSON) and apply to
// connections made after they were set. Every event sent under a fault is one
// of the stream's real events (a repeat is the same event again, a bad
// signature is the real event with its signature changed), so a consumer that
// dedupes by event_id and dead-letters bad events stays consistent.
//
// Faults marked "SSE only" are ignored on WebSocket connections.
type Faults struct {
	// Connections limits the faults to the next N connections, after which
	// they clear themselves. 0 = every connection until cleared.
	Connections int `json:"connections,omitempty"`

	// Status answers the connection with this HTTP status and a JSON error body
	// instead of a stream: 204 (stream ended), 401, 403, 404, 429, 500, ...
	// On WebSocket the handshake is answered so.
	Status int `json:"status,omitempty"`
	// RetryAfter is sent as the Retry-After header (seconds) with Status. 0 = none.
	RetryAfter int `json:"retryAfter,omitempty"`

	// CloseAfter closes the connection after this many events: SSE ends the
	// response, WebSocket sends close status 1001 (going away). 0 = never.
	CloseAfter int `json:"closeAfter,omitempty"`
	// CloseMidEvent makes the close after CloseAfter events abrupt: the first
	// half of the next event is written (SSE: flushed; WebSocket: a non-final
	// frame), then the connection is cut without a proper end.
	CloseMidEvent bool `json:"closeMidEvent,omitempty"`

	// RepeatEvery sends every k-th event twice in a row (1 = every event). 0 = off.
	RepeatEvery int `json:"repeatEvery,omitempty"`
	// BadSignatureEvery sends every k-th update event with a wrong signature. 0 = off.
	BadSignatureEvery int `json:"badSignatureEvery,omitempty"`
	// MalformedEvery sends every k-th event as malformed JSON (cut short and
	// followed by garbage; the SSE id line stays right). 0 = off.
	MalformedEvery int `json:"malformedEvery,omitempty"`
	// CorruptPatchEvery corrupts every k-th event that carries a JSON_PATCH
	// patch (data an array, payload_mode_fallback null): an operation that
	// cannot apply (removing a member no document has) is put first in its
	// patch. The signature is left as it was, so a consumer that verifies
	// rejects the event as signature_invalid; one that does not verifies
	// finds a patch that fails. 0 = off.
	CorruptPatchEvery int `json:"corruptPatchEvery,omitempty"`
	// OversizedEvery sends every k-th event padded to OversizedBytes
	// (an extra top-level "padding" member, still valid JSON). 0 = off.
	OversizedEvery int `json:"oversizedEvery,omitempty"`
	// OversizedBytes is the size of an oversized event. Default 5 MiB, above
	// the 4 MiB default limit of the sources.
	OversizedBytes int `json:"oversizedBytes,omitempty"`

	// Stall stops sending anything (no events, no keepalives) after StallAfter
	// events, holding the connection open until the client leaves. Over
	// WebSocket it sends no pings and answers none of the client's (the
	// connection is not read), and holds the connection for at most 5 minutes.
	Stall bool `json:"stall,omitempty"`
	// StallAfter is the number of events sent before a Stall. 0 = right after
	// the response headers.
	StallAfter int `json:"stallAfter,omitempty"`
	// StallHeaders holds the connection without sending even the response
	// headers, until the client leaves.
	StallHeaders bool `json:"stallHeaders,omitempty"`

	// WrongContentType answers 200 with Content-Type text/html. SSE only.
	WrongContentType bool `json:"wrongContentType,omitempty"`
	// SlowDrip writes events one byte at a time, flushing each. SSE only.
	SlowDrip bool `json:"slowDrip,omitempty"`
	// DripDelayMS is the pause between dripped bytes in milliseconds. 0 = none.
	DripDelayMS int `json:"dripDelayMs,omitempty"`
	// Gzip compresses the response (Content-Encoding: gzip) whatever the
	// request's Accept-Encoding. SSE only.
	Gzip bool `json:"gzip,omitempty"`
}

// defaultOversizedBytes is Faults.OversizedBytes when unset.
const defaultOversizedBytes = 5 << 20

func (f *Faults) validate() error {
	if f.Connections < 0 {
		return fmt.Errorf("connections must not be negative")
	}
	if f.Status != 0 && (f.Status < 200 || f.Status > 599 || (f.Status > 200 && f.Status < 204) || f.Status == 200) {
		return fmt.Errorf("status must be 204 or an HTTP error status (4xx, 5xx), got %d", f.Status)
	}
	for name, v := range map[string]int{
		"retryAfter": f.RetryAfter, "closeAfter": f.CloseAfter, "repeatEvery": f.RepeatEvery,
		"badSignatureEvery": f.BadSignatureEvery, "malformedEvery": f.MalformedEvery,
		"oversizedEvery": f.OversizedEvery, "corruptPatchEvery": f.CorruptPatchEvery, "oversizedBytes": f.OversizedBytes,
		"stallAfter": f.StallAfter, "dripDelayMs": f.DripDelayMS,
	} {
		if v < 0 {
			return fmt.Errorf("%s must not be negative", name)
		}
	}
	if f.OversizedBytes > 256<<20 {
		return fmt.Errorf("oversizedBytes must be at most 268435456")
	}
	return nil
}

// faultState holds a stream's current faults.
type faultState struct {
	mu        sync.Mutex
	f         *Faults
	remaining int
}

func (s *faultState) set(f *Faults) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if f == nil || *f == (Faults{}) {
		s.f = nil
		return
	}
	c := *f
	s.f, s.remaining = &c, c.Connections
}

func (s *faultState) get() *Faults {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f == nil {
		return nil
	}
	c := *s.f
	c.Connections = s.remaining
	return &c
}

// take returns the faults for a new connection (nil = none) and counts the
// connection against Faults.Connections.
func (s *faultState) take() *Faults {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f == nil {
		return nil
	}
	c := *s.f
	if s.f.Connections > 0 {
		s.remaining--
		if s.remaining <= 0 {
			s.f = nil
		}
	}
	return &c
}

func every(k, n int) bool { return k > 0 && n%k == 0 }

// corruptSignature flips the first hex digit of the event's signature.
func corruptSignature(ev []byte) []byte {
	i := bytes.Index(ev, []byte(`"signature":"`))
	if i < 0 {
		return ev
	}
	out := bytes.Clone(ev)
	j := i + len(`"signature":"`)
	if out[j] == '0' {
		out[j] = '1'
	} else {
		out[j] = '0'
	}
	return out
}

// badPatchOp is the operation corruptPatch puts first in a patch.
const badPatchOp = `{"op":"remove","path":"/restless-emulator-corrupted-patch"}`

// corruptPatch puts badPatchOp first in the patch ev carries; an event that
// carries no patch (a full document, an error event) is returned as is.
// The emulator writes "data" right after "meta", whose members hold no
// such text, and payload_mode_fallback inside it.
func corruptPatch(ev []byte) []byte {
	i := bytes.Index(ev, []byte(`"data":[`))
	if i < 0 || !bytes.Contains(ev[:i], []byte(`"payload_mode_fallback":null`)) {
		return ev
	}
	j := i + len(`"data":[`)
	out := make([]byte, 0, len(ev)+len(badPatchOp)+1)
	out = append(out, ev[:j]...)
	out = append(out, badPatchOp...)
	if ev[j] != ']' {
		out = append(out, ',')
	}
	return append(out, ev[j:]...)
}

// malformed cuts the event short and adds bytes no JSON parser accepts.
func malformed(ev []byte) []byte {
	out := make([]byte, 0, len(ev)/2+16)
	out = append(out, ev[:len(ev)/2]...)
	return append(out, `\u12"}}:,`...)
}

// oversize pads the event to size bytes with a top-level "padding" member.
func oversize(ev []byte, size int) []byte {
	if size <= 0 {
		size = defaultOversizedBytes
	}
	const pre = `,"padding":"`
	pad := size - len(ev) - len(pre) - 1
	if pad < 0 {
		pad = 0
	}
	out := make([]byte, 0, len(ev)+len(pre)+pad+2)
	out = append(out, ev[:len(ev)-1]...)
	out = append(out, pre...)
	out = append(out, bytes.Repeat([]byte{'x'}, pad)...)
	return append(out, `"}`...)
}

func retryAfterValue(s int) string { return strconv.Itoa(s) }
