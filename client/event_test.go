package client

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

const sampleEvent = `{
  "type": "update",
  "meta": {"timestamp": "2026-06-07T00:49:36.562+00:00", "attempt_id": "a59d80d4-7d36-4019-b2c6-40cc8b8742ce",
           "status": 200, "latency_ms": 43, "payload_mode_fallback": null},
  "data": {"args": {}, "url": "https://httpbin.org/get"},
  "error": null,
  "signature": null,
  "event_id": "1780793376562"
}`

func TestDecodeEventSample(t *testing.T) {
	var ev Event
	if err := DecodeEvent([]byte(sampleEvent), &ev); err != nil {
		t.Fatal(err)
	}
	want := Event{
		Type: EventUpdate,
		Meta: EventMeta{Timestamp: "2026-06-07T00:49:36.562+00:00",
			AttemptID: "a59d80d4-7d36-4019-b2c6-40cc8b8742ce", Status: 200, LatencyMS: 43},
		Data:    json.RawMessage(`{"args": {}, "url": "https://httpbin.org/get"}`),
		EventID: "1780793376562",
	}
	assertEvent(t, &ev, &want)
}

func assertEvent(t *testing.T, got, want *Event) {
	t.Helper()
	if got.Type != want.Type || got.Meta.Timestamp != want.Meta.Timestamp ||
		got.Meta.AttemptID != want.Meta.AttemptID || got.Meta.Status != want.Meta.Status ||
		got.Meta.LatencyMS != want.Meta.LatencyMS ||
		string(got.Meta.PayloadModeFallback) != string(want.Meta.PayloadModeFallback) ||
		string(got.Data) != string(want.Data) || string(got.Error) != string(want.Error) ||
		got.Signature != want.Signature || got.EventID != want.EventID ||
		(got.Data == nil) != (want.Data == nil) || (got.Error == nil) != (want.Error == nil) {
		t.Errorf("got  %+v\nwant %+v", *got, *want)
	}
}

func TestDecodeEventGood(t *testing.T) {
	tests := []struct {
		name, in string
		want     Event
	}{
		{"minimal update", `{"type":"update"}`, Event{Type: EventUpdate}},
		{"error event", `{"type":"error","meta":{"status":502},"error":{"message":"bad gateway"}}`,
			Event{Type: EventError, Meta: EventMeta{Status: 502}, Error: json.RawMessage(`{"message":"bad gateway"}`)}},
		{"error as string", `{"type":"error","error":"boom"}`, Event{Type: EventError, Error: json.RawMessage(`"boom"`)}},
		{"camelCase keys", `{"type":"update","eventId":"7","meta":{"attemptId":"a","latencyMs":5,"payloadModeFallback":{"reason":"x"}}}`,
			Event{Type: EventUpdate, EventID: "7", Meta: EventMeta{AttemptID: "a", LatencyMS: 5, PayloadModeFallback: json.RawMessage(`{"reason":"x"}`)}}},
		{"numeric event_id kept literally", `{"type":"update","event_id":1780793376562}`, Event{Type: EventUpdate, EventID: "1780793376562"}},
		{"numeric event_id with exponent", `{"type":"update","event_id":1.5e3}`, Event{Type: EventUpdate, EventID: "1.5e3"}},
		{"nulls are absent", `{"type":"update","meta":null,"data":null,"error":null,"signature":null,"event_id":null}`, Event{Type: EventUpdate}},
		{"null meta fields", `{"type":"update","meta":{"timestamp":null,"attempt_id":null,"status":null,"latency_ms":null}}`, Event{Type: EventUpdate}},
		{"empty signature", `{"type":"update","signature":""}`, Event{Type: EventUpdate}},
		{"signature not a string kept as written", `{"type":"update","signature":{"a":[1]}}`, Event{Type: EventUpdate, Signature: `{"a":[1]}`}},
		{"numeric signature kept as written", `{"type":"update","signature":12}`, Event{Type: EventUpdate, Signature: "12"}},
		{"escaped strings decoded", `{"type":"upd\u0061te","signature":"a\"b\\c\u00e9\ud83d\ude00","event_id":"\/1"}`,
			Event{Type: EventUpdate, Signature: "a\"b\\cé😀", EventID: "/1"}},
		{"escaped keys matched decoded", `{"t\u0079pe":"error","event\u005fid":"9"}`, Event{Type: EventError, EventID: "9"}},
		{"unknown keys skipped", `{"x":[1,{"y":[true,false,null]}],"type":"update","meta":{"extra":{"a":1},"status":200.0}}`,
			Event{Type: EventUpdate, Meta: EventMeta{Status: 200}}},
		{"data array", `{"type":"update","data":[{"op":"add","path":"/a","value":1}]}`,
			Event{Type: EventUpdate, Data: json.RawMessage(`[{"op":"add","path":"/a","value":1}]`)}},
		{"data scalar", `{"type":"update","data":"x"}`, Event{Type: EventUpdate, Data: json.RawMessage(`"x"`)}},
		{"whitespace everywhere", " \t\r\n{ \"type\" : \"update\" , \"data\" : 1 } \n", Event{Type: EventUpdate, Data: json.RawMessage(`1`)}},
		{"utf8 in data", `{"type":"update","data":{"name":"Café ☕ 😀"}}`, Event{Type: EventUpdate, Data: json.RawMessage(`{"name":"Café ☕ 😀"}`)}},
		{"negative latency", `{"type":"update","meta":{"latency_ms":-1}}`, Event{Type: EventUpdate, Meta: EventMeta{LatencyMS: -1}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev := Event{Type: "stale", EventID: "stale", Data: json.RawMessage("1")}
			if err := DecodeEvent([]byte(tt.in), &ev); err != nil {
				t.Fatalf("DecodeEvent: %v", err)
			}
			assertEvent(t, &ev, &tt.want)
		})
	}
}

func TestDecodeEventBad(t *testing.T) {
	tests := []struct {
		name, in  string
		malformed bool
		field     string // expected ParseError.Field
		msg       string // substring of the message
	}{
		{"empty", ``, true, "", "empty input"},
		{"only spaces", `   `, true, "", "empty input"},
		{"array", `[1,2]`, false, "", "not a JSON object"},
		{"string", `"update"`, false, "", "not a JSON object"},
		{"truncated", `{"type":"update"`, true, "", "unexpected end of input"},
		{"trailing garbage", `{"type":"update"} x`, true, "", "after the top-level value"},
		{"two objects", `{"type":"update"}{}`, true, "", "after the top-level value"},
		{"trailing comma", `{"type":"update",}`, true, "", "expected a string key"},
		{"missing colon", `{"type" "update"}`, true, "", "expected ':'"},
		{"single quotes", `{'type':'update'}`, true, "", "expected a string key"},
		{"bad escape", `{"type":"update","data":"\x"}`, true, "", `invalid escape \x`},
		{"short unicode escape", `{"type":"update","data":"\u12g4"}`, true, "", "not a hex digit"},
		{"raw control char", "{\"type\":\"update\",\"data\":\"a\nb\"}", true, "", "control character 0x0a"},
		{"invalid utf8", "{\"type\":\"update\",\"data\":\"\xff\"}", true, "", "invalid UTF-8"},
		{"utf8 surrogate bytes", "{\"type\":\"update\",\"data\":\"\xed\xa0\x80\"}", true, "", "invalid UTF-8"},
		{"overlong utf8", "{\"type\":\"update\",\"data\":\"\xc0\xaf\"}", true, "", "invalid UTF-8"},
		{"utf8 outside strings", "{\"type\":\"update\",\xc3\xa9:1}", true, "", "expected a string key"},
		{"leading zero", `{"type":"update","data":01}`, true, "", "expected ',' or '}'"},
		{"bare minus", `{"type":"update","data":-}`, true, "", "number has no digits"},
		{"dot without digits", `{"type":"update","data":1.}`, true, "", "after the decimal point"},
		{"exponent without digits", `{"type":"update","data":1e+}`, true, "", "exponent"},
		{"plus sign", `{"type":"update","data":+1}`, true, "", "beginning of a value"},
		{"NaN", `{"type":"update","data":NaN}`, true, "", "beginning of a value"},
		{"bad literal", `{"type":"update","data":nul}`, true, "", "expected null"},
		{"unterminated string", `{"type":"update","data":"abc`, true, "", "unterminated string"},
		{"too deep", `{"type":"update","data":` + strings.Repeat("[", 10001) + strings.Repeat("]", 10001) + `}`, true, "", "nesting deeper"},
		{"type missing", `{"data":{}}`, false, "type", "missing"},
		{"type unknown", `{"type":"delete"}`, false, "type", `"delete" is not`},
		{"type wrong case", `{"type":"Update"}`, false, "type", `"Update" is not`},
		{"type number", `{"type":1}`, false, "type", "must be the string"},
		{"type null", `{"type":null}`, false, "type", "must be the string"},
		{"duplicate type", `{"type":"update","type":"error"}`, false, "type", "duplicate key"},
		{"duplicate data", `{"type":"update","data":1,"data":2}`, false, "data", "duplicate key"},
		{"duplicate event id casings", `{"type":"update","event_id":"1","eventId":"2"}`, false, "eventId", "duplicate key"},
		{"duplicate meta status", `{"type":"update","meta":{"status":1,"status":2}}`, false, "meta.status", "duplicate key"},
		{"duplicate attempt casings", `{"type":"update","meta":{"attempt_id":"a","attemptId":"b"}}`, false, "meta.attemptId", "duplicate key"},
		{"meta array", `{"type":"update","meta":[]}`, false, "meta", "must be an object, got an array"},
		{"status string", `{"type":"update","meta":{"status":"200"}}`, false, "meta.status", "must be a number, got a string"},
		{"status fraction", `{"type":"update","meta":{"status":200.5}}`, false, "meta.status", "must be an integer"},
		{"latency huge", `{"type":"update","meta":{"latency_ms":1e300}}`, false, "meta.latency_ms", "must be an integer"},
		{"timestamp number", `{"type":"update","meta":{"timestamp":1}}`, false, "meta.timestamp", "must be a string, got a number"},
		{"event_id bool", `{"type":"update","event_id":true}`, false, "event_id", "must be a string or a number, got a boolean"},
		{"event_id array", `{"type":"update","eventId":["1"]}`, false, "eventId", "must be a string or a number, got an array"},
		{"error number", `{"type":"error","error":5}`, false, "error", "must be an object or a string, got a number"},
		{"syntax error after a wrong type wins", `{"meta":0000`, true, "", "expected ',' or '}'"},
		{"syntax error inside wrong type wins", `{"type":"update","signature":{"a":}}`, true, "", "beginning of a value"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ev Event
			err := DecodeEvent([]byte(tt.in), &ev)
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("DecodeEvent(%q) = %v, want a *ParseError", tt.in, err)
			}
			if !errors.Is(err, ErrRestless) {
				t.Error("errors.Is(err, ErrRestless) = false")
			}
			if pe.Malformed() != tt.malformed || pe.Field != tt.field || !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("got %q (malformed=%v field=%q), want malformed=%v field=%q containing %q",
					err, pe.Malformed(), pe.Field, tt.malformed, tt.field, tt.msg)
			}
			if tt.malformed && json.Valid([]byte(tt.in)) && !strings.Contains(tt.msg, "UTF-8") {
				t.Errorf("encoding/json accepts %q", tt.in)
			}
		})
	}
}

func TestDecodeEventAliasesInput(t *testing.T) {
	in := []byte(`{"type":"update","data":{"a":1}}`)
	var ev Event
	if err := DecodeEvent(in, &ev); err != nil {
		t.Fatal(err)
	}
	in[len(in)-3] = '2'
	if string(ev.Data) != `{"a":2}` {
		t.Errorf("Data = %s, want it to alias the input", ev.Data)
	}
	if cap(ev.Data) != len(ev.Data) {
		t.Error("Data has spare capacity: an append could overwrite the input")
	}
	p, err := ParseEvent(in)
	if err != nil {
		t.Fatal(err)
	}
	in[len(in)-3] = '3'
	if string(p.Data) != `{"a":2}` {
		t.Errorf("ParseEvent Data = %s, want its own copy", p.Data)
	}
	if _, err := ParseEvent([]byte(`{}`)); err == nil {
		t.Error("ParseEvent accepted an event without type")
	}
}

func TestErrorMessage(t *testing.T) {
	tests := []struct{ err, want string }{
		{``, ""},
		{`{"message":"upstream timeout","code":504}`, "upstream timeout"},
		{`{"code":504}`, `{"code":504}`},
		{`{"message":5}`, `{"message":5}`},
		{`"plain \"text\""`, `plain "text"`},
	}
	for _, tt := range tests {
		ev := Event{Type: EventError}
		if tt.err != "" {
			ev.Error = json.RawMessage(tt.err)
		}
		if got := ev.ErrorMessage(); got != tt.want {
			t.Errorf("ErrorMessage(%s) = %q, want %q", tt.err, got, tt.want)
		}
	}
}

func TestEventIDOf(t *testing.T) {
	tests := []struct {
		in, id string
		ok     bool
	}{
		{sampleEvent, "1780793376562", true},
		{`{"eventId":"abc"}`, "abc", true},
		{`{"event_id":42}`, "42", true},
		{`{"event\u005fid":"x\u0041"}`, "xA", true},
		{`{"data":{"event_id":"inner"},"s":"}\"{","event_id":"outer"}`, "outer", true},
		{`{"data":[1,[2,{"event_id":"inner"}]], "n": -1.5e3 ,"event_id" : "7"}`, "7", true},
		{`{"type":"update"}`, "", false},
		{`{"event_id":null}`, "", false},
		{`{"event_id":true}`, "", false},
		{`[{"event_id":"1"}]`, "", false},
		{``, "", false},
		{`{"event_id":"unterminated`, "", false},
		{`{"a":"\u12`, "", false},
		{`{"a\u12":1}`, "", false},
	}
	// Strings of every length around the point where the skipper hands a
	// string on to quickString, with escaped quotes and backslashes at
	// every place, hiding an event_id that must not be found.
	for n := 0; n < 40; n++ {
		for _, esc := range []string{`\"`, `\\`, `\\\"`, `x`} {
			for at := 0; at <= n; at += 3 {
				str := strings.Repeat("a", at) + esc + strings.Repeat("b", n-at) + `\",\"event_id\":\"no`
				in := `{"data":{"s":"` + str + `","t":["` + str + `"]},"s":"` + str + `","event_id":"yes"}`
				tests = append(tests, struct {
					in, id string
					ok     bool
				}{in, "yes", true})
			}
		}
	}
	for _, tt := range tests {
		id, ok := EventIDOf([]byte(tt.in))
		if id != tt.id || ok != tt.ok {
			t.Errorf("EventIDOf(%q) = %q, %v; want %q, %v", tt.in, id, ok, tt.id, tt.ok)
		}
	}
}

func TestDecodeEventAllocs(t *testing.T) {
	b := benchEvent()
	var ev Event
	n := testing.AllocsPerRun(100, func() {
		if err := DecodeEvent(b, &ev); err != nil {
			t.Fatal(err)
		}
	})
	if n > 1 {
		t.Errorf("DecodeEvent makes %v allocations per event, want at most 1", n)
	}
}

func TestDecodeEventDepthLimit(t *testing.T) {
	// The envelope is one level: data nested n deep makes n+1 in all.
	for _, tt := range []struct {
		n  int
		ok bool
	}{{maxDepth - 1, true}, {maxDepth, false}, {10000, false}} {
		for _, open := range []string{"[", `{"a":`} {
			close := "]"
			if open != "[" {
				close = "}"
			}
			in := []byte(`{"type":"update","data":` + strings.Repeat(open, tt.n) + "1" + strings.Repeat(close, tt.n) + `}`)
			var ev Event
			err := DecodeEvent(in, &ev)
			if (err == nil) != tt.ok {
				t.Errorf("%s nested %d: DecodeEvent error %v, want ok %v", open, tt.n, err, tt.ok)
			}
			var pe *ParseError
			if err != nil && !errors.As(err, &pe) {
				t.Errorf("%s nested %d: %v is not a *ParseError", open, tt.n, err)
			}
			if ok := DecodeEventCanonical(in, &ev); ok != (err == nil) {
				t.Errorf("%s nested %d: DecodeEventCanonical %v, DecodeEvent error %v", open, tt.n, ok, err)
			}
			if _, cerr := Canonical(nil, in); (cerr == nil) != tt.ok {
				t.Errorf("%s nested %d: Canonical error %v, want ok %v", open, tt.n, cerr, tt.ok)
			}
		}
	}
}
