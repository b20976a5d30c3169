package emulator

import (
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestFirehoseMemoryBounded: firehose connections together use at most
// Options.MaxFirehoseBytes to generate their events; a connection beyond it
// is answered 503 with Retry-After, and the heap stays within the budget
// (ten connections to a firehose of 8 MiB events took 160 MiB and more).
func TestFirehoseMemoryBounded(t *testing.T) {
	const budget = 24 << 20
	e := startEmu(t, Options{MaxFirehoseBytes: budget})
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base := ms.HeapInuse
	ok, busy := 0, 0
	for range 10 {
		info, err := e.CreateFirehose(FirehoseConfig{EventBytes: 8 << 20})
		if err != nil {
			t.Fatal(err)
		}
		req, _ := http.NewRequest("GET", sseURL(e, info.ID), nil)
		req.Header.Set("Authorization", "Bearer "+testKey)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { resp.Body.Close() })
		switch resp.StatusCode {
		case http.StatusOK:
			ok++
			b := make([]byte, 4096)
			if _, err := resp.Body.Read(b); err != nil {
				t.Fatal(err)
			}
		case http.StatusServiceUnavailable:
			busy++
			if resp.Header.Get("Retry-After") == "" {
				t.Error("503 without Retry-After")
			}
		default:
			t.Fatalf("status %d", resp.StatusCode)
		}
	}
	if ok == 0 || busy == 0 {
		t.Fatalf("%d connections served, %d refused: want both (the budget holds two)", ok, busy)
	}
	time.Sleep(200 * time.Millisecond) // let the served ones fill their buffers
	runtime.GC()
	runtime.ReadMemStats(&ms)
	if grew := int64(ms.HeapInuse) - int64(base); grew > budget+16<<20 {
		t.Errorf("heap grew by %d MiB with a budget of %d MiB", grew>>20, budget>>20)
	}
}

// TestReplayBufferBytesBounded: a stream's replay buffer holds at most
// MaxReplayBytes (always the newest event), whatever the size of the
// bodies its upstream sends.
func TestReplayBufferBytesBounded(t *testing.T) {
	const maxBytes = 1 << 20
	f := newFeed(10000, maxBytes, 0, nil)
	big := `{"pad":"` + strings.Repeat("x", 300<<10) + `","n":`
	for i := range 50 {
		doc := []byte(big + strconv.Itoa(i) + `}`)
		if _, err := f.publishUpdate(eventMeta{Time: time.Now()}, doc, "s", false, false); err != nil {
			t.Fatal(err)
		}
		if f.bytes > maxBytes+(400<<10) {
			t.Fatalf("after %d events the buffer holds %d bytes, over %d", i+1, f.bytes, maxBytes)
		}
	}
	buf := make([]*storedEvent, 100)
	n, _, gap, _, _ := f.read(1, buf)
	if n == 0 || !gap || !strings.Contains(string(buf[n-1].full), `"n":49}`) {
		t.Errorf("read %d events (gap %v): want the newest, after a gap", n, gap)
	}
	if got := f.start(position{}); got != f.next-1 {
		t.Errorf("a new connection starts at %d, want the latest update %d", got, f.next-1)
	}
}
