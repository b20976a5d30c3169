package client

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

func FuzzDecodeEvent(f *testing.F) {
	f.Add([]byte(sampleEvent))
	f.Add(benchEvent())
	f.Add([]byte(`{"type":"error","error":{"message":"x"},"eventId":12}`))
	f.Add([]byte(`{"t\u0079pe":"update","data":"\ud83d\ude00","meta":{"latencyMs":1.0e1}}`))
	f.Add([]byte(`{"type":"update","data":[1,2,{"a":null}],"signature":"\u0041"}`))
	f.Add([]byte(`[{"type":"update"}]`))
	for _, seed := range dupSeeds {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		var ev Event
		err := DecodeEvent(in, &ev)
		checkDupRule(t, in, err)
		valid := json.Valid(in)
		var pe *ParseError
		if err != nil && !errors.As(err, &pe) {
			t.Fatalf("error %v is not a *ParseError", err)
		}
		if err != nil && pe.Malformed() {
			// encoding/json does not check UTF-8; otherwise both must agree.
			if valid && utf8.Valid(in) {
				t.Fatalf("DecodeEvent rejects %q as malformed (%v); encoding/json accepts it", in, err)
			}
			return
		}
		if !valid {
			t.Fatalf("DecodeEvent accepts %q as JSON (err %v); encoding/json rejects it", in, err)
		}
		if err != nil {
			return
		}
		var m map[string]json.RawMessage
		if e := json.Unmarshal(in, &m); e != nil {
			t.Fatalf("encoding/json cannot read %q as an object: %v", in, e)
		}
		var typ string
		if json.Unmarshal(m["type"], &typ) != nil || typ != ev.Type {
			t.Fatalf("type %q, encoding/json reads %s", ev.Type, m["type"])
		}
		for _, k := range []string{"data", "error"} {
			got := ev.Data
			if k == "error" {
				got = ev.Error
			}
			want, ok := m[k]
			if !ok || string(want) == "null" {
				want = nil
			}
			if !bytes.Equal(got, want) || (got == nil) != (want == nil) {
				t.Fatalf("%s = %q, encoding/json reads %q", k, got, want)
			}
		}
		id, ok := m["event_id"]
		if !ok {
			id = m["eventId"]
		}
		var s string
		switch {
		case len(id) == 0 || string(id) == "null":
			s = ""
		case id[0] == '"':
			json.Unmarshal(id, &s)
		default:
			s = string(id)
		}
		if s != ev.EventID {
			t.Fatalf("event id %q, encoding/json reads %q", ev.EventID, s)
		}
		if got, ok := EventIDOf(in); s != "" && (!ok || got != s) || s == "" && got != "" {
			t.Fatalf("EventIDOf = %q, %v; DecodeEvent read %q", got, ok, s)
		}
	})
}

// FuzzDecodeEventCanonical: DecodeEventCanonical accepts exactly the events
// DecodeEvent accepts whose data is absent, null or canonical, and then
// fills the same Event.
func FuzzDecodeEventCanonical(f *testing.F) {
	f.Add([]byte(sampleEvent))
	f.Add(benchEvent())
	f.Add([]byte(`{"type":"update","data":{"a":1,"b":[true,null,"x"]},"signature":"ab","event_id":"1"}`))
	f.Add([]byte(`{"type":"update","data":{"b":1,"a":2},"event_id":"1"}`))
	f.Add([]byte(`{"type":"update","data":{"a": 1},"event_id":"1"}`))
	f.Add([]byte(`{"type":"update","data":null,"data":1}`))
	f.Add([]byte(`{"type":"error","error":{"message":"x"},"eventId":12}`))
	f.Add([]byte(`{"type":"update","data":"\u00e9","event_id":"1"} x`))
	for _, seed := range dupSeeds {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		var strict, canon Event
		err := DecodeEvent(in, &strict)
		checkDupRule(t, in, err)
		ok := DecodeEventCanonical(in, &canon)
		want := err == nil && (strict.Data == nil || IsCanonical(strict.Data))
		if ok != want {
			t.Fatalf("DecodeEventCanonical(%q) = %v; DecodeEvent: %v, data %q canonical %v", in, ok, err, strict.Data, strict.Data != nil && IsCanonical(strict.Data))
		}
		if ok && !reflect.DeepEqual(canon, strict) {
			t.Fatalf("DecodeEventCanonical(%q) = %+v; DecodeEvent = %+v", in, canon, strict)
		}
	})
}

// dupSeeds are events with keys twice, written plainly and with escapes.
var dupSeeds = []string{
	`{"type":"update","data":{"role":"admin","role":"user"},"signature":"ab","event_id":"1"}`,
	`{"type":"update","data":{"a":1,"\u0061":2}}`,
	`{"type":"update","signature":"x","sign\u0061ture":"y"}`,
	`{"type":"update","\u0073\u0069\u0067\u006e\u0061\u0074\u0075\u0072\u0065":"y","signature":"x"}`,
	`{"type":"update","meta":{"x":1,"\u0078":2}}`,
	`{"type":"update","data":[{"\ud83d\ude00":1,"😀":2}]}`,
	`{"type":"update","data":{"a":{"a":1},"b":{"a":2}}}`,
	`{"type":"update","data":{"a\"":1,"a\u0022":2}}`,
}

// checkDupRule checks DecodeEvent's verdict on duplicate keys against
// encoding/json's tokenizer, which unescapes keys.
func checkDupRule(t *testing.T, in []byte, err error) {
	t.Helper()
	var pe *ParseError
	if err != nil && (!errors.As(err, &pe) || pe.Malformed()) {
		return // malformed: the duplicate rule does not apply
	}
	// (A known field in its two casings, event_id and eventId, is one key
	// to DecodeEvent and two to encoding/json.)
	casings := map[string]bool{"eventId": true, "event_id": true, "meta.attemptId": true, "meta.attempt_id": true,
		"meta.latencyMs": true, "meta.latency_ms": true, "meta.payloadModeFallback": true, "meta.payload_mode_fallback": true}
	dupErr := err != nil && strings.HasPrefix(pe.Reason, "duplicate key") && !casings[pe.Field]
	dup, sure := hasDuplicateKey(in)
	if !sure {
		return
	}
	if dup && err == nil {
		t.Fatalf("DecodeEvent accepts %q, which has a key twice", in)
	}
	if dupErr && !dup {
		t.Fatalf("DecodeEvent says %v for %q, which has no key twice", err, in)
	}
}

// hasDuplicateKey reports whether some object of the valid JSON document in
// has a key twice. sure is false when it cannot tell: a lone surrogate
// escape, which encoding/json turns into U+FFFD.
func hasDuplicateKey(in []byte) (dup, sure bool) {
	if bytes.Contains(in, []byte(`\ud`)) || bytes.Contains(in, []byte(`\uD`)) {
		return false, false
	}
	dec := json.NewDecoder(bytes.NewReader(in))
	type frame struct {
		obj    bool
		keys   map[string]bool
		expect bool // the next string token is a key
	}
	var stack []*frame
	for {
		tok, err := dec.Token()
		if err != nil {
			return false, err.Error() == "EOF"
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		switch v := tok.(type) {
		case json.Delim:
			switch v {
			case '{', '[':
				if top != nil && top.obj {
					top.expect = true
				}
				stack = append(stack, &frame{obj: v == '{', keys: map[string]bool{}, expect: v == '{'})
				continue
			default:
				stack = stack[:len(stack)-1]
				if len(stack) > 0 && stack[len(stack)-1].obj {
					stack[len(stack)-1].expect = true
				}
				continue
			}
		case string:
			if top != nil && top.obj && top.expect {
				if top.keys[v] {
					return true, true
				}
				top.keys[v] = true
				top.expect = false
				continue
			}
		}
		if top != nil && top.obj {
			top.expect = true
		}
	}
}
