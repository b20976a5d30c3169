package file

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"

	"github.com/restless-stream/ingest"
)

func rec(dest, key, value string, hs ...string) ingest.Record {
	r := ingest.Record{Dest: dest, Value: []byte(value)}
	if key != "" {
		r.Key = []byte(key)
	}
	for i := 0; i+1 < len(hs); i += 2 {
		r.Headers = append(r.Headers, ingest.Header{Key: hs[i], Value: hs[i+1]})
	}
	return r
}

func TestLineFormat(t *testing.T) {
	tests := []struct {
		name string
		rec  ingest.Record
		want string
	}{
		{
			name: "event JSON embedded unchanged",
			rec:  rec("restless.orders", "orders", `{"type":"update","data":{"b":1,"a":"\u00e9\n"},"event_id":"7"}`, "restless-stream", "orders", "content-type", "application/json"),
			want: `{"destination":"restless.orders","key":"orders","headers":{"restless-stream":"orders","content-type":"application/json"},"value":{"type":"update","data":{"b":1,"a":"\u00e9\n"},"event_id":"7"}}`,
		},
		{
			name: "declared JSON: copied as is, spaces kept",
			rec:  jsonRec(rec("d", "k", `{"a": [1, 2], "s": "x  y"}`)),
			want: `{"destination":"d","key":"k","headers":{},"value":{"a": [1, 2], "s": "x  y"}}`,
		},
		{
			name: "declared JSON with line breaks: compacted",
			rec:  jsonRec(rec("d", "k", "{\r\n  \"a\" : [1, 2],\n  \"s\": \"x\\ny\"\n}")),
			want: `{"destination":"d","key":"k","headers":{},"value":{"a":[1,2],"s":"x\ny"}}`,
		},
		{
			name: "declared JSON that is not, with a line break: a string",
			rec:  jsonRec(rec("d", "k", "{\"a\n")),
			want: `{"destination":"d","key":"k","headers":{},"value":"{\"a\n"}`,
		},
		{
			name: "declared JSON but empty: an empty string",
			rec:  jsonRec(rec("d", "k", "")),
			want: `{"destination":"d","key":"k","headers":{},"value":""}`,
		},
		{
			name: "content-type alone promises nothing",
			rec:  rec("d", "k", "{\"a\"", "content-type", "application/json"),
			want: `{"destination":"d","key":"k","headers":{"content-type":"application/json"},"value":"{\"a\""}`,
		},
		{
			name: "whitespace outside strings removed",
			rec:  rec("d", "k", "{\n  \"a\" : [1, 2],\n  \"s\": \"x  y\"\n}\n"),
			want: `{"destination":"d","key":"k","headers":{},"value":{"a":[1,2],"s":"x  y"}}`,
		},
		{
			name: "nil key is null",
			rec:  rec("d", "", `1`),
			want: `{"destination":"d","key":null,"headers":{},"value":1}`,
		},
		{
			name: "not JSON becomes a string",
			rec:  rec("dlq", "s", "{\"broken\n\t\x01"),
			want: `{"destination":"dlq","key":"s","headers":{},"value":"{\"broken\n\t\u0001"}`,
		},
		{
			name: "empty value becomes an empty string",
			rec:  rec("d", "k", ""),
			want: `{"destination":"d","key":"k","headers":{},"value":""}`,
		},
		{
			name: "invalid UTF-8 is replaced",
			rec:  rec("d", "k", "\"a\xffb\""),
			want: `{"destination":"d","key":"k","headers":{},"value":"\"a\ufffdb\""}`,
		},
		{
			name: "duplicate header names: last wins",
			rec:  rec("d", "k", `true`, "a", "1", "b", "2", "a", "3"),
			want: `{"destination":"d","key":"k","headers":{"b":"2","a":"3"},"value":true}`,
		},
		{
			name: "escapes in names and values",
			rec:  rec("d\"\\", "k\u2028<>&", `null`, "h\b\f\r", "v\x1f\u00e9😀"),
			want: "{\"destination\":\"d\\\"\\\\\",\"key\":\"k\u2028<>&\",\"headers\":{\"h\\b\\f\\r\":\"v\\u001fé😀\"},\"value\":null}",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var e encoder
			got := string(e.appendLine(nil, &tt.rec))
			if got != tt.want+"\n" {
				t.Fatalf("line\n got %s\nwant %s", got, tt.want)
			}
			if !json.Valid([]byte(got)) {
				t.Fatalf("line is not valid JSON: %s", got)
			}
			if _, err := ParseLine([]byte(tt.want)); err != nil {
				t.Fatalf("ParseLine: %v", err)
			}
		})
	}
}

func TestWriteAppendsAndReads(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.jsonl")
	if err := os.WriteFile(path, []byte(`{"destination":"old","key":null,"headers":{},"value":0}`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := New(path)
	if err != nil {
		t.Fatal(err)
	}
	batch := []ingest.Record{
		rec("a", "k1", `{"x":1}`, "restless-event-id", "1"),
		rec("a", "", `not json`),
	}
	if err := s.Write(context.Background(), batch); err != nil {
		t.Fatal(err)
	}
	if err := s.Write(context.Background(), batch[:1]); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	lines, torn, err := ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if torn != 0 || len(lines) != 4 {
		t.Fatalf("got %d lines, %d torn; want 4, 0", len(lines), torn)
	}
	if lines[0].Destination != "old" {
		t.Errorf("existing line not kept first: %+v", lines[0])
	}
	if l := lines[1]; l.Destination != "a" || l.Key == nil || *l.Key != "k1" || l.Headers["restless-event-id"] != "1" || string(l.Value) != `{"x":1}` {
		t.Errorf("line 1 = %+v", l)
	}
	if l := lines[2]; l.Key != nil || string(l.Value) != `"not json"` {
		t.Errorf("line 2 = %+v", l)
	}
}

func TestTornLastLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.jsonl")
	good := `{"destination":"d","key":"k","headers":{},"value":1}` + "\n"
	if err := os.WriteFile(path, []byte(good+`{"destination":"d","ke`), 0o644); err != nil {
		t.Fatal(err)
	}
	lines, torn, err := ReadFile(path)
	if err != nil || len(lines) != 1 || torn != 1 {
		t.Fatalf("before append: %d lines, %d torn, %v; want 1, 1, nil", len(lines), torn, err)
	}
	s, err := New(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Write(context.Background(), []ingest.Record{rec("d", "k", "2")}); err != nil {
		t.Fatal(err)
	}
	s.Close(context.Background())
	lines, torn, err = ReadFile(path)
	if err != nil || len(lines) != 2 || torn != 1 {
		t.Fatalf("after append: %d lines, %d torn, %v; want 2, 1, nil", len(lines), torn, err)
	}
	if string(lines[1].Value) != "2" {
		t.Fatalf("appended line = %+v", lines[1])
	}
}

func TestNewErrors(t *testing.T) {
	dir := t.TempDir()
	tests := []struct{ name, path string }{
		{"empty path", ""},
		{"directory", dir},
		{"missing parent", filepath.Join(dir, "no", "such", "file")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if s, err := New(tt.path); err == nil {
				s.Close(context.Background())
				t.Fatal("New succeeded")
			}
		})
	}
}

func TestWriteAfterClose(t *testing.T) {
	s, err := New(filepath.Join(t.TempDir(), "f"))
	if err != nil {
		t.Fatal(err)
	}
	if !s.Connected() {
		t.Fatal("not connected after New")
	}
	s.Close(context.Background())
	if s.Connected() {
		t.Fatal("connected after Close")
	}
	err = s.Write(context.Background(), []ingest.Record{rec("d", "k", "1"), rec("d", "k", "2")})
	var werr ingest.WriteErrors
	if !errors.As(err, &werr) || len(werr) != 2 || !errors.Is(werr[1], ingest.ErrClosed) {
		t.Fatalf("Write after Close = %v", err)
	}
}

func TestWriteCanceled(t *testing.T) {
	var buf bytes.Buffer
	s := NewWriter(&buf)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := s.Write(ctx, []ingest.Record{rec("d", "k", "1")})
	var werr ingest.WriteErrors
	if !errors.As(err, &werr) || !errors.Is(werr[0], context.Canceled) {
		t.Fatalf("Write = %v", err)
	}
	if buf.Len() != 0 {
		t.Fatalf("wrote %q", buf.String())
	}
}

type failWriter struct{ n int }

func (w *failWriter) Write(p []byte) (int, error) {
	if len(p) > w.n {
		return w.n, errors.New("disk full")
	}
	w.n -= len(p)
	return len(p), nil
}

func TestWriteFailureReportsEveryRecord(t *testing.T) {
	s := NewWriter(&failWriter{n: 10})
	err := s.Write(context.Background(), []ingest.Record{rec("d", "k", "1"), rec("d", "k", "2")})
	var werr ingest.WriteErrors
	if !errors.As(err, &werr) || werr.Count() != 2 || !strings.Contains(werr[0].Error(), "disk full") {
		t.Fatalf("Write = %v", err)
	}
}

func TestStdoutWriterFlushes(t *testing.T) {
	var out bytes.Buffer
	bw := bufio.NewWriterSize(&out, 1<<16)
	s := NewWriter(bw)
	if err := s.Write(context.Background(), []ingest.Record{rec("d", "k", `{"a":1}`)}); err != nil {
		t.Fatal(err)
	}
	if got := out.String(); got != `{"destination":"d","key":"k","headers":{},"value":{"a":1}}`+"\n" {
		t.Fatalf("got %q", got)
	}
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestConcurrentWritesKeepBatchesWhole(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f")
	s, err := New(path)
	if err != nil {
		t.Fatal(err)
	}
	const lanes, batches, size = 4, 10, 20
	var wg sync.WaitGroup
	for l := range lanes {
		wg.Go(func() {
			for b := range batches {
				recs := make([]ingest.Record, size)
				for i := range recs {
					recs[i] = rec(fmt.Sprint("lane", l), "", fmt.Sprintf(`{"b":%d,"i":%d}`, b, i))
				}
				if err := s.Write(context.Background(), recs); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	s.Close(context.Background())
	lines, torn, err := ReadFile(path)
	if err != nil || torn != 0 || len(lines) != lanes*batches*size {
		t.Fatalf("%d lines, %d torn, %v", len(lines), torn, err)
	}
	for i := 0; i < len(lines); i += size {
		for j := 1; j < size; j++ {
			if lines[i+j].Destination != lines[i].Destination {
				t.Fatalf("batch starting at line %d interleaved", i)
			}
		}
	}
}

func TestParseLineErrors(t *testing.T) {
	tests := []struct{ name, line string }{
		{"empty", ``},
		{"not an object", `[1]`},
		{"destination missing", `{"key":null,"headers":{},"value":1}`},
		{"value missing", `{"destination":"d","key":null,"headers":{}}`},
		{"headers missing", `{"destination":"d","key":null,"value":1}`},
		{"header not a string", `{"destination":"d","key":null,"headers":{"a":1},"value":1}`},
		{"unknown field", `{"destination":"d","key":null,"headers":{},"value":1,"x":2}`},
		{"trailing data", `{"destination":"d","key":null,"headers":{},"value":1} {}`},
		{"torn", `{"destination":"d","key":null,"headers":{},"val`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := ParseLine([]byte(tt.line)); err == nil {
				t.Fatal("ParseLine succeeded")
			}
		})
	}
}

// FuzzAppendString checks that our JSON string escaping always yields valid
// JSON that decodes to the input (with invalid UTF-8 replaced).
func FuzzAppendString(f *testing.F) {
	for _, s := range []string{"", "plain", "\"\\\n\r\t\b\f\x00\x1f\x7f", "é😀\u2028", "a\xffb\xc0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b := appendString(nil, s)
		var got string
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatalf("appendString(%q) = %s: %v", s, b, err)
		}
		if want := strings.ToValidUTF8(s, "\ufffd"); utf8.ValidString(s) && got != want {
			t.Fatalf("round trip of %q gave %q", s, got)
		}
		if bytes.ContainsAny(b, "\n\r") {
			t.Fatalf("raw newline in %s", b)
		}
	})
}

// FuzzLine checks that every record becomes exactly one valid JSON line that
// ParseLine reads back.
func FuzzLine(f *testing.F) {
	f.Add("d", []byte("k"), "h", "v", []byte(`{"a": [1, "x y"]}`))
	f.Add("", []byte(nil), "", "", []byte("\n"))
	f.Fuzz(func(t *testing.T, dest string, key []byte, hk, hv string, value []byte) {
		r := ingest.Record{Dest: dest, Key: key, Value: value, Headers: []ingest.Header{{Key: hk, Value: hv}}}
		var e encoder
		line := e.appendLine(nil, &r)
		if bytes.IndexByte(line, '\n') != len(line)-1 {
			t.Fatalf("not one line: %q", line)
		}
		l, err := ParseLine(line[:len(line)-1])
		if err != nil {
			t.Fatalf("ParseLine(%s): %v", line, err)
		}
		if utf8.Valid(value) && json.Valid(value) {
			var c bytes.Buffer
			json.Compact(&c, value)
			if !bytes.Equal(l.Value, c.Bytes()) {
				t.Fatalf("value %q written as %s", value, l.Value)
			}
		}
	})
}

// FuzzScanJSON checks our validator and compactor against encoding/json.
func FuzzScanJSON(f *testing.F) {
	for _, s := range []string{`{"a": [1, -2.5e+3, true, false, null, "x\"y \\u00e9"]}`, ` 0 `, `01`, `1.`, `-`, `{"a":}`, `[1,]`, `"\u12"`, "\"\t\"", `{} {}`, `tru`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		valid, space := scanJSON(b)
		if want := json.Valid(b); valid != want {
			t.Fatalf("scanJSON(%q) valid = %v, json.Valid = %v", b, valid, want)
		}
		if !valid {
			return
		}
		var want bytes.Buffer
		json.Compact(&want, b)
		got := appendCompact(nil, b)
		if !bytes.Equal(got, want.Bytes()) {
			t.Fatalf("appendCompact(%q) = %q, want %q", b, got, want.Bytes())
		}
		if !space && !bytes.Equal(got, b) {
			t.Fatalf("scanJSON(%q) saw no space but compaction changed it", b)
		}
	})
}

func jsonRec(r ingest.Record) ingest.Record { r.JSONValue = true; return r }

// TestEncoderMemoMatchesFreshEncoding: an encoder reused across records (its
// memoised destinations, keys and headers) writes exactly what a fresh one
// writes for each record.
func TestEncoderMemoMatchesFreshEncoding(t *testing.T) {
	recs := []ingest.Record{
		rec("restless.a", "a", `{"n":1}`, "restless-stream", "a", "restless-event-id", "1", "content-type", "application/json"),
		rec("restless.a", "a", `{"n":2}`, "restless-stream", "a", "restless-event-id", "2", "content-type", "application/json"),
		rec("restless.b", "b\"q", `{"n":3}`, "restless-stream", "b", "restless-event-id", "3"),
		rec("restless.b", "", `x`, "restless-stream", "b", "restless-dlq-reason", "parse_error", "restless-dlq-error", "bad\n"),
		rec("restless.a", "a", `{"n":4}`, "restless-event-id", "4", "restless-stream", "a", "content-type", "application/json"),
		rec("restless.a", "a", `{"n":5}`, "a", "1", "b", "2", "c", "3", "d", "4", "e", "5", "f", "6", "g", "7", "h", "8", "i", "9", "a", "10"),
		rec("restless.a", "a", `{"n":6}`, "a", "1", "b", "2", "c", "3", "d", "4", "e", "5", "f", "6", "g", "7", "h", "8", "i", "9x", "j", "10"),
	}
	var reused encoder
	// A key buffer the caller rewrites between records must not leave a
	// stale encoding behind.
	key := []byte("k1")
	r1 := rec("d", "", `1`)
	r1.Key = key
	first := string(reused.appendLine(nil, &r1))
	copy(key, "k2")
	second := string(reused.appendLine(nil, &r1))
	if !strings.Contains(first, `"key":"k1"`) || !strings.Contains(second, `"key":"k2"`) {
		t.Fatalf("rewritten key buffer:\n%s%s", first, second)
	}
	for i := range recs {
		var fresh encoder
		want := string(fresh.appendLine(nil, &recs[i]))
		// The same content in new strings must hit the memo as well.
		r := recs[i]
		r.Dest = strings.Clone(r.Dest)
		got := string(reused.appendLine(nil, &r))
		if got != want {
			t.Fatalf("record %d:\n got %s\nwant %s", i, got, want)
		}
		if !json.Valid([]byte(got)) {
			t.Fatalf("record %d: not valid JSON: %s", i, got)
		}
	}
}
