package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/restless-stream/ingest/emulator"
)

// env is what every section shares: the work directory, the built binaries
// and the emulator.
type env struct {
	dir    string
	ingest string // path of the built ingest binary
	self   string // path of this harness binary (for the bound)
	emu    *emulator.Emulator
	apiKey string
	runs   int
	quick  bool
	prof   bool // profile every ingest run (name.cpu.pprof in dir)
	seq    int
}

// runID returns a fresh name for a run: lowercase letters and digits.
func (e *env) runID(prefix string) string {
	e.seq++
	return fmt.Sprintf("%s%d%d", prefix, time.Now().Unix()%100000, e.seq)
}

func (e *env) logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "harness: "+format+"\n", args...)
}

// firehose creates a firehose of 1 KiB signed events.
func (e *env) firehose(count int64, rate float64) (emulator.StreamInfo, error) {
	return e.emu.CreateFirehose(emulator.FirehoseConfig{EventBytes: 1024, Count: count, Rate: rate, Secret: "bench-secret-" + fmt.Sprint(e.seq)})
}

// streamSpec is one stream of a generated configuration.
type streamSpec struct {
	name, transport, url, secret, dest string
}

// ingestConfig is the generated configuration of one `ingest run`.
type ingestConfig struct {
	streams    []streamSpec
	sink       string // the YAML of the sink section's body
	checkpoint string // directory of the file checkpoints
	httpAddr   string // the metrics server; "" = a free loopback port
}

// sinkYAML returns the sink section for t with the daemon's defaults.
func sinkYAML(t *target) string {
	if t.broker.kind == kindJetStream {
		return fmt.Sprintf("type: nats\n  nats:\n    url: %s\n    stream: %s\n    base_subject: %q\n", t.url(), t.name, t.base+".>")
	}
	return fmt.Sprintf("type: kafka\n  kafka:\n    brokers: [%s]\n    create_topics: false\n", t.addr)
}

// write writes the configuration to a file in dir and returns its path.
func (c ingestConfig) write(e *env, name string) (string, error) {
	var b strings.Builder
	fmt.Fprintf(&b, "restless:\n  api_key: %s\n  base_url: %s\n  stream_base_url: %s\n", e.apiKey, e.emu.URL(), e.emu.URL())
	b.WriteString("streams:\n")
	for _, s := range c.streams {
		fmt.Fprintf(&b, "  - name: %s\n    transport: %s\n    url: %q\n    destination: %s\n    verify: {secrets: [%q], mode: require}\n    reconnect: {initial: 50ms, max: 1s}\n",
			s.name, s.transport, s.url, s.dest, s.secret)
	}
	fmt.Fprintf(&b, "sink:\n  %s", c.sink)
	fmt.Fprintf(&b, "checkpoint:\n  type: file\n  dir: %s\n", c.checkpoint)
	if c.httpAddr == "" {
		a, err := freeAddr()
		if err != nil {
			return "", err
		}
		c.httpAddr = a
	}
	fmt.Fprintf(&b, "http:\n  addr: %q\n", c.httpAddr)
	b.WriteString("log:\n  level: warn\n")
	p := filepath.Join(e.dir, name+".yaml")
	return p, os.WriteFile(p, []byte(b.String()), 0o600)
}

// startIngest starts `ingest run -c cfg`.
func (e *env) startIngest(ctx context.Context, name, cfg string, timeout time.Duration) (*proc, error) {
	return e.startIngestProfiled(ctx, name, cfg, timeout, false)
}

// startIngestProfiled starts `ingest run -c cfg`, with a CPU profile in
// profilePath(name) when profile or -cpuprofile asks for one.
func (e *env) startIngestProfiled(ctx context.Context, name, cfg string, timeout time.Duration, profile bool) (*proc, error) {
	args := []string{"run", "-c", cfg}
	if e.prof || profile {
		args = append(args, "--cpuprofile", e.profilePath(name))
	}
	return startProc(ctx, e.dir, name, timeout, nil, e.ingest, args...)
}

// profilePath is where the CPU profile of the ingest run name goes.
func (e *env) profilePath(name string) string {
	return filepath.Join(e.dir, name+".cpu.pprof")
}
