package sse

import (
	"bytes"
	"testing"
	"unicode/utf8"
)

// FuzzDecoderChunking checks that any split of the input into reads, and any
// buffer size, gives exactly the events, retry and last event ID of decoding
// it in one read, and that those equal the reference decoder's. With valid
// UTF-8 input it also checks the limits against the reference, with a small
// limit so that they are reached.
func FuzzDecoderChunking(f *testing.F) {
	for _, tc := range sseCases {
		f.Add([]byte(tc.in), []byte{1, 2, 3, 0, 7, 64}, uint8(0), uint16(tc.max))
	}
	f.Add([]byte("data:a\r\n\r\n"), []byte{7}, uint8(3), uint16(2))
	f.Add([]byte("\xEF\xBB\xBFdata:€\r\n\r\n"), []byte{1}, uint8(1), uint16(3))
	f.Add([]byte("id:1\ndata:abcdefghijklmnopqrstuvwxyz\n\nid:\n\n"), []byte{5, 255}, uint8(0), uint16(4))

	f.Fuzz(func(t *testing.T, input, chunks []byte, bufSize uint8, limit uint16) {
		whole, err := sseDecodeAll(NewDecoder(bytes.NewReader(input)))
		if err != nil {
			t.Fatalf("one read: %v", err)
		}
		if ref := sseRefDecode(input, DefaultMaxEventBytes); !ref.equal(whole) {
			t.Fatalf("differs from the reference\n got %+v\n ref %+v", whole, ref)
		}

		size := sseMinBufSize + int(bufSize)%64
		chunked, err := sseDecodeAll(newDecoderSize(&sseChunkReader{data: input, sizes: chunks}, size))
		if err != nil {
			t.Fatalf("chunked: %v", err)
		}
		if !chunked.equal(whole) {
			t.Fatalf("chunked (buffer %d, chunks %v) differs from one read\n got %+v\nwant %+v", size, chunks, chunked, whole)
		}

		// The reference measures limits on decoded text: equal to the
		// stream's bytes only for valid UTF-8.
		if !utf8.Valid(input) {
			return
		}
		n := 1 + int(limit)%64
		d := newDecoderSize(&sseChunkReader{data: input, sizes: chunks}, size)
		d.SetMaxEventBytes(n)
		limited, err := sseDecodeAll(d)
		if err != nil {
			t.Fatalf("limited: %v", err)
		}
		if ref := sseRefDecode(input, n); !ref.equal(limited) {
			t.Fatalf("limit %d: differs from the reference\n got %+v\n ref %+v", n, limited, ref)
		}
	})
}
