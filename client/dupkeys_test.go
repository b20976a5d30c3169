package client

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// manyKeys returns an object of n distinct keys k0..k(n-1), then extra.
func manyKeys(n int, extra string) string {
	var b strings.Builder
	b.WriteByte('{')
	for i := range n {
		fmt.Fprintf(&b, `"k%d":%d,`, i, i)
	}
	b.WriteString(extra)
	b.WriteByte('}')
	return b.String()
}

// TestDuplicateKeys: an event with a key twice in any object, compared
// after unescaping, is a parse error for every decoder, and data with a
// duplicate never verifies.
func TestDuplicateKeys(t *testing.T) {
	const sig = `"signature":"` + "0000000000000000000000000000000000000000000000000000000000000000" + `"`
	tests := []struct {
		name  string
		event string
		dup   bool
	}{
		{"data", `{"type":"update","data":{"role":"admin","role":"user"}}`, true},
		{"data escaped", `{"type":"update","data":{"role":"admin","r\u006fle":"user"}}`, true},
		{"data nested", `{"type":"update","data":{"a":[1,{"b":1,"c":{},"b":2}]}}`, true},
		{"data surrogate escape", `{"type":"update","data":{"😀":1,"\ud83d\ude00":2}}`, true},
		{"data large object", `{"type":"update","data":` + manyKeys(40, `"k7":0`) + `}`, true},
		{"data large object escaped", `{"type":"update","data":` + manyKeys(40, `"\u006b39":0`) + `}`, true},
		{"envelope signature escaped", `{"type":"update",` + sig + `,"sign\u0061ture":"x"}`, true},
		{"envelope signature all escaped", `{"type":"update",` + sig + `,"\u0073\u0069\u0067\u006e\u0061\u0074\u0075\u0072\u0065":"x"}`, true},
		{"envelope type escaped", `{"type":"update","t\u0079pe":"error"}`, true},
		{"envelope unknown key", `{"type":"update","x":1,"x":2}`, true},
		{"envelope unknown key escaped", `{"type":"update","x":1,"\u0078":2}`, true},
		{"envelope many unknown keys", strings.TrimSuffix(manyKeys(30, `"type":"update","k3":1`), "}") + "}", true},
		{"meta unknown key", `{"type":"update","meta":{"a":1,"a":2}}`, true},
		{"error object", `{"type":"error","error":{"code":1,"code":2}}`, true},
		{"keys equal in different objects", `{"type":"update","data":{"a":{"a":1},"b":{"a":2}},"a":3}`, false},
		{"many distinct keys", `{"type":"update","data":` + manyKeys(200, `"z":0`) + `}`, false},
		{"prefix is not a duplicate", `{"type":"update","data":{"ab":1,"a":2,"a\u0062c":3}}`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := []byte(tt.event)
			var ev Event
			err := DecodeEvent(b, &ev)
			var pe *ParseError
			if tt.dup {
				if !errors.As(err, &pe) || pe.Malformed() || !strings.Contains(pe.Error(), "duplicate key") {
					t.Fatalf("DecodeEvent = %v, want a *ParseError for a duplicate key", err)
				}
			} else if err != nil {
				t.Fatalf("DecodeEvent = %v", err)
			}
			// (DecodeEventCanonical also says no to data not in canonical
			// form; it may never say yes where DecodeEvent says no.)
			if ok := DecodeEventCanonical(b, &ev); ok && err != nil {
				t.Fatalf("DecodeEventCanonical accepts, DecodeEvent %v", err)
			}
		})
	}
}

// TestVerifyRefusesDuplicateKeys: data signed over its last-wins reading
// does not verify: a first-wins reader would see a value never signed.
func TestVerifyRefusesDuplicateKeys(t *testing.T) {
	v, err := NewVerifier([]string{"secret"})
	if err != nil {
		t.Fatal(err)
	}
	for _, data := range []string{
		`{"role":"admin","role":"user"}`,
		`{"role":"admin","r\u006fle":"user"}`,
		`[{"a":1,"a":2}]`,
		manyKeys(40, `"k1":9`),
	} {
		sig, err := ComputeSignatureRaw("secret", []byte(data))
		if err != nil {
			t.Fatal(err)
		}
		for name, verify := range map[string]func([]byte, string) error{"Verify": v.Verify, "VerifyCanonical": v.VerifyCanonical} {
			if err := verify([]byte(data), sig); !errors.Is(err, ErrSignatureInvalid) {
				t.Errorf("%s(%s) = %v, want ErrSignatureInvalid", name, data, err)
			}
		}
	}
}
