package sse

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"
	"time"
	"unicode/utf8"
)

// sseWant is one expected event of a conformance case.
type sseWant struct {
	Event
	TooLarge bool
}

func msg(data string) sseWant { return sseWant{Event: Event{Type: "message", Data: data}} }
func msgID(data, id string) sseWant {
	return sseWant{Event: Event{Type: "message", Data: data, ID: id}}
}
func typed(typ, data string) sseWant { return sseWant{Event: Event{Type: typ, Data: data}} }
func large(typ, data, id string) sseWant {
	return sseWant{Event: Event{Type: typ, Data: data, ID: id}, TooLarge: true}
}

type sseCase struct {
	name   string
	in     string
	max    int // 0: the default
	want   []sseWant
	retry  string // expected Retry at the end ("" = none), as a time.Duration string
	lastID string // expected LastEventID at the end
}

// sseCases is the conformance table: the web-platform-tests eventsource/
// format-* cases (streams rebuilt from their resources: message.py sends the
// message, then "\n\n" unless newline=none, then "\n"), then one case or more
// for every rule of the WHATWG parsing and interpretation algorithm.
var sseCases = []sseCase{
	// web-platform-tests eventsource/
	{name: "wpt/eventsource-onmessage", in: "data: data\n\n\n", want: []sseWant{msg("data")}},
	{name: "wpt/format-bom", in: "\uFEFFdata:1\n\n\uFEFFdata:2\n\ndata:3\n\n\n", want: []sseWant{msg("1"), msg("3")}},
	{name: "wpt/format-bom-2", in: "\uFEFF\uFEFFdata:1\n\ndata:2\n\ndata:3\n\n\n", want: []sseWant{msg("2"), msg("3")}},
	{
		name: "wpt/format-comments",
		in: "data:1\r:\x00\n:\r\ndata:2\n:" + strings.Repeat("x", 2048) + "\rdata:3\n:data:fail\r:" +
			strings.Repeat("x", 2048) + "\ndata:4\n\n",
		want: []sseWant{msg("1\n2\n3\n4")},
	},
	{
		name:  "wpt/format-data-before-final-empty-line",
		in:    "retry:1000\ndata:test1\n\nid:test\ndata:test2\n",
		want:  []sseWant{msg("test1")},
		retry: "1s",
	},
	{name: "wpt/format-field-data", in: "data:\n\ndata\ndata\n\ndata:test\n\n\n", want: []sseWant{msg(""), msg("\n"), msg("test")}},
	{name: "wpt/format-field-event", in: "event:test\ndata:x\n\ndata:x\n\n\n", want: []sseWant{typed("test", "x"), msg("x")}},
	{name: "wpt/format-field-event-empty", in: "event: \ndata:data\n\n\n", want: []sseWant{msg("data")}},
	{
		name: "wpt/format-field-id", in: "id: …\nretry: 200\ndata: hello\n\n",
		want: []sseWant{msgID("hello", "…")}, retry: "200ms", lastID: "…",
	},
	{
		name: "wpt/format-field-id-2", in: "id: …\nretry: 200\ndata: hello\n\ndata: …\n\n",
		want: []sseWant{msgID("hello", "…"), msgID("…", "…")}, retry: "200ms", lastID: "…",
	},
	{
		name: "wpt/format-field-id-3-persists", in: "id: 1\ndata: 1\n\ndata:2\n\n",
		want: []sseWant{msgID("1", "1"), msgID("2", "1")}, lastID: "1",
	},
	{
		name: "wpt/format-field-id-3-changes-and-persists", in: "id: 1\ndata: 1\n\nid: 2\ndata:2\n\ndata:3\n\n",
		want: []sseWant{msgID("1", "1"), msgID("2", "2"), msgID("3", "2")}, lastID: "2",
	},
	{
		name: "wpt/format-field-id-3-resets", in: "id: 1\ndata: 1\n\nid:\ndata:2\n\ndata:3\n\n",
		want: []sseWant{msgID("1", "1"), msg("2"), msg("3")},
	},
	{
		// The current spec ignores an id containing NULL.
		name: "wpt/format-field-id-null", in: "id: \x00\x00\nretry: 200\ndata: hello\n\n",
		want: []sseWant{msg("hello")}, retry: "200ms",
	},
	{
		name: "wpt/format-field-parsing",
		in:   "data:\x00\ndata:  2\rData:1\ndata\x00:2\ndata:1\r\x00data:4\nda-ta:3\rdata_5\ndata:3\rdata:\r\n data:32\ndata:4\n\n",
		want: []sseWant{msg("\x00\n 2\n1\n3\n\n4")},
	},
	{name: "wpt/format-field-retry", in: "retry:03000\ndata:x\n\n\n", want: []sseWant{msg("x")}, retry: "3s"},
	{name: "wpt/format-field-retry-bogus", in: "retry:3000\nretry:1000x\ndata:x\n\n\n", want: []sseWant{msg("x")}, retry: "3s"},
	{name: "wpt/format-field-retry-empty", in: "retry\ndata:test\n\n\n", want: []sseWant{msg("test")}},
	{
		name: "wpt/format-field-unknown",
		in:   "data:test\n data\ndata\nfoobar:xxx\njustsometext\n:thisisacommentyay\ndata:test\n\n\n",
		want: []sseWant{msg("test\n\ntest")},
	},
	{name: "wpt/format-leading-space", in: "data:\ttest\rdata: \ndata:test\n\n\n", want: []sseWant{msg("\ttest\n\ntest")}},
	{name: "wpt/format-newlines", in: "data:test\r\ndata\ndata:test\r\n\r\n", want: []sseWant{msg("test\n\ntest")}},
	{name: "wpt/format-newlines-final-cr", in: "data:test\r\ndata\ndata:test\r\n\r", want: []sseWant{msg("test\n\ntest")}},
	{name: "wpt/format-null-character", in: "data:\x00\n\n\n\n\n", want: []sseWant{msg("\x00")}},
	{name: "wpt/format-utf-8", in: "data:ok\xE2\x80\xA6\n\n\n", want: []sseWant{msg("ok…")}},
	{
		name: "wpt/event-data",
		in:   "data:msg\ndata: msg\n\n:\nfalsefield:msg\n\nfalsefield:msg\nData: data\n\ndata\n\ndata:end\n\n",
		want: []sseWant{msg("msg\nmsg"), msg(""), msg("end")},
	},

	// Line ends.
	{name: "lf", in: "data:a\n\ndata:b\n\n", want: []sseWant{msg("a"), msg("b")}},
	{name: "cr", in: "data:a\r\rdata:b\r\r", want: []sseWant{msg("a"), msg("b")}},
	{name: "crlf", in: "data:a\r\n\r\ndata:b\r\n\r\n", want: []sseWant{msg("a"), msg("b")}},
	{name: "mixed", in: "data:a\rdata:b\ndata:c\r\n\n", want: []sseWant{msg("a\nb\nc")}},
	{name: "lf cr is two line ends", in: "data:a\n\rdata:b\n\n", want: []sseWant{msg("a"), msg("b")}},
	{name: "cr cr lf is two line ends", in: "data:a\r\r\ndata:b\n\n", want: []sseWant{msg("a"), msg("b")}},
	{name: "cr lf lf", in: "data:a\r\n\ndata:b\r\n\n", want: []sseWant{msg("a"), msg("b")}},
	{name: "blank lines between events", in: "\n\r\n\rdata:a\n\n\n\n", want: []sseWant{msg("a")}},

	// BOM.
	{name: "bom only", in: "\uFEFF"},
	{name: "bom then event", in: "\uFEFFdata:a\n\n", want: []sseWant{msg("a")}},
	{name: "bom before comment", in: "\uFEFF:c\ndata:a\n\n", want: []sseWant{msg("a")}},
	{name: "second bom is data", in: "\uFEFFdata:\uFEFFa\n\n", want: []sseWant{msg("\uFEFFa")}},
	{name: "partial bom is invalid utf-8", in: "\xEF\xBBdata:a\n\ndata:b\n\n", want: []sseWant{msg("b")}},
	{name: "partial bom at eof", in: "\xEF\xBB"},
	{name: "bom then lf", in: "\uFEFF\ndata:a\n\n", want: []sseWant{msg("a")}},

	// Comments and fields.
	{name: "comment only", in: ": hello\n:\n\n"},
	{name: "comment in event", in: "data:a\n: c\ndata:b\n\n", want: []sseWant{msg("a\nb")}},
	{name: "field without colon", in: "data\n\n", want: []sseWant{msg("")}},
	{name: "one space dropped", in: "data:  a \n\n", want: []sseWant{msg(" a ")}},
	{name: "tab kept", in: "data:\ta\n\n", want: []sseWant{msg("\ta")}},
	{name: "colon in value", in: "data: a:b: c\n\n", want: []sseWant{msg("a:b: c")}},
	{name: "space before colon is in the name", in: "data :a\ndata:b\n\n", want: []sseWant{msg("b")}},
	{name: "names are case-sensitive", in: "DATA:a\nEvent:x\nID:1\ndata:b\n\n", want: []sseWant{msg("b")}},
	{name: "unknown field only", in: "foo:bar\n\n"},

	// data.
	{name: "empty data dispatches", in: "data:\n\n", want: []sseWant{msg("")}},
	{name: "data with only a space", in: "data: \n\n", want: []sseWant{msg("")}},
	{name: "two empty data", in: "data\ndata\n\n", want: []sseWant{msg("\n")}},
	{name: "one trailing lf removed", in: "data:a\ndata\ndata\n\n", want: []sseWant{msg("a\n\n")}},
	{name: "no data dispatches nothing", in: "event:x\n\ndata:a\n\n", want: []sseWant{msg("a")}},
	{name: "data with nul", in: "data:a\x00b\n\n", want: []sseWant{msg("a\x00b")}},

	// event.
	{name: "event reset after dispatch", in: "event:x\ndata:a\n\ndata:b\n\n", want: []sseWant{typed("x", "a"), msg("b")}},
	{name: "event reset by data-less block", in: "event:x\n\ndata:a\n\n", want: []sseWant{msg("a")}},
	{name: "last event field wins", in: "event:x\nevent:y\ndata:a\n\n", want: []sseWant{typed("y", "a")}},
	{name: "empty event field", in: "event:x\nevent\ndata:a\n\n", want: []sseWant{msg("a")}},
	{name: "event after data", in: "data:a\nevent:x\n\n", want: []sseWant{typed("x", "a")}},
	{name: "same type twice", in: "event:u\ndata:a\n\nevent:u\ndata:b\n\n", want: []sseWant{typed("u", "a"), typed("u", "b")}},

	// id.
	{name: "id sticky", in: "id:1\ndata:a\n\ndata:b\n\n", want: []sseWant{msgID("a", "1"), msgID("b", "1")}, lastID: "1"},
	{name: "id after data", in: "data:a\nid:7\n\n", want: []sseWant{msgID("a", "7")}, lastID: "7"},
	{name: "id with nul ignored", in: "id:1\ndata:a\n\nid:2\x00\ndata:b\n\n", want: []sseWant{msgID("a", "1"), msgID("b", "1")}, lastID: "1"},
	{name: "empty id resets", in: "id:1\ndata:a\n\nid\ndata:b\n\n", want: []sseWant{msgID("a", "1"), msg("b")}},
	{
		name: "id of data-less block takes effect", in: "id:1\n\ndata:a\n\n",
		want: []sseWant{msgID("a", "1")}, lastID: "1",
	},
	{name: "id of data-less block at end", in: "data:a\n\nid:9\n\n", want: []sseWant{msg("a")}, lastID: "9"},
	{name: "id of unterminated block", in: "data:a\n\nid:9\ndata:b\n", want: []sseWant{msg("a")}},
	{name: "id keeps spaces", in: "id:  x \ndata:a\n\n", want: []sseWant{msgID("a", " x ")}, lastID: " x "},
	{name: "last id field wins", in: "id:1\nid:2\ndata:a\n\n", want: []sseWant{msgID("a", "2")}, lastID: "2"},

	// retry.
	{name: "retry", in: "retry:1500\n", retry: "1.5s"},
	{name: "retry with space", in: "retry: 10\n", retry: "10ms"},
	{name: "retry zero", in: "retry:0\n", retry: "0s"},
	{name: "retry two spaces", in: "retry:  10\n"},
	{name: "retry sign", in: "retry:+10\nretry:-10\n"},
	{name: "retry decimal", in: "retry:1.5\n"},
	{name: "retry trailing space", in: "retry:10 \n"},
	{name: "retry non-ascii digit", in: "retry:\u0661\n"},
	{name: "retry empty keeps previous", in: "retry:5\nretry:\nretry\n", retry: "5ms"},
	{name: "retry invalid keeps previous", in: "retry:5\nretry:x\n", retry: "5ms"},
	{name: "retry saturates", in: "retry:99999999999999999999999999\n", retry: (time.Duration(math.MaxInt64/int64(time.Millisecond)) * time.Millisecond).String()},
	{name: "retry leading zeros", in: "retry:" + strings.Repeat("0", 100) + "7\n", retry: "7ms"},
	{name: "retry unterminated", in: "retry:5\nretry:7", retry: "5ms"},
	{name: "retry without event", in: ":x\nretry:20\n\n", retry: "20ms"},

	// End of stream.
	{name: "empty", in: ""},
	{name: "unterminated event discarded", in: "data:a\n\ndata:b\n", want: []sseWant{msg("a")}},
	{name: "unterminated line discarded", in: "data:a\n\ndata:b", want: []sseWant{msg("a")}},
	{name: "final cr dispatches", in: "data:a\r\r", want: []sseWant{msg("a")}},

	// UTF-8 decoding (WHATWG, one U+FFFD per maximal subpart).
	{name: "utf8 valid", in: "data:é€😀\n\n", want: []sseWant{msg("é€😀")}},
	{name: "utf8 literal replacement char", in: "data:\uFFFD\n\n", want: []sseWant{msg("\uFFFD")}},
	{name: "utf8 lone continuation", in: "data:\x80a\n\n", want: []sseWant{msg("\uFFFDa")}},
	{name: "utf8 invalid byte ff", in: "data:\xFF\xFE\n\n", want: []sseWant{msg("\uFFFD\uFFFD")}},
	{name: "utf8 truncated 3-byte", in: "data:\xE2\x82a\n\n", want: []sseWant{msg("\uFFFDa")}},
	{name: "utf8 truncated 4-byte", in: "data:\xF0\x9F\x98\n\n", want: []sseWant{msg("\uFFFD")}},
	{name: "utf8 truncated before lf", in: "data:\xE2\ndata:\x82\n\n", want: []sseWant{msg("\uFFFD\n\uFFFD")}},
	{name: "utf8 overlong 2-byte", in: "data:\xC0\xAF\n\n", want: []sseWant{msg("\uFFFD\uFFFD")}},
	{name: "utf8 overlong 3-byte", in: "data:\xE0\x80\xAF\n\n", want: []sseWant{msg("\uFFFD\uFFFD\uFFFD")}},
	{name: "utf8 overlong 4-byte", in: "data:\xF0\x80\x80\xAF\n\n", want: []sseWant{msg("\uFFFD\uFFFD\uFFFD\uFFFD")}},
	{name: "utf8 surrogate", in: "data:\xED\xA0\x80\n\n", want: []sseWant{msg("\uFFFD\uFFFD\uFFFD")}},
	{name: "utf8 above max", in: "data:\xF4\x90\x80\x80\n\n", want: []sseWant{msg("\uFFFD\uFFFD\uFFFD\uFFFD")}},
	{name: "utf8 f5", in: "data:\xF5\x80\n\n", want: []sseWant{msg("\uFFFD\uFFFD")}},
	{name: "utf8 truncated then valid", in: "data:\xF0\x9F\xE2\x82\xAC\n\n", want: []sseWant{msg("\uFFFD€")}},
	{name: "utf8 in id", in: "id:\xFFx\ndata:a\n\n", want: []sseWant{msgID("a", "\uFFFDx")}, lastID: "\uFFFDx"},
	{name: "utf8 in event", in: "event:\xE2\x82\ndata:a\n\n", want: []sseWant{typed("\uFFFD", "a")}},
	{name: "utf8 in field name", in: "dat\xE1:a\ndata:b\n\n", want: []sseWant{msg("b")}},
	{name: "utf8 before colon", in: "data\xE2:a\n\n"},

	// Limits.
	{name: "limit data at max", max: 4, in: "data:abcd\n\n", want: []sseWant{msg("abcd")}},
	{name: "limit data over max", max: 4, in: "data:abcde\n\ndata:x\n\n", want: []sseWant{large("message", "abcd", ""), msg("x")}},
	{name: "limit lf counts", max: 4, in: "data:ab\ndata:cd\n\n", want: []sseWant{large("message", "ab\nc", "")}},
	{name: "limit lines add up", max: 5, in: "data:ab\ndata:cd\n\n", want: []sseWant{msg("ab\ncd")}},
	{name: "limit keeps id and type", max: 3, in: "id:7\nevent:e\ndata:abcdef\n\n", want: []sseWant{large("e", "abc", "7")}, lastID: "7"},
	{name: "limit cut in a rune", max: 4, in: "data:ab€\n\n", want: []sseWant{large("message", "ab", "")}},
	{name: "limit many empty data lines", max: 3, in: strings.Repeat("data\n", 10) + "\ndata:x\n\n", want: []sseWant{large("message", "\n\n\n", ""), msg("x")}},
	{name: "limit id over max", max: 3, in: "id:1\ndata:a\n\nid:1234\ndata:b\n\n", want: []sseWant{msgID("a", "1"), large("message", "b", "1")}, lastID: "1"},
	{name: "limit id over max without data", max: 3, in: "id:1234\n\ndata:b\n\n", want: []sseWant{large("message", "", ""), msg("b")}},
	{name: "limit id at max", max: 3, in: "id:123\ndata:b\n\n", want: []sseWant{msgID("b", "123")}, lastID: "123"},
	{name: "limit event over max", max: 3, in: "event:abcd\ndata:b\n\n", want: []sseWant{large("message", "b", "")}},
	{name: "limit comment is not limited", max: 3, in: ":" + strings.Repeat("c", 100) + "\ndata:a\n\n", want: []sseWant{msg("a")}},
	{name: "limit unknown field is not limited", max: 3, in: strings.Repeat("f", 100) + ":x\ndata:a\n\n", want: []sseWant{msg("a")}},
	{name: "limit retry is not limited", max: 3, in: "retry:" + strings.Repeat("0", 100) + "42\n", retry: "42ms"},
	{name: "limit unterminated large event", max: 3, in: "data:abcdef\n"},
}

func sseReaders(in string) map[string]func() *Decoder {
	return map[string]func() *Decoder{
		"whole":         func() *Decoder { return NewDecoder(strings.NewReader(in)) },
		"one-byte":      func() *Decoder { return NewDecoder(iotest.OneByteReader(strings.NewReader(in))) },
		"eof-with-data": func() *Decoder { return NewDecoder(iotest.DataErrReader(strings.NewReader(in))) },
		"small-buffer":  func() *Decoder { return newDecoderSize(strings.NewReader(in), sseMinBufSize) },
		"small-buffer-one-byte": func() *Decoder {
			return newDecoderSize(iotest.OneByteReader(strings.NewReader(in)), sseMinBufSize)
		},
	}
}

func TestDecoderConformance(t *testing.T) {
	for _, tc := range sseCases {
		t.Run(tc.name, func(t *testing.T) {
			var wantRetry time.Duration
			if tc.retry != "" {
				var err error
				if wantRetry, err = time.ParseDuration(tc.retry); err != nil {
					t.Fatal(err)
				}
			}
			limit := tc.max
			if limit == 0 {
				limit = DefaultMaxEventBytes
			}
			for mode, newDec := range sseReaders(tc.in) {
				d := newDec()
				d.SetMaxEventBytes(tc.max)
				tr, err := sseDecodeAll(d)
				if err != nil {
					t.Fatalf("%s: %v", mode, err)
				}
				var got []sseWant
				for _, r := range tr.Events {
					got = append(got, sseWant{Event: r.Ev, TooLarge: r.TooLarge})
				}
				if !slices.Equal(got, tc.want) {
					t.Errorf("%s: events\n got %#v\nwant %#v", mode, got, tc.want)
				}
				if tr.End.HasRetry != (tc.retry != "") || tr.End.Retry != wantRetry {
					t.Errorf("%s: Retry() = %v, %v; want %v, %v", mode, tr.End.Retry, tr.End.HasRetry, wantRetry, tc.retry != "")
				}
				if tr.End.LastID != tc.lastID {
					t.Errorf("%s: LastEventID() = %q, want %q", mode, tr.End.LastID, tc.lastID)
				}
				// The limits of the reference are measured on decoded text.
				if tc.max == 0 || utf8.ValidString(tc.in) {
					if ref := sseRefDecode([]byte(tc.in), limit); !ref.equal(tr) {
						t.Errorf("%s: differs from the reference\n got %+v\n ref %+v", mode, tr, ref)
					}
				}
			}
		})
	}
}

func TestDecodeTooLarge(t *testing.T) {
	in := "id:1\ndata:" + strings.Repeat("x", 100) + "\n\ndata:next\n\n"
	d := NewDecoder(strings.NewReader(in))
	d.SetMaxEventBytes(10)
	ev, err := d.Decode()
	if !errors.Is(err, ErrEventTooLarge) {
		t.Fatalf("Decode error = %v, want ErrEventTooLarge", err)
	}
	if want := "sse: event too large: data longer than 10 bytes"; err.Error() != want {
		t.Errorf("error = %q, want %q", err, want)
	}
	if want := (Event{Type: "message", Data: strings.Repeat("x", 10), ID: "1"}); ev != want {
		t.Errorf("too-large event = %+v, want %+v", ev, want)
	}
	ev, err = d.Decode()
	if err != nil || ev.Data != "next" || ev.ID != "1" {
		t.Fatalf("next Decode = %+v, %v; want data next", ev, err)
	}
	if _, err := d.Decode(); err != io.EOF {
		t.Fatalf("last Decode error = %v, want io.EOF", err)
	}
}

func TestDecodeTooLargeMessages(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"id:12345\ndata:a\n\n", "sse: event too large: id field longer than 4 bytes"},
		{"event:12345\ndata:a\n\n", "sse: event too large: event field longer than 4 bytes"},
		{"data:12345\nid:12345\n\n", "sse: event too large: id field longer than 4 bytes"},
		{"data:12345\n\n", "sse: event too large: data longer than 4 bytes"},
	} {
		d := NewDecoder(strings.NewReader(tc.in))
		d.SetMaxEventBytes(4)
		_, err := d.Decode()
		if !errors.Is(err, ErrEventTooLarge) || err.Error() != tc.want {
			t.Errorf("%q: error = %v, want %q", tc.in, err, tc.want)
		}
	}
}

func TestSetMaxEventBytesDefault(t *testing.T) {
	d := NewDecoder(strings.NewReader(""))
	d.SetMaxEventBytes(3)
	d.SetMaxEventBytes(0)
	if d.max != DefaultMaxEventBytes {
		t.Fatalf("max = %d after SetMaxEventBytes(0), want %d", d.max, DefaultMaxEventBytes)
	}
	d = NewDecoder(strings.NewReader("data:abc\n\n"))
	d.SetMaxEventBytes(math.MaxInt)
	if ev, err := d.Decode(); err != nil || ev.Data != "abc" {
		t.Fatalf("with the largest limit: Decode = %+v, %v", ev, err)
	}
	if DefaultMaxEventBytes != 4194304 {
		t.Fatalf("DefaultMaxEventBytes = %d, want 4194304", DefaultMaxEventBytes)
	}
}

// sseRepeatReader yields prefix, then n bytes of c, then suffix, without
// holding the n bytes.
type sseRepeatReader struct {
	prefix, suffix string
	c              byte
	n              int
}

func (r *sseRepeatReader) Read(p []byte) (int, error) {
	switch {
	case r.prefix != "":
		n := copy(p, r.prefix)
		r.prefix = r.prefix[n:]
		return n, nil
	case r.n > 0:
		n := min(len(p), r.n)
		for i := range p[:n] {
			p[i] = r.c
		}
		r.n -= n
		return n, nil
	case r.suffix != "":
		n := copy(p, r.suffix)
		r.suffix = r.suffix[n:]
		return n, nil
	}
	return 0, io.EOF
}

// TestDecodeLongLinesNotHeld checks that lines far longer than the limit pass
// through in constant memory: a data line, a comment, an id and an unknown
// field of 32 MiB each.
func TestDecodeLongLinesNotHeld(t *testing.T) {
	const n = 32 << 20
	for _, tc := range []struct {
		name, prefix string
		want         []sseWant
	}{
		{"data", "data:", []sseWant{large("message", strings.Repeat("x", 1024), ""), msg("ok")}},
		{"comment", ":", []sseWant{msg("ok")}},
		{"id", "id:", []sseWant{large("message", "", ""), msg("ok")}},
		{"unknown", "", []sseWant{msg("ok")}},
		{"retry", "retry:", []sseWant{msg("ok")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := byte('x')
			if tc.name == "retry" {
				c = '0'
			}
			d := NewDecoder(&sseRepeatReader{prefix: tc.prefix, c: c, n: n, suffix: "\n\ndata:ok\n\n"})
			d.SetMaxEventBytes(1024)
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			tr, err := sseDecodeAll(d)
			runtime.ReadMemStats(&after)
			if err != nil {
				t.Fatal(err)
			}
			var got []sseWant
			for _, r := range tr.Events {
				got = append(got, sseWant{Event: r.Ev, TooLarge: r.TooLarge})
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("events\n got %#v\nwant %#v", got, tc.want)
			}
			if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 1<<20 {
				t.Errorf("decoding a %d-byte line allocated %d bytes", n, alloc)
			}
			if tc.name == "retry" {
				if r, ok := d.Retry(); !ok || r != 0 {
					t.Errorf("Retry() = %v, %v; want 0, true", r, ok)
				}
			}
		})
	}
}

func TestDecodeReadError(t *testing.T) {
	boom := errors.New("boom")
	d := NewDecoder(io.MultiReader(strings.NewReader("data:a\n\ndata:b\n"), iotest.ErrReader(boom)))
	if ev, err := d.Decode(); err != nil || ev.Data != "a" {
		t.Fatalf("Decode = %+v, %v", ev, err)
	}
	for range 2 { // sticky
		if _, err := d.Decode(); err != boom {
			t.Fatalf("Decode error = %v, want %v", err, boom)
		}
	}
}

func TestDecodeEOFSticky(t *testing.T) {
	d := NewDecoder(strings.NewReader("data:a\n\n"))
	if _, err := d.Decode(); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, err := d.Decode(); err != io.EOF {
			t.Fatalf("Decode error = %v, want io.EOF", err)
		}
	}
}

type sseZeroReader struct{}

func (sseZeroReader) Read([]byte) (int, error) { return 0, nil }

func TestDecodeNoProgress(t *testing.T) {
	if _, err := NewDecoder(sseZeroReader{}).Decode(); err != io.ErrNoProgress {
		t.Fatalf("Decode error = %v, want io.ErrNoProgress", err)
	}
}

type sseBadCountReader struct{}

func (sseBadCountReader) Read(p []byte) (int, error) { return len(p) + 1, nil }

func TestDecodeBadReader(t *testing.T) {
	if _, err := NewDecoder(sseBadCountReader{}).Decode(); err == nil || err == io.EOF {
		t.Fatalf("Decode error = %v, want an error", err)
	}
}

// sseGatedReader hands out its parts only as far as released: a Read beyond
// them fails the decoding with errSSEReadAhead.
type sseGatedReader struct {
	parts    []string
	released int
}

var errSSEReadAhead = errors.New("read beyond the released input")

func (r *sseGatedReader) Read(p []byte) (int, error) {
	for len(r.parts) > 0 && r.parts[0] == "" {
		r.parts = r.parts[1:]
		r.released--
	}
	if len(r.parts) == 0 {
		return 0, io.EOF
	}
	if r.released <= 0 {
		return 0, errSSEReadAhead
	}
	n := copy(p, r.parts[0])
	r.parts[0] = r.parts[0][n:]
	return n, nil
}

// TestDecodeDoesNotReadAhead checks that an event is returned as soon as its
// closing line end has been read, even a CR that an LF may still follow, and
// that the BOM check waits only while the bytes could still be a BOM.
func TestDecodeDoesNotReadAhead(t *testing.T) {
	// Each step lists the parts released before one Decode; the Decode must
	// return the event without reading further.
	for _, steps := range [][][]string{
		{{"data:a\r\r"}, {"\ndata:b\n\n"}},
		{{"data:a\n\n"}, {"data:b\n\n"}},
		{{"data:a\r\n\r"}, {"\ndata:b\n\n"}},
		{{"\uFEFFdata:a\r\r"}, {"data:b\r\r"}},
		{{"data:a\r", "\r"}, {"\r\ndata:b\r", "\n\r"}},
		{{"\xEF", "\xBB\xBFdata:a\r", "\r"}, {"data:b\n\n"}},
		{{"\xEF\xBB", "\xBFdata:a\n\n"}, {"data:b\n\n"}},
		{{"\xEFdata:x\n\ndata:a\n\n"}, {"data:b\n\n"}},
	} {
		t.Run(fmt.Sprintf("%q", steps), func(t *testing.T) {
			r := &sseGatedReader{}
			for _, step := range steps {
				r.parts = append(r.parts, step...)
			}
			d := NewDecoder(r)
			for i, step := range steps {
				r.released += len(step)
				want := []string{"a", "b"}[i]
				ev, err := d.Decode()
				if err != nil || ev.Data != want {
					t.Fatalf("Decode = %+v, %v; want data %q", ev, err, want)
				}
			}
		})
	}
}

func TestDecodeRetryBeforeEvents(t *testing.T) {
	d := NewDecoder(strings.NewReader("retry:100\ndata:a\n\nretry:200\ndata:b\n\n"))
	if _, ok := d.Retry(); ok {
		t.Fatal("Retry() reported a value before any input")
	}
	for _, want := range []time.Duration{100 * time.Millisecond, 200 * time.Millisecond} {
		if _, err := d.Decode(); err != nil {
			t.Fatal(err)
		}
		if got, ok := d.Retry(); !ok || got != want {
			t.Fatalf("Retry() = %v, %v; want %v", got, ok, want)
		}
	}
}

func TestAppendUTF8(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", ""},
		{"abc", "abc"},
		{"\xC2", "\uFFFD"},
		{"\xC2\xA9", "©"},
		{"\xC2\x41", "\uFFFDA"},
		{"\xE0\xA0", "\uFFFD"},
		{"\xE0\x9F\x80", "\uFFFD\uFFFD\uFFFD"},
		{"\xED\x9F\xBF", "\uD7FF"},
		{"\xEF\xBF\xBF", "\uFFFF"},
		{"\xF0\x90\x80\x80", "\U00010000"},
		{"\xF4\x8F\xBF\xBF", "\U0010FFFF"},
		{"\xF4\x8F\xBF", "\uFFFD"},
		{"\xF8\x88\x80\x80\x80", "\uFFFD\uFFFD\uFFFD\uFFFD\uFFFD"},
		{"a\x80\x80b", "a\uFFFD\uFFFDb"},
		{"\xE1\x80\xE1\x80\x80", "\uFFFD\u1000"},
	} {
		if got := string(sseAppendUTF8(nil, []byte(tc.in))); got != tc.want {
			t.Errorf("sseAppendUTF8(%q) = %q, want %q", tc.in, got, tc.want)
		}
		if got := sseRefUTF8([]byte(tc.in)); got != tc.want {
			t.Errorf("sseRefUTF8(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// sseLoopReader repeats its data forever.
type sseLoopReader struct {
	data []byte
	off  int
}

func (r *sseLoopReader) Read(p []byte) (int, error) {
	n := copy(p, r.data[r.off:])
	r.off = (r.off + n) % len(r.data)
	return n, nil
}

// BenchmarkDecode decodes events of 1 KiB of data, each with its own id and
// the same type, as the service sends them.
func BenchmarkDecode(b *testing.B) {
	for _, eol := range []string{"\n", "\r\n"} {
		name := map[string]string{"\n": "LF", "\r\n": "CRLF"}[eol]
		b.Run(name, func(b *testing.B) {
			const events = 256
			data := `{"type":"update","event_id":"1780793376562","data":{"v":"` + strings.Repeat("x", 1024-60) + `"}}`
			data = data[:1024]
			var stream bytes.Buffer
			for i := range events {
				fmt.Fprintf(&stream, "id: %d%sevent: update%sdata: %s%s%s", 1780793376562+i, eol, eol, data, eol, eol)
			}
			b.SetBytes(int64(stream.Len() / events))
			b.ReportAllocs()
			d := NewDecoder(&sseLoopReader{data: stream.Bytes()})
			for b.Loop() {
				ev, err := d.Decode()
				if err != nil || len(ev.Data) != 1024 {
					b.Fatalf("Decode = %d bytes, %v", len(ev.Data), err)
				}
			}
		})
	}
}

// The reference decoder: written to read like the WHATWG text itself,
// string-based and unoptimised, and the helpers that compare with it.

// sseResult is everything observable after one event: the event, whether it
// was too large, and the decoder's retry and last event ID at that moment.
type sseResult struct {
	Ev       Event
	TooLarge bool
	Retry    time.Duration
	HasRetry bool
	LastID   string
}

// sseTrace is the output of a whole stream: its events, then the state at the
// end of the stream.
type sseTrace struct {
	Events []sseResult
	End    sseResult // Ev unused
}

func (a sseTrace) equal(b sseTrace) bool {
	if len(a.Events) != len(b.Events) || a.End != b.End {
		return false
	}
	for i := range a.Events {
		if a.Events[i] != b.Events[i] {
			return false
		}
	}
	return true
}

// sseDecodeAll runs d to the end of its stream.
func sseDecodeAll(d *Decoder) (sseTrace, error) {
	var tr sseTrace
	for {
		ev, tooLarge, err := d.DecodeLimited()
		retry, has := d.Retry()
		r := sseResult{Ev: ev, TooLarge: tooLarge, Retry: retry, HasRetry: has, LastID: d.LastEventID()}
		if err != nil {
			r.Ev = Event{}
			tr.End = r
			if errors.Is(err, io.EOF) {
				return tr, nil
			}
			return tr, err
		}
		tr.Events = append(tr.Events, r)
		if len(tr.Events) > 1<<20 {
			return tr, errors.New("too many events")
		}
	}
}

// sseRefDecode decodes input by the WHATWG algorithm, step by step: decode the
// whole byte stream as UTF-8, split it into lines, interpret each line.
// maxBytes applies the Decoder's limits, measured on the decoded text (equal
// to the bytes of the stream when the input is valid UTF-8).
func sseRefDecode(input []byte, maxBytes int) sseTrace {
	// "UTF-8 decode": one leading BOM is dropped, errors become U+FFFD.
	input = bytes.TrimPrefix(input, []byte("\uFEFF"))
	stream := sseRefUTF8(input)

	var (
		tr                      sseTrace
		dataBuf, typeBuf, idBuf string
		lastID                  string
		retry                   time.Duration
		hasRetry, tooLarge      bool
	)
	for {
		// A line ends with CRLF, LF or CR. Text after the last line end is
		// never processed: the stream ended within a line.
		end := strings.IndexAny(stream, "\r\n")
		if end < 0 {
			break
		}
		line := stream[:end]
		if strings.HasPrefix(stream[end:], "\r\n") {
			stream = stream[end+2:]
		} else {
			stream = stream[end+1:]
		}

		if line == "" {
			// Dispatch the event.
			lastID = idBuf
			if dataBuf == "" && !tooLarge {
				typeBuf = ""
				continue
			}
			data := strings.TrimSuffix(dataBuf, "\n")
			large := tooLarge
			if len(data) > maxBytes {
				large = true
				data = data[:maxBytes]
				for !utf8.ValidString(data) {
					data = data[:len(data)-1]
				}
			}
			typ := typeBuf
			if typ == "" {
				typ = "message"
			}
			tr.Events = append(tr.Events, sseResult{
				Ev:       Event{Type: typ, Data: data, ID: lastID},
				TooLarge: large,
				Retry:    retry, HasRetry: hasRetry, LastID: lastID,
			})
			dataBuf, typeBuf, tooLarge = "", "", false
			continue
		}
		if strings.HasPrefix(line, ":") {
			continue // a comment
		}
		field, value, found := strings.Cut(line, ":")
		if found {
			value = strings.TrimPrefix(value, " ")
		}
		switch field {
		case "event":
			if len(value) > maxBytes {
				tooLarge = true
			} else {
				typeBuf = value
			}
		case "data":
			dataBuf += value + "\n"
		case "id":
			if len(value) > maxBytes {
				tooLarge = true
			} else if !strings.Contains(value, "\x00") {
				idBuf = value
			}
		case "retry":
			if value != "" && strings.Trim(value, "0123456789") == "" {
				ms, err := strconv.ParseInt(value, 10, 64)
				if err != nil || ms > math.MaxInt64/int64(time.Millisecond) {
					ms = math.MaxInt64 / int64(time.Millisecond)
				}
				retry, hasRetry = time.Duration(ms)*time.Millisecond, true
			}
		default:
			// An unknown field is ignored.
		}
	}
	tr.End = sseResult{Retry: retry, HasRetry: hasRetry, LastID: lastID}
	return tr
}

// sseRefUTF8 decodes b replacing each maximal subpart of an ill-formed
// sequence by one U+FFFD: at each error, drop the longest prefix that could
// still have begun a well-formed sequence, or one byte.
func sseRefUTF8(b []byte) string {
	var sb strings.Builder
	for len(b) > 0 {
		r, n := utf8.DecodeRune(b)
		if r != utf8.RuneError || n > 1 {
			sb.Write(b[:n])
			b = b[n:]
			continue
		}
		k := 1
		for j := min(utf8.UTFMax-1, len(b)); j > 1; j-- {
			if !utf8.FullRune(b[:j]) { // an incomplete, so far valid, prefix
				k = j
				break
			}
		}
		sb.WriteRune(utf8.RuneError)
		b = b[k:]
	}
	return sb.String()
}

// sseChunkReader returns data in chunks whose sizes come from sizes (cycled):
// 0 returns nothing (at most twice in a row), an odd size returns io.EOF
// together with the last bytes.
type sseChunkReader struct {
	data   []byte
	sizes  []byte
	i      int
	zeroes int
}

func (c *sseChunkReader) Read(p []byte) (int, error) {
	if len(c.data) == 0 {
		return 0, io.EOF
	}
	size := 1
	if len(c.sizes) > 0 {
		size = int(c.sizes[c.i%len(c.sizes)])
		c.i++
	}
	if size == 0 && c.zeroes < 2 {
		c.zeroes++
		return 0, nil
	}
	c.zeroes = 0
	n := copy(p, c.data[:min(max(size, 1), len(c.data))])
	c.data = c.data[n:]
	if len(c.data) == 0 && size%2 == 1 {
		return n, io.EOF
	}
	return n, nil
}

func TestSetRawDataKeepsBytes(t *testing.T) {
	in := "id: 1\ndata: caf\xe9 \xed\xa0\x80\n\n"
	for _, raw := range []bool{false, true} {
		d := NewDecoder(strings.NewReader(in))
		d.SetRawData(raw)
		ev, err := d.Decode()
		if err != nil {
			t.Fatal(err)
		}
		want := "caf\ufffd \ufffd\ufffd\ufffd"
		if raw {
			want = "caf\xe9 \xed\xa0\x80"
		}
		if ev.Data != want || ev.ID != "1" {
			t.Errorf("raw %v: data %q id %q, want %q", raw, ev.Data, ev.ID, want)
		}
	}
}
