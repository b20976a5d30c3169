package client

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
)

// The expected outputs were produced by Python's
// json.dumps(json.loads(in), sort_keys=True, separators=(",", ":"), ensure_ascii=False).
var canonicalCases = []struct{ name, in, want string }{
	{"vector 2", `{"total":42,"id":"order_123","name":"Caf\u00e9"}`, `{"id":"order_123","name":"Café","total":42}`},
	{"nested", `{"b":1,"a":{"d":[1,2,{"z":null,"y":true}],"c":"x"}}`, `{"a":{"c":"x","d":[1,2,{"y":true,"z":null}]},"b":1}`},
	{"escapes", `{"s":"tab\there \"q\" back\\slash \/ <>& \u2028\u2029 \u007f"}`, "{\"s\":\"tab\\there \\\"q\\\" back\\\\slash / <>& \u2028\u2029 \x7f\"}"},
	{"control chars", `{"c":"\u0000\u0001\u001F\b\f\n\r\t\u0008\u000A"}`, `{"c":"\u0000\u0001\u001f\b\f\n\r\t\b\n"}`},
	{"surrogate pair", `{"emoji":"\ud83d\ude00","raw":"😀"}`, `{"emoji":"😀","raw":"😀"}`},
	{"code point order", `{"é":1,"e":2,"z":3,"\u00e9a":4,"😀":5,"\uffff":6}`, "{\"e\":2,\"z\":3,\"é\":1,\"éa\":4,\"\uffff\":6,\"😀\":5}"},
	{"duplicate keeps last", `{"a":1,"a":2}`, `{"a":2}`},
	{"duplicate keeps last, nested", `{"a":{"x":1},"b":0,"a":{"y":2}}`, `{"a":{"y":2},"b":0}`},
	{"escaped keys sort decoded", `{"a\"b":1,"a#":2,"a":3}`, `{"a":3,"a\"b":1,"a#":2}`},
	{"whitespace", "[1, 2 ,\n 3]", `[1,2,3]`},
	{"top-level string", ` "top" `, `"top"`},
	{"empty containers", `{"ü":{"b":[],"a":{}}}`, `{"ü":{"a":{},"b":[]}}`},
	{"numbers as received", `{"n":[1.0,1e2,-0,1E+2,0.10]}`, `{"n":[1.0,1e2,-0,1E+2,0.10]}`},
	{"lone surrogates", `{"x":"\ud800","\udc00":1,"\ud7ff":2,"\ue000":3,"y":"\uDBFF\u0041"}`,
		"{\"x\":\"\\ud800\",\"y\":\"\\udbffA\",\"\ud7ff\":2,\"\\udc00\":1,\"\ue000\":3}"},
	{"literals", `[true,false,null]`, `[true,false,null]`},
}

func TestCanonical(t *testing.T) {
	for _, tt := range canonicalCases {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Canonical([]byte("prefix:"), []byte(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != "prefix:"+tt.want {
				t.Errorf("Canonical(%s)\n got %s\nwant %s", tt.in, got[7:], tt.want)
			}
			if !IsCanonical([]byte(tt.want)) {
				t.Errorf("IsCanonical(%s) = false", tt.want)
			}
			if tt.in != tt.want && IsCanonical([]byte(tt.in)) {
				t.Errorf("IsCanonical(%s) = true for non-canonical input", tt.in)
			}
		})
	}
}

func TestCanonicalErrors(t *testing.T) {
	for _, in := range []string{``, `{`, `{"a":1,}`, `[1 2]`, "\"\xff\"", `{"a":1} {}`, `{"a":nul}`, `01`} {
		dst := []byte("keep")
		got, err := Canonical(dst, []byte(in))
		var pe *ParseError
		if !errors.As(err, &pe) || !pe.Malformed() || !strings.Contains(err.Error(), "canonical JSON") {
			t.Errorf("Canonical(%q) error = %v, want a malformed *ParseError about canonical JSON", in, err)
		}
		if string(got) != "keep" {
			t.Errorf("Canonical(%q) changed dst to %q", in, got)
		}
		if IsCanonical([]byte(in)) {
			t.Errorf("IsCanonical(%q) = true", in)
		}
	}
}

func TestIsCanonical(t *testing.T) {
	tests := []struct {
		in   string
		want bool
	}{
		{`{"a":1,"b":[1,2,{"c":null}]}`, true},
		{`{}`, true},
		{`"x"`, true},
		{`1.50`, true},
		{`{"b":1,"a":2}`, false},    // unsorted
		{`{"a":1,"a":2}`, false},    // duplicate
		{`{"a": 1}`, false},         // whitespace
		{` {"a":1}`, false},         // leading whitespace
		{`{"a":1} `, false},         // trailing whitespace
		{`"\/"`, false},             // needless escape
		{`"\u00e9"`, false},         // escaped non-control
		{`"\u000a"`, false},         // control with a short form
		{`"\u001F"`, false},         // uppercase hex
		{`"\u001f"`, true},          // control without a short form
		{`"\ud83d\ude00"`, false},   // pair: written raw
		{`"\ud83d"`, true},          // lone high surrogate
		{`"\ude00"`, true},          // lone low surrogate
		{`"\uD83D"`, false},         // uppercase surrogate
		{`{"a\"b":1,"a#":2}`, true}, // '"' < '#' once decoded
		{`{"a#":1,"a\"b":2}`, false},
		{"\"\x7f\u2028\"", true},
		{"\"\xff\"", false},
	}
	for _, tt := range tests {
		if got := IsCanonical([]byte(tt.in)); got != tt.want {
			t.Errorf("IsCanonical(%s) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestCanonicalAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under the race detector")
	}
	in := []byte(`{"b":{"y":[1,2,3],"x":"caf\u00e9"},"a":"z"}`)
	dst := make([]byte, 0, 256)
	Canonical(dst, in) // warm the pool
	if n := testing.AllocsPerRun(100, func() { Canonical(dst[:0], in) }); n > 0 {
		t.Errorf("Canonical allocates %v times per call with a large enough dst", n)
	}
	data := benchData(true)
	if n := testing.AllocsPerRun(100, func() { IsCanonical(data) }); n > 0 {
		t.Errorf("IsCanonical allocates %v times", n)
	}
}

func FuzzCanonical(f *testing.F) {
	for _, c := range canonicalCases {
		f.Add([]byte(c.in))
	}
	f.Add(benchData(false))
	f.Add([]byte(`{"\ud800":"\udfff\ud800\udc00"}`))
	f.Fuzz(func(t *testing.T, in []byte) {
		out, err := Canonical(nil, in)
		if err != nil {
			if IsCanonical(in) {
				t.Fatalf("IsCanonical(%q) but Canonical fails: %v", in, err)
			}
			return
		}
		if !json.Valid(out) {
			t.Fatalf("Canonical(%q) = %q, not valid JSON", in, out)
		}
		if !IsCanonical(out) {
			t.Fatalf("IsCanonical(Canonical(%q) = %q) = false", in, out)
		}
		again, err := Canonical(nil, out)
		if err != nil || string(again) != string(out) {
			t.Fatalf("not idempotent: %q -> %q -> %q (%v)", in, out, again, err)
		}
		if IsCanonical(in) && string(in) != string(out) {
			t.Fatalf("IsCanonical(%q) but Canonical changed it to %q", in, out)
		}
		// Equal in meaning (encoding/json replaces lone surrogates alike on both sides).
		a, errA := decodeNumbers(in)
		b, errB := decodeNumbers(out)
		if errA != nil || errB != nil {
			t.Fatalf("encoding/json rejects %q or %q: %v, %v", in, out, errA, errB)
		}
		if !reflect.DeepEqual(a, b) {
			t.Fatalf("meaning changed: %q -> %q", in, out)
		}
	})
}

// decodeNumbers decodes JSON keeping numbers as written.
func decodeNumbers(b []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	err := dec.Decode(&v)
	return v, err
}
