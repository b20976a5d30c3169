package emulator

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"strconv"
	"testing"

	"github.com/restless-stream/ingest/client"
)

func TestFirehose(t *testing.T) {
	e := startEmu(t, Options{})
	info, err := e.CreateFirehose(FirehoseConfig{EventBytes: 700, Count: 500, StartID: 1000})
	if err != nil {
		t.Fatal(err)
	}
	v, _ := client.NewVerifier([]string{info.Secret})
	read := func(sub *subscriber, from, to int) string {
		var last string
		for n := from; n <= to; n++ {
			r := sub.next(t)
			if r.id != strconv.Itoa(1000+n) || len(r.raw) != 700 {
				t.Fatalf("event %d: id %s, %d bytes", n, r.id, len(r.raw))
			}
			if err := v.Verify(r.ev.Data, r.ev.Signature); err != nil {
				t.Fatalf("event %d: %v", n, err)
			}
			last = r.id
		}
		return last
	}
	for _, ws := range []bool{false, true} {
		var sub *subscriber
		if ws {
			sub = subscribeWS(t, info.WebSocketURL)
		} else {
			sub = subscribeSSE(t, info.SSEURL, nil)
		}
		cursor := read(sub, 1, 200)
		sub.close()
		// Resume exactly after the cursor, to the end of the stream.
		if ws {
			sub = subscribeWS(t, info.WebSocketURL+"&cursor="+cursor)
		} else {
			sub = subscribeSSE(t, info.SSEURL, map[string]string{"Last-Event-ID": cursor})
		}
		cursor = read(sub, 201, 500)
		if err := sub.end(t); err != nil {
			t.Fatalf("end of a finite firehose: %v", err)
		}
		resp, err := rawGet(t, context.Background(), info.SSEURL+"&cursor="+cursor, nil)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusNoContent {
			t.Fatalf("at the end: status %d, want 204", resp.StatusCode)
		}
	}
}

func TestFirehoseRateAndAdmin(t *testing.T) {
	e := startEmu(t, Options{})
	code, m := call(t, e, "POST", "/_emulator/firehose", map[string]any{"id": "fh1", "eventBytes": 100, "rate": 2000, "count": 20})
	if code != 201 || m["id"] != "fh1" || m["hmacSecret"] == "" {
		t.Fatalf("create firehose: %d %v", code, m)
	}
	sub := subscribeSSE(t, m["sseUrl"].(string), nil)
	for n := 1; n <= 20; n++ {
		if r := sub.next(t); r.id == "" || r.ev.Type != "update" {
			t.Fatalf("event %d: %s", n, r.raw)
		}
	}
	if err := sub.end(t); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []map[string]any{{"eventBytes": -1}, {"rate": -1}, {"count": -5}, {"id": "fh1"}, {"speed": 1}} {
		if code, m := call(t, e, "POST", "/_emulator/firehose", bad); code != 400 {
			t.Errorf("firehose %v: %d %v", bad, code, m)
		}
	}
	if code, _ := call(t, e, "GET", "/streams/fh1", nil); code != 404 {
		t.Errorf("a firehose is not a REST stream: %d", code)
	}
	if code, m := call(t, e, "GET", "/_emulator/streams/fh1", nil); code != 200 || m["kind"] != "firehose" {
		t.Errorf("admin get: %d %v", code, m)
	}
	if code, _ := call(t, e, "DELETE", "/_emulator/streams/fh1", nil); code != 200 {
		t.Errorf("admin delete: %d", code)
	}
}

// BenchmarkFirehoseSSE measures the firehose over one SSE connection on loopback.
func BenchmarkFirehoseSSE(b *testing.B) {
	e, err := New(Options{APIKeys: []string{testKey}})
	if err != nil {
		b.Fatal(err)
	}
	defer e.Close()
	if err := e.Start("127.0.0.1:0"); err != nil {
		b.Fatal(err)
	}
	info, _ := e.CreateFirehose(FirehoseConfig{EventBytes: 1024, Count: int64(b.N)})
	req, _ := http.NewRequest("GET", info.SSEURL, nil)
	req.Header.Set("Authorization", "Bearer "+testKey)
	b.ReportAllocs()
	b.SetBytes(1024)
	b.ResetTimer()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReaderSize(resp.Body, 64<<10)
	n := 0
	for {
		_, _, err := readSSE(br)
		if err == io.EOF {
			break
		}
		if err != nil {
			b.Fatal(err)
		}
		n++
	}
	if n != b.N {
		b.Fatalf("read %d events, want %d", n, b.N)
	}
}

// BenchmarkFirehoseGenerate measures generating and signing events.
func BenchmarkFirehoseGenerate(b *testing.B) {
	f := newFirehose(FirehoseConfig{EventBytes: 1024})
	src, _ := f.source("secret", position{})
	buf := make([]outEvent, 128)
	b.ReportAllocs()
	b.SetBytes(1024)
	for i := 0; i < b.N; {
		n, _, _ := src.next(buf[:min(len(buf), b.N-i)])
		i += n
	}
}
