package checkpoint

import (
	"testing"

	"github.com/segmentio/kafka-go"
)

func FuzzDecodeKVValue(f *testing.F) {
	c := "1780793376562"
	f.Add(encodeKVValue(kvValue{Epoch: 3, Holder: "a/1", Cursor: &c}))
	f.Add([]byte("plain-cursor"))
	f.Add([]byte(fencedPrefix + "{}"))
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := decodeKVValue(b)
		if err != nil {
			return
		}
		if v.Cursor != nil && (len(*v.Cursor) == 0 || len(*v.Cursor) > maxCursorLen) {
			t.Fatalf("cursor of %d bytes accepted", len(*v.Cursor))
		}
	})
}

// FuzzKafkaApply: any record in the checkpoint topic, ours or not, leaves a
// readable state and never panics.
func FuzzKafkaApply(f *testing.F) {
	k := newKafkaState()
	c := "5"
	rec := k.record("orders", kafkaValue{Epoch: 2, Holder: "a/1", Cursor: &c})
	key, _ := readBytes(rec.Key, 512)
	value, _ := readBytes(rec.Value, maxKafkaValue)
	f.Add(key, value)
	f.Add([]byte("orders/0"), []byte("{}"))
	f.Add([]byte("nonsense"), []byte(nil))
	f.Fuzz(func(t *testing.T, key, value []byte) {
		k := newKafkaState()
		r := kafka.Record{Key: kafka.NewBytes(key)}
		if value != nil {
			r.Value = kafka.NewBytes(value)
		}
		if err := k.apply(&r); err != nil {
			t.Fatal(err)
		}
		for s, st := range k.streams {
			if ValidateStream(s) != nil {
				t.Fatalf("state for stream %q", s)
			}
			if st.corrupt == nil && st.found && validateCursor(s, st.cursor) != nil {
				t.Fatalf("cursor %q accepted", st.cursor)
			}
		}
	})
}
