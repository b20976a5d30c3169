package client

import (
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

const (
	vector1Hex = "0e8d5075fec7809ec154d186f8b561bfd9f984bb8f9732c2784425d2f4987f8b"
	vector2Hex = "56007b0cb89c20c6a341e5a44c89d742cfbf7769b39b6fb9c5285e1b8e4a8a6f"
)

func TestSignatureVectors(t *testing.T) {
	tests := []struct {
		name    string
		payload any
		want    string
	}{
		{"vector 1 map", map[string]any{"id": "order_123", "total": 42}, vector1Hex},
		{"vector 1 raw", json.RawMessage(`{ "total": 42, "id": "order_123" }`), vector1Hex},
		{"vector 2 map", map[string]any{"total": 42, "id": "order_123", "name": "Café"}, vector2Hex},
		{"vector 2 struct", struct {
			Total int    `json:"total"`
			ID    string `json:"id"`
			Name  string `json:"name"`
		}{42, "order_123", "Café"}, vector2Hex},
		{"vector 2 json.Number", map[string]any{"total": json.Number("42"), "id": "order_123", "name": "Caf\u00e9"}, vector2Hex},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ComputeSignature("secret", tt.payload)
			if err != nil || got != tt.want {
				t.Fatalf("ComputeSignature = %q, %v; want %q", got, err, tt.want)
			}
			if !VerifySignature("secret", tt.payload, tt.want) {
				t.Error("VerifySignature = false")
			}
			if VerifySignature("other", tt.payload, tt.want) {
				t.Error("VerifySignature with the wrong secret = true")
			}
		})
	}
	got, err := ComputeSignatureRaw("secret", []byte(`{"name":"Caf\u00e9","total":42,"id":"order_123"}`))
	if err != nil || got != vector2Hex {
		t.Errorf("ComputeSignatureRaw = %q, %v; want %q", got, err, vector2Hex)
	}
	if _, err := ComputeSignatureRaw("secret", []byte(`{`)); err == nil {
		t.Error("ComputeSignatureRaw accepted invalid JSON")
	}
	if _, err := ComputeSignature("secret", func() {}); err == nil {
		t.Error("ComputeSignature accepted an unmarshalable payload")
	}
	// No HTML escaping: <>& are signed raw.
	a, _ := ComputeSignature("k", map[string]string{"h": "<a&b>"})
	b, _ := ComputeSignatureRaw("k", []byte(`{"h":"<a&b>"}`))
	if a != b {
		t.Error("ComputeSignature escapes HTML characters")
	}
}

func TestVerifier(t *testing.T) {
	data := []byte(`{"total":42,"name":"Caf\u00e9","id":"order_123"}`) // not canonical
	canonical := []byte(`{"id":"order_123","name":"Café","total":42}`)
	mac, _ := hex.DecodeString(vector2Hex)
	v, err := NewVerifier([]string{"old", "", "secret"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		data []byte
		sig  string
		want error
	}{
		{"lowercase hex", data, vector2Hex, nil},
		{"canonical data", canonical, vector2Hex, nil},
		{"uppercase hex", data, strings.ToUpper(vector2Hex), nil},
		{"prefixed", data, "sha256=" + vector2Hex, nil},
		{"prefixed uppercase", data, "SHA256=" + vector2Hex, nil},
		{"base64", data, base64.StdEncoding.EncodeToString(mac), nil},
		{"base64 unpadded", data, base64.RawStdEncoding.EncodeToString(mac), nil},
		{"base64 url", data, base64.URLEncoding.EncodeToString(mac), nil},
		{"missing", data, "", ErrSignatureMissing},
		{"wrong", data, vector1Hex, ErrSignatureInvalid},
		{"other data", []byte(`{"id":"order_124"}`), vector2Hex, ErrSignatureInvalid},
		{"not hex", data, strings.Repeat("z", 64), ErrSignatureInvalid},
		{"short hex", data, vector2Hex[:62], ErrSignatureInvalid},
		{"one bad digit last", data, vector2Hex[:63] + "g", ErrSignatureInvalid},
		{"one bad digit first", data, "/" + vector2Hex[1:], ErrSignatureInvalid},
		{"non-ASCII in hex", data, vector2Hex[:62] + "é", ErrSignatureInvalid},
		{"bad base64", data, strings.Repeat("!", 43) + "=", ErrSignatureInvalid},
		{"base64 bad padding", data, base64.RawStdEncoding.EncodeToString(mac) + "x", ErrSignatureInvalid},
		{"data not JSON", []byte(`{`), vector2Hex, ErrSignatureInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := v.Verify(tt.data, tt.sig)
			if tt.want == nil && err != nil || tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("Verify = %v, want %v", err, tt.want)
			}
		})
	}
	// Absent data is signed as null.
	nullSig, _ := ComputeSignatureRaw("secret", []byte("null"))
	if err := v.Verify(nil, nullSig); err != nil {
		t.Errorf("Verify(nil data) = %v", err)
	}
}

func TestVerifierOptions(t *testing.T) {
	if _, err := NewVerifier(nil); err == nil {
		t.Error("NewVerifier(nil) succeeded")
	}
	if _, err := NewVerifier([]string{""}); err == nil {
		t.Error("NewVerifier with only empty secrets succeeded")
	}
	// A canonicalizer that signs the bytes as received.
	asIs := func(dst, raw []byte) ([]byte, error) { return append(dst, raw...), nil }
	v, err := NewVerifier([]string{"secret"}, WithCanonicalizer(asIs))
	if err != nil {
		t.Fatal(err)
	}
	raw := []byte(`{"total":42,"id":"order_123"}`)
	if err := v.Verify(raw, vector1Hex); !errors.Is(err, ErrSignatureInvalid) {
		t.Errorf("as-received canonicalizer verified the sorted form: %v", err)
	}
	sig := hmacHex("secret", raw)
	if err := v.Verify(raw, sig); err != nil {
		t.Errorf("as-received canonicalizer: %v", err)
	}
	// The shortcut must not bypass a custom canonicalizer for canonical input.
	upper := func(dst, raw []byte) ([]byte, error) { return append(dst, strings.ToUpper(string(raw))...), nil }
	v2, _ := NewVerifier([]string{"secret"}, WithCanonicalizer(upper))
	if err := v2.Verify([]byte(`{"id":"order_123","total":42}`), vector1Hex); err == nil {
		t.Error("custom canonicalizer skipped for canonical data")
	}
	if err := v2.VerifyCanonical([]byte(`{"id":"order_123","total":42}`), vector1Hex); err == nil {
		t.Error("VerifyCanonical skipped a custom canonicalizer")
	}
	failing := func(dst, raw []byte) ([]byte, error) { return dst, errors.New("boom") }
	v3, _ := NewVerifier([]string{"secret"}, WithCanonicalizer(failing))
	if err := v3.Verify(raw, vector1Hex); !errors.Is(err, ErrSignatureInvalid) || !strings.Contains(err.Error(), "boom") {
		t.Errorf("failing canonicalizer: %v", err)
	}
}

// TestVerifyCanonical: data known canonical is hashed as it is; data that
// is not canonical fails, as its bytes are not what was signed.
func TestVerifyCanonical(t *testing.T) {
	v, err := NewVerifier([]string{"secret"})
	if err != nil {
		t.Fatal(err)
	}
	canonical := []byte(`{"id":"order_123","total":42}`)
	if err := v.VerifyCanonical(canonical, vector1Hex); err != nil {
		t.Errorf("canonical data: %v", err)
	}
	if err := v.VerifyCanonical(nil, hmacHex("secret", []byte("null"))); err != nil {
		t.Errorf("absent data: %v", err)
	}
	spaced := []byte(`{"id": "order_123", "total": 42}`)
	if err := v.Verify(spaced, vector1Hex); err != nil {
		t.Errorf("Verify of the spaced form: %v", err)
	}
	if err := v.VerifyCanonical(spaced, vector1Hex); !errors.Is(err, ErrSignatureInvalid) {
		t.Errorf("VerifyCanonical of data that is not canonical = %v, want ErrSignatureInvalid", err)
	}
	if err := v.VerifyCanonical(canonical, ""); !errors.Is(err, ErrSignatureMissing) {
		t.Errorf("no signature = %v", err)
	}
}

func hmacHex(secret string, msg []byte) string {
	v, _ := NewVerifier([]string{secret})
	st := v.macs[0].Get().(*macState)
	st.h.Reset()
	st.h.Write(msg)
	return hex.EncodeToString(st.h.Sum(nil))
}

func TestVerifyAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under the race detector")
	}
	v, _ := NewVerifier([]string{"secret"})
	for _, canonical := range []bool{true, false} {
		data := benchData(canonical)
		sig, _ := ComputeSignatureRaw("secret", data)
		if err := v.Verify(data, sig); err != nil {
			t.Fatal(err)
		}
		n := testing.AllocsPerRun(100, func() { _ = v.Verify(data, sig) })
		if n > 0 {
			t.Errorf("Verify (canonical=%v) allocates %v times", canonical, n)
		}
	}
}

// benchData returns about 1 KiB of order data, canonical or not.
func benchData(canonical bool) []byte {
	var ev Event
	if err := DecodeEvent(benchEvent(), &ev); err != nil {
		panic(err)
	}
	if canonical {
		out, err := Canonical(nil, ev.Data)
		if err != nil {
			panic(err)
		}
		return out
	}
	return append([]byte(nil), ev.Data...)
}

func BenchmarkVerify(b *testing.B) {
	v, _ := NewVerifier([]string{"secret"})
	for _, tc := range []struct {
		name      string
		canonical bool
	}{{"canonical", true}, {"non-canonical", false}} {
		data := benchData(tc.canonical)
		sig, _ := ComputeSignatureRaw("secret", data)
		b.Run(tc.name, func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for b.Loop() {
				if err := v.Verify(data, sig); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkCanonical(b *testing.B) {
	data := benchData(false)
	dst := make([]byte, 0, 2048)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Canonical(dst[:0], data); err != nil {
			b.Fatal(err)
		}
	}
}
