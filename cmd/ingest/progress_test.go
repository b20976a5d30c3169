package main

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/restless-stream/ingest"
	"github.com/restless-stream/ingest/pipeline"
)

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// TestProgressLine: every log.progress_interval each stream logs what it
// published, dropped and rejected, its lag and cursors; 0 logs nothing.
func TestProgressLine(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var buf syncBuffer
		m := NewMetrics()
		sm := m.Stream("orders")
		cur := &streamCursor{}
		cur.set("evt_7")
		pr := &progressReporter{
			log: slog.New(slog.NewTextHandler(&buf, nil)), metrics: m, every: time.Minute,
			status: func() []pipeline.StreamStatus {
				return []pipeline.StreamStatus{{Name: "orders", State: pipeline.LaneRunning, Checkpoint: "evt_6"}}
			},
			cursor: func(string) string { return cur.get() },
		}
		ctx, cancel := context.WithCancel(t.Context())
		go pr.run(ctx)
		sm.Published(5)
		sm.Duplicate()
		sm.Rejected("signature_invalid", false)
		sm.EventLag(1500 * time.Millisecond)
		time.Sleep(59 * time.Second)
		synctest.Wait()
		if buf.String() != "" {
			t.Fatalf("a line before the interval: %s", buf.String())
		}
		time.Sleep(time.Second)
		synctest.Wait()
		want := `msg=progress stream=orders state=running published=5 published_since_last=5 duplicates=1 rejected=1 rejected_since_last=1 lag=1.5s cursor=evt_7 checkpoint=evt_6`
		if !strings.Contains(buf.String(), want) {
			t.Fatalf("progress line:\n%s\nwant %s", buf.String(), want)
		}
		sm.Published(2)
		time.Sleep(time.Minute)
		synctest.Wait()
		if !strings.Contains(buf.String(), "published=7 published_since_last=2") {
			t.Errorf("second line:\n%s", buf.String())
		}
		cancel()

		var off syncBuffer
		pr0 := *pr
		pr0.log, pr0.every = slog.New(slog.NewTextHandler(&off, nil)), 0
		go pr0.run(t.Context())
		time.Sleep(time.Hour)
		synctest.Wait()
		if off.String() != "" {
			t.Errorf("progress_interval 0 logged: %s", off.String())
		}
	})
}

// fakeSource returns frames with cursors, then blocks.
type fakeSource struct{ cursors []string }

func (f *fakeSource) Next(ctx context.Context) (ingest.Frame, error) {
	if len(f.cursors) == 0 {
		<-ctx.Done()
		return ingest.Frame{}, ctx.Err()
	}
	c := f.cursors[0]
	f.cursors = f.cursors[1:]
	return ingest.Frame{Data: []byte("{}"), Cursor: c}, nil
}
func (f *fakeSource) Close() error { return nil }

// TestReconnectLogNamesTheCursor: a reconnect and the connection after it name
// the cursor the source resumes from.
func TestReconnectLogNamesTheCursor(t *testing.T) {
	var buf syncBuffer
	d := &daemon{log: slog.New(slog.NewTextHandler(&buf, nil)), cursors: map[string]*streamCursor{"orders": {}}}
	src := d.trackCursor("orders", "evt_1", &fakeSource{cursors: []string{"evt_2", "evt_3"}})
	d.logState("orders", ingest.StateChange{State: ingest.StateConnected})
	for range 2 {
		if _, err := src.Next(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	d.logState("orders", ingest.StateChange{State: ingest.StateReconnecting, Attempt: 1, Delay: time.Second})
	d.logState("orders", ingest.StateChange{State: ingest.StateConnected})
	logs := buf.String()
	for _, want := range []string{
		`msg="source connected" stream=orders state=connected resumed_from=evt_1`,
		`msg="source reconnecting" stream=orders state=reconnecting attempt=1 delay=1s resume_from=evt_3`,
		`msg="source connected" stream=orders state=connected resumed_from=evt_3`,
	} {
		if !strings.Contains(logs, want) {
			t.Errorf("log lacks %s:\n%s", want, logs)
		}
	}
}

func BenchmarkCursorSource(b *testing.B) {
	d := &daemon{cursors: map[string]*streamCursor{"orders": {}}}
	f := &fakeSource{}
	src := d.trackCursor("orders", "", f)
	cursors := make([]string, b.N)
	for i := range cursors {
		cursors[i] = "evt"
	}
	f.cursors = cursors
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		_, _ = src.Next(context.Background())
	}
}
