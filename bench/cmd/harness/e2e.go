package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strconv"
	"time"
)

// runResult is one measured run of a job that moved n events.
type runResult struct {
	rate   float64       // events/s, first to last acknowledged record
	cpuPM  float64       // CPU seconds per million events
	rss    float64       // peak RSS, bytes
	cpu    time.Duration // total CPU of the process
	events int64
	// hostPM is the harness's own CPU seconds per million events during the
	// run: the emulator and the broker (and the polls).
	hostPM float64
}

// e2eCase is one line of the end-to-end table.
type e2eCase struct {
	broker, transport string // transport "" = the bound
	rate, cpuPM, rss  sample
	hostPM            sample
	// profile is where ingest's CPU went in one more run, made when the
	// case missed its goal.
	profile *cpuBreakdown
}

// e2eOutcome is the end-to-end section: per broker, the ingest cases (SSE,
// WebSocket) and the bound.
type e2eOutcome struct {
	n     int64
	cases []*e2eCase
}

func (o *e2eOutcome) get(broker, transport string) *e2eCase {
	for _, c := range o.cases {
		if c.broker == broker && c.transport == transport {
			return c
		}
	}
	c := &e2eCase{broker: broker, transport: transport}
	o.cases = append(o.cases, c)
	return c
}

// runE2E measures ingest (SSE and WebSocket) against the bound on each
// broker, interleaving the runs so that load drifts hit both alike.
func runE2E(ctx context.Context, e *env, js *broker, n int64) (*e2eOutcome, error) {
	out := &e2eOutcome{n: n}
	for _, b := range []*broker{js, newKafka(false)} {
		for r := 0; r < e.runs; r++ {
			for _, tr := range []string{"sse", "websocket"} {
				res, err := ingestThroughput(ctx, e, b, tr, n, "")
				if err != nil {
					return nil, fmt.Errorf("%s %s run %d: %w", b.kind, tr, r+1, err)
				}
				c := out.get(b.kind, tr)
				c.rate, c.cpuPM, c.rss = append(c.rate, res.rate), append(c.cpuPM, res.cpuPM), append(c.rss, res.rss)
				c.hostPM = append(c.hostPM, res.hostPM)
				e.logf("e2e %s %s run %d: %.0f events/s, %.2f CPU s/M, %.1f MiB", b.kind, tr, r+1, res.rate, res.cpuPM, res.rss/(1<<20))
			}
			res, err := boundThroughput(ctx, e, b, n)
			if err != nil {
				return nil, fmt.Errorf("%s bound run %d: %w", b.kind, r+1, err)
			}
			c := out.get(b.kind, "")
			c.rate, c.cpuPM, c.rss = append(c.rate, res.rate), append(c.cpuPM, res.cpuPM), append(c.rss, res.rss)
			c.hostPM = append(c.hostPM, res.hostPM)
			e.logf("e2e %s bound run %d: %.0f events/s, %.2f CPU s/M", b.kind, r+1, res.rate, res.cpuPM)
		}
		// Where a case missed its goal, one more run with a CPU profile
		// says where ingest's time went (not counted in the figures).
		bound := out.get(b.kind, "")
		for _, tr := range []string{"sse", "websocket"} {
			c := out.get(b.kind, tr)
			if c.rate.median()/bound.rate.median() >= goalBoundRatio {
				continue
			}
			name := e.runID("p")
			res, err := ingestThroughput(ctx, e, b, tr, n, name)
			if err != nil {
				return nil, fmt.Errorf("%s %s profiled run: %w", b.kind, tr, err)
			}
			if c.profile, err = breakdown(ctx, e.ingest, e.profilePath("ingest-"+name), res); err != nil {
				return nil, fmt.Errorf("%s %s profile: %w", b.kind, tr, err)
			}
			e.logf("e2e %s %s profiled run: %.0f events/s, %.2f CPU s/M", b.kind, tr, res.rate, res.cpuPM)
		}
	}
	return out, nil
}

// ingestThroughput runs `ingest run` on a firehose of n events into a fresh
// place on broker b. A run named (profiled != "") writes a CPU profile to
// e.profilePath("ingest-"+profiled).
func ingestThroughput(ctx context.Context, e *env, b *broker, transport string, n int64, profiled string) (runResult, error) {
	run := profiled
	if run == "" {
		run = e.runID("t")
	}
	t, err := b.prepare(ctx, run)
	if err != nil {
		return runResult{}, err
	}
	defer t.cleanup()
	defer closeKafkaClient(t.addr)
	fh, err := e.firehose(n, 0)
	if err != nil {
		return runResult{}, err
	}
	defer e.emu.DeleteStream(fh.ID)
	url := fh.SSEURL
	if transport == "websocket" {
		url = fh.WebSocketURL
	}
	cfg, err := ingestConfig{
		streams:    []streamSpec{{name: "bench", transport: transport, url: url, secret: fh.Secret, dest: t.dest}},
		sink:       sinkYAML(t),
		checkpoint: filepath.Join(e.dir, "cp-"+run),
	}.write(e, run)
	if err != nil {
		return runResult{}, err
	}
	wctx, cancel := context.WithTimeout(ctx, 120*time.Second)
	defer cancel()
	host0 := selfCPU()
	p, err := e.startIngestProfiled(wctx, "ingest-"+run, cfg, 150*time.Second, profiled != "")
	if err != nil {
		return runResult{}, err
	}
	prog, werr := watch(wctx, n, t.count)
	host := selfCPU() - host0
	if werr != nil {
		p.stop()
		return runResult{}, fmt.Errorf("%w (ingest log: %s)", werr, p.tail())
	}
	pr, err := p.wait()
	if err != nil {
		return runResult{}, err
	}
	if got, err := t.count(ctx); err != nil || got != n {
		return runResult{}, fmt.Errorf("broker holds %d records, want %d (%v)", got, n, err)
	}
	return runResult{rate: prog.rate(), cpuPM: pr.CPU.Seconds() / float64(n) * 1e6, rss: float64(pr.MaxRSS), cpu: pr.CPU, events: n,
		hostPM: host.Seconds() / float64(n) * 1e6}, nil
}

// boundReport is what `harness bound` prints: the CPU it spent publishing
// (building the records is left out).
type boundReport struct {
	CPUNanos  int64 `json:"cpu_ns"`
	WallNanos int64 `json:"wall_ns"`
}

// boundThroughput runs the bound (`harness bound`) for n pre-built records.
func boundThroughput(ctx context.Context, e *env, b *broker, n int64) (runResult, error) {
	run := e.runID("b")
	t, err := b.prepare(ctx, run)
	if err != nil {
		return runResult{}, err
	}
	defer t.cleanup()
	defer closeKafkaClient(t.addr)
	wctx, cancel := context.WithTimeout(ctx, 120*time.Second)
	defer cancel()
	var stdout bytes.Buffer
	p, err := startProc(wctx, e.dir, "bound-"+run, 150*time.Second, &stdout, e.self, "bound",
		"-broker", b.kind, "-url", t.url(), "-dest", t.dest, "-n", strconv.FormatInt(n, 10))
	if err != nil {
		return runResult{}, err
	}
	host0 := selfCPU()
	prog, werr := watch(wctx, n, t.count)
	host := selfCPU() - host0
	if werr != nil {
		p.stop()
		return runResult{}, fmt.Errorf("%w (bound log: %s)", werr, p.tail())
	}
	pr, err := p.wait()
	if err != nil {
		return runResult{}, err
	}
	var rep boundReport
	if err := json.Unmarshal(bytes.TrimSpace(stdout.Bytes()), &rep); err != nil {
		return runResult{}, fmt.Errorf("bound report %q: %w", stdout.String(), err)
	}
	cpu := time.Duration(rep.CPUNanos)
	return runResult{rate: prog.rate(), cpuPM: cpu.Seconds() / float64(n) * 1e6, rss: float64(pr.MaxRSS), cpu: cpu, events: n,
		hostPM: host.Seconds() / float64(n) * 1e6}, nil
}
