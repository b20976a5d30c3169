package hotpath

import (
	"context"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/restless-stream/ingest"
	"github.com/restless-stream/ingest/bench/internal/events"
	"github.com/restless-stream/ingest/checkpoint"
	"github.com/restless-stream/ingest/client"
	"github.com/restless-stream/ingest/pipeline"
)

const (
	secret    = "bench-secret"
	eventSize = 1024
	// ringSize frames are reused in turn with fresh ids; it is larger than
	// what a lane holds (Buffer + MaxEvents), so a frame is rewritten only
	// after its record was acknowledged.
	ringSize = 8192
	startID  = 1_700_000_000_000
)

// ringSource yields n events with increasing ids, then ErrStreamEnded.
type ringSource struct {
	frames [][]byte
	i, n   int
}

func newRingSource(n int) *ringSource {
	s := &ringSource{n: n, frames: make([][]byte, ringSize)}
	now := time.Now()
	for i := range s.frames {
		s.frames[i] = events.Build(secret, int64(i+1), startID+int64(i+1), eventSize, now)
	}
	return s
}

func (s *ringSource) Next(ctx context.Context) (ingest.Frame, error) {
	if s.i == s.n {
		return ingest.Frame{}, ingest.ErrStreamEnded
	}
	b := s.frames[s.i%ringSize]
	s.i++
	events.SetID(b, startID+int64(s.i))
	return ingest.Frame{Data: b, Received: time.Now()}, nil
}

func (s *ringSource) Close() error { return nil }

// ackSink acknowledges every record at once.
type ackSink struct{ n atomic.Int64 }

func (k *ackSink) Write(_ context.Context, recs []ingest.Record) error {
	k.n.Add(int64(len(recs)))
	return nil
}

// BenchmarkLane runs b.N events through one lane with verification required
// and dedupe on (the daemon's defaults: window 100000, batch 512). One op is
// one event; allocs/op are allocations per event.
func BenchmarkLane(b *testing.B) {
	v, err := client.NewVerifier([]string{secret})
	if err != nil {
		b.Fatal(err)
	}
	src := newRingSource(b.N)
	sink := &ackSink{}
	cfg := pipeline.Config{
		Streams: []pipeline.StreamConfig{{
			Name:       "bench",
			Verifier:   v,
			VerifyMode: pipeline.VerifyRequire,
			Open: func(context.Context, string) (pipeline.Source, error) {
				return src, nil
			},
		}},
	}
	p, err := pipeline.New(cfg, sink, checkpoint.NewMemory(), pipeline.NopObserver{})
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(eventSize)
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := processCPU()
	if err := p.Run(context.Background()); err != nil {
		b.Fatal(err)
	}
	cpu := processCPU() - cpu0
	b.StopTimer()
	if got := sink.n.Load(); got != int64(b.N) {
		b.Fatalf("published %d of %d events", got, b.N)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
	// CPU time per event, from the process's own accounting: unlike ns/op it
	// does not grow when other processes share the core.
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/event")
}

// processCPU returns the CPU time (user + system) of the process so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// TestRingSource checks that the benchmark's events decode, verify and carry
// the ids the source gives them.
func TestRingSource(t *testing.T) {
	v, err := client.NewVerifier([]string{secret})
	if err != nil {
		t.Fatal(err)
	}
	src := newRingSource(ringSize + 3)
	var ev client.Event
	for i := 1; ; i++ {
		f, err := src.Next(context.Background())
		if err == ingest.ErrStreamEnded {
			if i != ringSize+4 {
				t.Fatalf("ended after %d events", i-1)
			}
			return
		}
		if len(f.Data) != eventSize {
			t.Fatalf("event %d is %d bytes", i, len(f.Data))
		}
		if err := client.DecodeEvent(f.Data, &ev); err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
		if err := v.Verify(ev.Data, ev.Signature); err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
		if want := strconv.FormatInt(startID+int64(i), 10); ev.EventID != want {
			t.Fatalf("event %d has id %s, want %s", i, ev.EventID, want)
		}
	}
}
