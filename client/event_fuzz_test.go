package client

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
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
	f.Fuzz(func(t *testing.T, in []byte) {
		var ev Event
		err := DecodeEvent(in, &ev)
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
	f.Fuzz(func(t *testing.T, in []byte) {
		var strict, canon Event
		err := DecodeEvent(in, &strict)
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
