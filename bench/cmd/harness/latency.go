package main

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"time"
)

// latencyOutcome is the latency section: per broker, the percentiles of each
// run.
type latencyOutcome struct {
	rate            float64
	warmup, measure int
	byBroker        map[string]*latencyRuns
	order           []string
}

type latencyRuns struct {
	p50, p99, p999, max sample // milliseconds
	samples             int
}

// runLatency feeds ingest a firehose at a steady rate and measures, per
// event, the broker's timestamp of the record minus the event's
// meta.timestamp.
func runLatency(ctx context.Context, e *env, js *broker, warmup, measure int) (*latencyOutcome, error) {
	out := &latencyOutcome{rate: 1000, warmup: warmup, measure: measure, byBroker: map[string]*latencyRuns{}}
	for _, b := range []*broker{js, newKafka(true)} {
		lr := &latencyRuns{}
		out.byBroker[b.kind] = lr
		out.order = append(out.order, b.kind)
		for r := 0; r < e.runs; r++ {
			lat, err := latencyRun(ctx, e, b, out.rate, warmup+measure)
			if err != nil {
				return nil, fmt.Errorf("%s latency run %d: %w", b.kind, r+1, err)
			}
			lat = lat[warmup:]
			slices.Sort(lat)
			ms := func(d time.Duration) float64 { return float64(d) / 1e6 }
			lr.p50 = append(lr.p50, ms(percentile(lat, 0.50)))
			lr.p99 = append(lr.p99, ms(percentile(lat, 0.99)))
			lr.p999 = append(lr.p999, ms(percentile(lat, 0.999)))
			lr.max = append(lr.max, ms(lat[len(lat)-1]))
			lr.samples += len(lat)
			e.logf("latency %s run %d: p50 %.2f ms, p99 %.2f ms, p999 %.2f ms", b.kind, r+1, lr.p50[r], lr.p99[r], lr.p999[r])
		}
	}
	return out, nil
}

// latencyRun runs ingest over SSE on a firehose of n events at rate and
// returns the latency of each event, in firehose order.
func latencyRun(ctx context.Context, e *env, b *broker, rate float64, n int) ([]time.Duration, error) {
	run := e.runID("l")
	t, err := b.prepare(ctx, run)
	if err != nil {
		return nil, err
	}
	defer t.cleanup()
	defer closeKafkaClient(t.addr)
	fh, err := e.firehose(int64(n), rate)
	if err != nil {
		return nil, err
	}
	defer e.emu.DeleteStream(fh.ID)
	cfg, err := ingestConfig{
		streams:    []streamSpec{{name: "bench", transport: "sse", url: fh.SSEURL, secret: fh.Secret, dest: t.dest}},
		sink:       sinkYAML(t),
		checkpoint: filepath.Join(e.dir, "cp-"+run),
	}.write(e, run)
	if err != nil {
		return nil, err
	}
	wctx, cancel := context.WithTimeout(ctx, time.Duration(float64(n)/rate*float64(time.Second))+60*time.Second)
	defer cancel()
	p, err := e.startIngest(wctx, "ingest-"+run, cfg, time.Hour)
	if err != nil {
		return nil, err
	}
	lat, cerr := t.consumeLatencies(wctx, n)
	if cerr != nil {
		p.stop()
		return nil, fmt.Errorf("%w (ingest log: %s)", cerr, p.tail())
	}
	if _, err := p.wait(); err != nil {
		return nil, err
	}
	return lat, nil
}
