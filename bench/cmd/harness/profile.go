package main

import (
	"bufio"
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
)

// cpuBreakdown is where the CPU of one profiled ingest run went.
type cpuBreakdown struct {
	cpuPM float64 // CPU seconds per million events of that run
	rate  float64 // its events/s
	parts []cpuPart
	top   string // pprof -top: the functions that spent the most themselves
}

// cpuPart is the share of the profile under one function (cum%).
type cpuPart struct {
	label string
	share float64 // 0..1
}

// profileParts are the functions that stand for the parts of ingest's
// work, by the end of their names in pprof; where one part has several
// functions that never call each other, separated by |, their shares add
// up. Labels starting with — are part of the line above them.
var profileParts = []struct{ label, fn string }{
	{"reading the stream: HTTP or WebSocket, SSE decoding (the source's goroutine)", "client/internal/stream.(*Runner).pump"},
	{"processing each event (the lane's reader)", "pipeline.(*processor).process"},
	{"— of which parsing the envelope (`client.DecodeEvent`, `DecodeEventCanonical`)", "client.DecodeEvent|client.DecodeEventCanonical"},
	{"— of which the HMAC check (`Verifier.Verify`, `VerifyCanonical`)", "client.(*Verifier).verify"},
	{"— of which dedupe", "dedupe.(*Filter).SeenOrClaim"},
	{"writing batches to the sink (the lane's writer)", "pipeline.(*batchWriter).flush"},
	{"saving checkpoints", "pipeline.(*lane).save"},
	{"kafka-go's connection goroutines (encoding, compression, I/O)", "kafka-go.(*conn).run"},
	{"nats.go's read loop (acknowledgements)", "nats%2ego.(*Conn).readLoop"},
	{"nats.go's flusher", "nats%2ego.(*Conn).flusher"},
	{"garbage collection in the background", "runtime.gcBgMarkWorker"},
	{"memory allocation (everywhere)", "runtime.mallocgc"},
}

// breakdown reads the profile at prof of the ingest binary bin.
func breakdown(ctx context.Context, bin, prof string, res runResult) (*cpuBreakdown, error) {
	cum, err := exec.CommandContext(ctx, "go", "tool", "pprof", "-top", "-cum", "-nodecount", "1000", bin, prof).Output()
	if err != nil {
		return nil, fmt.Errorf("pprof -cum: %w", err)
	}
	shares := cumShares(string(cum))
	out := &cpuBreakdown{cpuPM: res.cpuPM, rate: res.rate}
	for _, p := range profileParts {
		var share float64
		for _, alt := range strings.Split(p.fn, "|") {
			var best float64
			for fn, v := range shares {
				if strings.HasSuffix(fn, alt) && v > best {
					best = v
				}
			}
			share += best
		}
		if share > 0 {
			out.parts = append(out.parts, cpuPart{label: p.label, share: share})
		}
	}
	top, err := exec.CommandContext(ctx, "go", "tool", "pprof", "-top", "-nodecount", "15", bin, prof).Output()
	if err != nil {
		return nil, fmt.Errorf("pprof -top: %w", err)
	}
	out.top = trimPprof(string(top))
	return out, nil
}

// cumShares reads the cum% column of `pprof -top -cum` by function name.
func cumShares(s string) map[string]float64 {
	out := map[string]float64{}
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		// flat flat% sum% cum cum% name...
		if len(f) < 6 || !strings.HasSuffix(f[4], "%") {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSuffix(f[4], "%"), 64)
		if err != nil {
			continue
		}
		name := strings.Join(f[5:], " ")
		name = strings.TrimSuffix(name, " (inline)")
		out[name] = max(out[name], v/100)
	}
	return out
}
