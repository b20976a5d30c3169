package main

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"
)

// scaleOutcome is the scale section.
type scaleOutcome struct {
	streams              int
	window               time.Duration
	rss, hwm, goroutines sample // bytes, bytes, count
	cpu                  sample // share of one core over the window
	rate                 sample // events/s published during the window

	dedupeStreams, dedupeIDs int
	dedupeRSS                sample // bytes, VmHWM

	breakdown benchSet // BenchmarkDedupeMemory and BenchmarkIdleLanes, in process
	command   string
}

// runScaleBreakdown runs the in-process memory benchmarks of bench/hotpath
// once: where the memory of a full dedupe window and of an idle lane goes.
func runScaleBreakdown(ctx context.Context, e *env, root string, out *scaleOutcome) error {
	args := []string{"-run", "^$", "-bench", "^(BenchmarkDedupeMemory|BenchmarkIdleLanes)$", "-benchtime", "1x", "-count", "1", "./bench/hotpath"}
	e.logf("go test %s", strings.Join(args, " "))
	res, err := goTest(ctx, root, args...)
	if err != nil {
		return err
	}
	out.breakdown = benchSet{}
	parseBench(res, out.breakdown)
	out.command = "go test " + strings.Join(args, " ")
	return nil
}

// runScaleStreams runs one ingest with many firehose streams at 1 event/s
// each into JetStream and samples its cost in steady state.
func runScaleStreams(ctx context.Context, e *env, js *broker, streams int, window time.Duration, out *scaleOutcome) error {
	out.streams, out.window = streams, window
	for r := 0; r < e.runs; r++ {
		if err := scaleStreamsRun(ctx, e, js, streams, window, out); err != nil {
			return fmt.Errorf("scale run %d: %w", r+1, err)
		}
		i := len(out.rss) - 1
		e.logf("scale %d streams run %d: RSS %.1f MiB, %d goroutines, %.1f%% CPU, %.0f events/s",
			streams, r+1, out.rss[i]/(1<<20), int(out.goroutines[i]), 100*out.cpu[i], out.rate[i])
	}
	return nil
}

func scaleStreamsRun(ctx context.Context, e *env, b *broker, streams int, window time.Duration, out *scaleOutcome) error {
	run := e.runID("s")
	t, err := b.prepare(ctx, run)
	if err != nil {
		return err
	}
	defer t.cleanup()
	fh, err := e.firehose(0, 1)
	if err != nil {
		return err
	}
	defer e.emu.DeleteStream(fh.ID)
	specs := make([]streamSpec, streams)
	for i := range specs {
		specs[i] = streamSpec{name: fmt.Sprintf("s%04d", i), transport: "sse", url: fh.SSEURL, secret: fh.Secret, dest: t.dest}
	}
	addr, err := freeAddr()
	if err != nil {
		return err
	}
	cfg, err := ingestConfig{streams: specs, sink: sinkYAML(t), checkpoint: filepath.Join(e.dir, "cp-"+run), httpAddr: addr}.write(e, run)
	if err != nil {
		return err
	}
	p, err := e.startIngest(ctx, "ingest-"+run, cfg, window+120*time.Second)
	if err != nil {
		return err
	}
	defer p.stop()
	metrics := "http://" + addr + "/metrics"
	if err := waitHTTP(metrics, 30*time.Second); err != nil {
		return fmt.Errorf("%w (ingest log: %s)", err, p.tail())
	}
	deadline := time.Now().Add(60 * time.Second)
	for e.emu.Subscribers(fh.ID) < streams {
		if time.Now().After(deadline) {
			return fmt.Errorf("only %d of %d streams connected after 60s", e.emu.Subscribers(fh.ID), streams)
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(2 * time.Second) // settle: every stream has its first events
	cpu0, err := procCPU(p.pid())
	if err != nil {
		return err
	}
	n0, err := t.count(ctx)
	if err != nil {
		return err
	}
	t0 := time.Now()
	time.Sleep(window)
	cpu1, err := procCPU(p.pid())
	if err != nil {
		return err
	}
	n1, err := t.count(ctx)
	if err != nil {
		return err
	}
	el := time.Since(t0)
	st, err := procStatus(p.pid())
	if err != nil {
		return err
	}
	g, err := scrapeMetric(metrics, "go_goroutines")
	if err != nil {
		return err
	}
	if _, err := p.stop(); err != nil {
		return err
	}
	out.rss = append(out.rss, float64(st["VmRSS"]))
	out.hwm = append(out.hwm, float64(st["VmHWM"]))
	out.goroutines = append(out.goroutines, g)
	out.cpu = append(out.cpu, (cpu1-cpu0).Seconds()/el.Seconds())
	out.rate = append(out.rate, float64(n1-n0)/el.Seconds())
	return nil
}

// runScaleDedupe runs `ingest run` with streams streams each reading the
// same firehose of ids events (all distinct ids), so that each stream's
// dedupe window ends up holding ids ids, into the stdout sink (sent to
// a pipe that only counts lines), and reports the process's peak RSS.
func runScaleDedupe(ctx context.Context, e *env, streams, ids int, out *scaleOutcome) error {
	out.dedupeStreams, out.dedupeIDs = streams, ids
	for r := 0; r < e.runs; r++ {
		run := e.runID("d")
		fh, err := e.firehose(int64(ids), 0)
		if err != nil {
			return err
		}
		specs := make([]streamSpec, streams)
		for i := range specs {
			specs[i] = streamSpec{name: fmt.Sprintf("d%02d", i), transport: "sse", url: fh.SSEURL, secret: fh.Secret, dest: "bench.dedupe"}
		}
		cfg, err := ingestConfig{streams: specs, sink: "type: stdout\n", checkpoint: filepath.Join(e.dir, "cp-"+run)}.write(e, run)
		if err != nil {
			return err
		}
		lines := &lineCounter{}
		p, err := startProc(ctx, e.dir, "ingest-"+run, 300*time.Second, lines, e.ingest, "run", "-c", cfg)
		if err != nil {
			return err
		}
		pr, err := p.wait()
		_ = e.emu.DeleteStream(fh.ID)
		if err != nil {
			return err
		}
		if want := int64(streams * ids); lines.n.Load() != want {
			return fmt.Errorf("dedupe run %d: %d records written, want %d", r+1, lines.n.Load(), want)
		}
		out.dedupeRSS = append(out.dedupeRSS, float64(pr.MaxRSS))
		e.logf("scale dedupe %d×%d run %d: peak RSS %.1f MiB (CPU %.1fs)", streams, ids, r+1, float64(pr.MaxRSS)/(1<<20), pr.CPU.Seconds())
	}
	return nil
}

// lineCounter counts the lines written to it.
type lineCounter struct{ n atomic.Int64 }

func (c *lineCounter) Write(p []byte) (int, error) {
	c.n.Add(int64(bytes.Count(p, []byte{'\n'})))
	return len(p), nil
}
