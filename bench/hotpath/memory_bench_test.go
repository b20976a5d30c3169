package hotpath

import (
	"context"
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/restless-stream/ingest"
	"github.com/restless-stream/ingest/bench/internal/events"
	"github.com/restless-stream/ingest/checkpoint"
	"github.com/restless-stream/ingest/client"
	"github.com/restless-stream/ingest/pipeline"
)

// heldSource yields n events with increasing ids from a small ring, then
// blocks until release is closed, then ends.
type heldSource struct {
	frames  [][]byte
	i, n    int
	base    int64
	release <-chan struct{}
}

const heldRing = 2048 // > Buffer + MaxEvents of a lane with the defaults

func (s *heldSource) Next(ctx context.Context) (ingest.Frame, error) {
	if s.i == s.n {
		select {
		case <-s.release:
			return ingest.Frame{}, ingest.ErrStreamEnded
		case <-ctx.Done():
			return ingest.Frame{}, ctx.Err()
		}
	}
	b := s.frames[s.i%heldRing]
	s.i++
	events.SetID(b, s.base+int64(s.i))
	return ingest.Frame{Data: b, Received: time.Now()}, nil
}

func (s *heldSource) Close() error { return nil }

// BenchmarkDedupeMemory runs 10 streams of 100000 events each through the
// pipeline (dedupe window 100000, the default) and reports the heap the
// pipeline holds once every window is full: live heap after a GC, minus the
// sources' own frames, and the heap's peak (HeapSys) during the run.
// One op is the whole run.
func BenchmarkDedupeMemory(b *testing.B) {
	const streams, ids = 10, 100_000
	v, err := client.NewVerifier([]string{secret})
	if err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	for range b.N {
		release := make(chan struct{})
		srcs := make([]*heldSource, streams)
		now := time.Now()
		for i := range srcs {
			s := &heldSource{n: ids, base: startID + int64(i)*10_000_000, release: release, frames: make([][]byte, heldRing)}
			for j := range s.frames {
				s.frames[j] = events.Build(secret, int64(j+1), s.base+int64(j+1), eventSize, now)
			}
			srcs[i] = s
		}
		sink := &ackSink{}
		cfg := pipeline.Config{}
		for i, s := range srcs {
			cfg.Streams = append(cfg.Streams, pipeline.StreamConfig{
				Name: fmt.Sprintf("s%02d", i), Verifier: v,
				Open: func(context.Context, string) (pipeline.Source, error) { return s, nil },
			})
		}
		p, err := pipeline.New(cfg, sink, checkpoint.NewMemory(), pipeline.NopObserver{})
		if err != nil {
			b.Fatal(err)
		}
		var base runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&base)
		b.StartTimer()
		done := make(chan error, 1)
		go func() { done <- p.Run(context.Background()) }()
		var peak atomic.Uint64
		for sink.n.Load() < streams*ids {
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			if ms.HeapSys > peak.Load() {
				peak.Store(ms.HeapSys)
			}
			time.Sleep(20 * time.Millisecond)
		}
		b.StopTimer()
		time.Sleep(200 * time.Millisecond) // the last acknowledgements reach the windows
		var full runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&full)
		close(release)
		if err := <-done; err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(full.HeapAlloc-base.HeapAlloc)/(1<<20), "live-MiB")
		b.ReportMetric(float64(full.HeapAlloc-base.HeapAlloc)/(streams*ids), "live-B/id")
		b.ReportMetric(float64(peak.Load())/(1<<20), "peak-heapsys-MiB")
		runtime.KeepAlive(srcs)
	}
	b.StartTimer()
}

// idleSource blocks until ctx ends: a stream with nothing to say.
type idleSource struct{}

func (idleSource) Next(ctx context.Context) (ingest.Frame, error) {
	<-ctx.Done()
	return ingest.Frame{}, ctx.Err()
}

func (idleSource) Close() error { return nil }

// BenchmarkIdleLanes starts 1000 lanes whose sources send nothing and
// reports the heap and goroutines each lane costs. One op is the whole run.
func BenchmarkIdleLanes(b *testing.B) {
	const streams = 1000
	v, err := client.NewVerifier([]string{secret})
	if err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	for range b.N {
		cfg := pipeline.Config{}
		for i := range streams {
			cfg.Streams = append(cfg.Streams, pipeline.StreamConfig{
				Name: fmt.Sprintf("s%04d", i), Verifier: v,
				Open: func(context.Context, string) (pipeline.Source, error) { return idleSource{}, nil },
			})
		}
		var base, full runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&base)
		g0 := runtime.NumGoroutine()
		p, err := pipeline.New(cfg, &ackSink{}, checkpoint.NewMemory(), pipeline.NopObserver{})
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		b.StartTimer()
		go func() { done <- p.Run(ctx) }()
		time.Sleep(500 * time.Millisecond) // every lane started
		b.StopTimer()
		runtime.GC()
		runtime.ReadMemStats(&full)
		g := runtime.NumGoroutine() - g0
		cancel()
		<-done
		b.ReportMetric(float64(full.HeapAlloc-base.HeapAlloc)/streams/1024, "heap-KiB/lane")
		b.ReportMetric(float64(g)/streams, "goroutines/lane")
	}
	b.StartTimer()
}
