package client

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// benchEvent returns a realistic update event of about 1 KiB.
func benchEvent() []byte {
	var items []string
	for i := range 6 {
		items = append(items, fmt.Sprintf(`{"id":"order_%04d","status":"open","total":%d.95,"currency":"EUR","customer":{"name":"Zoë Müller","email":"zoe%d@example.com"},"tags":["priority","web"]}`, i, 40+i, i))
	}
	data := `{"orders":[` + strings.Join(items, ",") + `],"page":1,"hasMore":false}`
	return []byte(`{"type":"update","meta":{"timestamp":"2026-06-07T00:49:36.562+00:00","attempt_id":"a59d80d4-7d36-4019-b2c6-40cc8b8742ce","status":200,"latency_ms":43,"payload_mode_fallback":null},"data":` +
		data + `,"error":null,"signature":"0e8d5075fec7809ec154d186f8b561bfd9f984bb8f9732c2784425d2f4987f8b","event_id":"1780793376562"}`)
}

// BenchmarkDecodeEvent compares DecodeEvent with encoding/json decoding the
// same envelope into a struct (data kept raw).
func BenchmarkDecodeEvent(b *testing.B) {
	in := benchEvent()
	b.Run("DecodeEvent", func(b *testing.B) {
		b.SetBytes(int64(len(in)))
		b.ReportAllocs()
		var ev Event
		for b.Loop() {
			if err := DecodeEvent(in, &ev); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encoding_json", func(b *testing.B) {
		type meta struct {
			Timestamp           string          `json:"timestamp"`
			AttemptID           string          `json:"attempt_id"`
			Status              int             `json:"status"`
			LatencyMS           int64           `json:"latency_ms"`
			PayloadModeFallback json.RawMessage `json:"payload_mode_fallback"`
		}
		type event struct {
			Type      string          `json:"type"`
			Meta      meta            `json:"meta"`
			Data      json.RawMessage `json:"data"`
			Error     json.RawMessage `json:"error"`
			Signature *string         `json:"signature"`
			EventID   json.Number     `json:"event_id"`
		}
		b.SetBytes(int64(len(in)))
		b.ReportAllocs()
		for b.Loop() {
			var ev event
			if err := json.Unmarshal(in, &ev); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("EventIDOf", func(b *testing.B) { benchmarkEventIDOf(b, in) })
	// A firehose event: data is one long string, which the id's reader
	// skips with vector instructions.
	long := []byte(`{"type":"update","meta":{"timestamp":"2026-06-07T00:49:36.562Z"},"data":{"n":1,"pad":"` +
		strings.Repeat("x", 900) + `"},"error":null,"signature":"0e8d","event_id":"1780793376562"}`)
	b.Run("EventIDOfLongString", func(b *testing.B) { benchmarkEventIDOf(b, long) })
	// Decoding and the canonical check of data, apart and in one pass.
	b.Run("DecodeEventThenIsCanonical", func(b *testing.B) {
		b.SetBytes(int64(len(long)))
		b.ReportAllocs()
		var ev Event
		for b.Loop() {
			if err := DecodeEvent(long, &ev); err != nil || !IsCanonical(ev.Data) {
				b.Fatal(err)
			}
		}
	})
	b.Run("DecodeEventCanonical", func(b *testing.B) {
		b.SetBytes(int64(len(long)))
		b.ReportAllocs()
		var ev Event
		for b.Loop() {
			if !DecodeEventCanonical(long, &ev) {
				b.Fatal("not canonical")
			}
		}
	})
}

func benchmarkEventIDOf(b *testing.B, in []byte) {
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := EventIDOf(in); !ok {
			b.Fatal("no id")
		}
	}
}
