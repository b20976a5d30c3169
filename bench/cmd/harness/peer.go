package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"
)

// peerOutcome is the peer section: Benthos and ingest on the same job.
type peerOutcome struct {
	n               int64
	benthosVersion  string
	benthos, ingest e2eCase
}

// runPeer runs the job on Benthos and on ingest, interleaved: the firehose
// over WebSocket, HMAC check, dedupe on event_id, a file of JSON lines.
func runPeer(ctx context.Context, e *env, benthosBin, benthosCfg string, n int64) (*peerOutcome, error) {
	out := &peerOutcome{n: n}
	if v, err := exec.Command(benthosBin, "--version").CombinedOutput(); err == nil {
		out.benthosVersion = string(bytes.TrimSpace(v))
	}
	for r := 0; r < e.runs; r++ {
		for _, who := range []string{"benthos", "ingest"} {
			res, err := peerRun(ctx, e, who, benthosBin, benthosCfg, n)
			if err != nil {
				return nil, fmt.Errorf("peer %s run %d: %w", who, r+1, err)
			}
			c := &out.ingest
			if who == "benthos" {
				c = &out.benthos
			}
			c.rate, c.cpuPM, c.rss = append(c.rate, res.rate), append(c.cpuPM, res.cpuPM), append(c.rss, res.rss)
			e.logf("peer %s run %d: %.0f events/s, %.2f CPU s/M events, %.1f MiB", who, r+1, res.rate, res.cpuPM, res.rss/(1<<20))
		}
	}
	return out, nil
}

func peerRun(ctx context.Context, e *env, who, benthosBin, benthosCfg string, n int64) (runResult, error) {
	run := e.runID("p")
	fh, err := e.firehose(n, 0)
	if err != nil {
		return runResult{}, err
	}
	defer e.emu.DeleteStream(fh.ID)
	path := filepath.Join(e.dir, run+".jsonl")
	defer os.Remove(path)
	var p *proc
	switch who {
	case "benthos":
		addr, err := freeAddr()
		if err != nil {
			return runResult{}, err
		}
		p, err = startBenthos(ctx, e, run, benthosBin, benthosCfg, map[string]string{
			"BENCH_URL":    fh.WebSocketURL + "&apiKey=" + e.apiKey,
			"BENCH_SECRET": fh.Secret,
			"BENCH_COUNT":  strconv.FormatInt(n, 10),
			"BENCH_OUT":    path,
			"BENCH_HTTP":   addr,
		})
		if err != nil {
			return runResult{}, err
		}
	default:
		cfg, err := ingestConfig{
			streams:    []streamSpec{{name: "bench", transport: "websocket", url: fh.WebSocketURL, secret: fh.Secret, dest: "bench.events"}},
			sink:       fmt.Sprintf("type: file\n  file:\n    path: %s\n", path),
			checkpoint: filepath.Join(e.dir, "cp-"+run),
		}.write(e, run)
		if err != nil {
			return runResult{}, err
		}
		if p, err = e.startIngest(ctx, who+"-"+run, cfg, 300*time.Second); err != nil {
			return runResult{}, err
		}
	}
	// Poll the output's size: the first poll that sees bytes and the first
	// that sees the final size bound the busy time.
	type obs struct {
		t    time.Time
		size int64
	}
	var seen []obs
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
poll:
	for {
		if fi, err := os.Stat(path); err == nil && fi.Size() > 0 {
			if len(seen) == 0 || seen[len(seen)-1].size != fi.Size() {
				seen = append(seen, obs{time.Now(), fi.Size()})
			}
		}
		select {
		case <-p.done:
			break poll
		case <-tick.C:
		}
	}
	pr, err := p.wait()
	if err != nil {
		return runResult{}, err
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return runResult{}, err
	}
	lines := int64(bytes.Count(data, []byte{'\n'}))
	if lines != n {
		return runResult{}, fmt.Errorf("%s wrote %d lines, want %d", who, lines, n)
	}
	final := int64(len(data))
	if len(seen) > 0 && seen[len(seen)-1].size != final {
		// The last bytes came after the last poll: the exit bounds them.
		seen = append(seen, obs{pr.Exit, final})
	}
	if len(seen) < 2 {
		return runResult{}, fmt.Errorf("%s: too few size samples to time the run (%d)", who, len(seen))
	}
	perLine := float64(final) / float64(n)
	first, last := seen[0], seen[len(seen)-1]
	rate := (float64(final-first.size) / perLine) / last.t.Sub(first.t).Seconds()
	return runResult{rate: rate, cpuPM: pr.CPU.Seconds() / float64(n) * 1e6, rss: float64(pr.MaxRSS), cpu: pr.CPU, events: n}, nil
}

// startBenthos runs the peer with its configuration; vars fill the
// configuration's ${...} references.
func startBenthos(ctx context.Context, e *env, run, bin, cfg string, vars map[string]string) (*proc, error) {
	for k, v := range vars {
		os.Setenv(k, v)
	}
	defer func() {
		for k := range vars {
			os.Unsetenv(k)
		}
	}()
	return startProc(ctx, e.dir, "benthos-"+run, 300*time.Second, nil, bin, "run", cfg)
}
