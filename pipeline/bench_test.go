package pipeline

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/restless-stream/ingest"
	"github.com/restless-stream/ingest/checkpoint"
	"github.com/restless-stream/ingest/client"
	"github.com/restless-stream/ingest/pipeline/internal/dedupe"
)

// benchFrames makes n distinct signed 1 KiB events.
func benchFrames(n int) []ingest.Frame {
	out := make([]ingest.Frame, n)
	for i := range out {
		out[i] = frame(event(strconv.Itoa(1780793376562+i), padTo(1024)))
	}
	return out
}

// BenchmarkProcess measures the lane's per-event work: decode, verify,
// dedupe (lookup, claim, and the acknowledgement that moves the id into the
// window) and building the record, on 1 KiB events.
func BenchmarkProcess(b *testing.B) {
	for _, mode := range []VerifyMode{VerifyRequire, VerifyOff} {
		b.Run("verify="+string(mode), func(b *testing.B) {
			const n = 1 << 16
			fs := benchFrames(n)
			cfg := testConfig(b, "orders", nil)
			cfg.Streams[0].VerifyMode = mode
			if err := cfg.Validate(); err != nil {
				b.Fatal(err)
			}
			cfg = cfg.withDefaults()
			dd := dedupe.New(cfg.Dedupe.Size, cfg.Dedupe.TTL)
			p := newProcessor(cfg.Streams[0], "", NopObserver{}, dd)
			it := new(item)
			fps := make([]dedupe.Fingerprint, 1)
			b.SetBytes(int64(len(fs[0].Data)))
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				f := fs[i%n]
				if i%n == 0 && i > 0 {
					// Forget the ids each round, so nothing is a duplicate.
					b.StopTimer()
					dd.Close()
					dd = dedupe.New(cfg.Dedupe.Size, cfg.Dedupe.TTL)
					p.dd = dd
					b.StartTimer()
				}
				p.process(f, it)
				if it.kind != kindPublish {
					b.Fatalf("event %d not published", i)
				}
				fps[0] = it.fp
				dd.Acknowledge(fps, 0)
				i++
			}
			dd.Close()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

type nopSink struct{}

func (nopSink) Write(context.Context, []ingest.Record) error { return nil }

// sliceSource returns its frames, then ErrStreamEnded.
type sliceSource struct {
	frames []ingest.Frame
	i      int
}

func (s *sliceSource) Next(context.Context) (ingest.Frame, error) {
	if s.i == len(s.frames) {
		return ingest.Frame{}, ingest.ErrStreamEnded
	}
	s.i++
	return s.frames[s.i-1], nil
}

func (s *sliceSource) Close() error { return nil }

// BenchmarkLane measures a whole lane (reader, writer, checkpointer) with
// verification and dedupe on, writing to a sink that acknowledges at once.
func BenchmarkLane(b *testing.B) {
	const n = 100_000
	fs := benchFrames(n)
	b.ReportAllocs()
	events := 0
	start := time.Now()
	for b.Loop() {
		cfg := testConfig(b, "orders", &sliceSource{frames: fs})
		cfg.CheckpointInterval = 100 * time.Millisecond
		p := mustNew(b, cfg, nopSink{}, checkpoint.NewMemory(), nil)
		if err := p.Run(context.Background()); err != nil {
			b.Fatal(err)
		}
		events += n
	}
	b.ReportMetric(float64(events)/time.Since(start).Seconds(), "events/s")
}

// BenchmarkProcessParts splits BenchmarkProcess into the client's decode
// and verify, for comparison in one run.
func BenchmarkProcessParts(b *testing.B) {
	fs := benchFrames(1024)
	v := testConfig(b, "x", nil).Streams[0].Verifier
	var ev client.Event
	b.Run("decode", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if err := client.DecodeEvent(fs[i%len(fs)].Data, &ev); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
	b.Run("decode+verify", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if err := client.DecodeEvent(fs[i%len(fs)].Data, &ev); err != nil {
				b.Fatal(err)
			}
			if err := v.Verify(ev.Data, ev.Signature); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
}
