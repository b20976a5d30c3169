package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/restless-stream/ingest"
	"github.com/restless-stream/ingest/client"
	"github.com/restless-stream/ingest/emulator"
	"github.com/restless-stream/ingest/internal/natsserver"
	"github.com/restless-stream/ingest/pipeline"
)

// Ports the demo prefers; when taken it uses free ones and says so.
const (
	demoNATSPort = 4222
	demoHTTPAddr = "127.0.0.1:9464"
)

// demoConfigYAML is the demo's configuration; %s are filled at start. It goes
// through the same loader and validation as any configuration file.
const demoConfigYAML = `
restless:
  base_url: %[1]s
  stream_base_url: %[1]s
streams:
  - name: demo
    stream_id: demo
    verify: {secrets: ["%[2]s"]}
    reconnect: {initial: 200ms, max: 2s}
sink:
  type: nats
  nats: {url: "%[3]s", stream: RESTLESS_DEMO, duplicate_window: 2m}
checkpoint: {type: memory}
http: {addr: "%[4]s"}
log: {level: warn}
`

// cmdDemo is `ingest demo`: emulator with its demo API → pipeline → embedded
// NATS with JetStream, printing what is published. No network, account or file.
func cmdDemo(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet("demo", e.stderr)
	natsPort := fs.Int("nats-port", demoNATSPort, "port of the embedded NATS server (taken: a free one is used)")
	httpAddr := fs.String("http-addr", demoHTTPAddr, "metrics and health address (taken: a free port is used)")
	logLevel := fs.String("log-level", "warn", "log level: debug, info, warn, error")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	out := newConsole(e.stdout)

	em, err := emulator.New(emulator.Options{DemoAPI: true})
	if err != nil {
		return fmt.Errorf("emulator: %w", err)
	}
	defer em.Close()
	if err := em.Start("127.0.0.1:0"); err != nil {
		return fmt.Errorf("emulator: %w", err)
	}
	secret, err := em.Secret(emulator.DemoStreamID)
	if err != nil {
		return fmt.Errorf("emulator: %w", err)
	}
	registerSecrets(ingest.Secret(secret), ingest.Secret(em.APIKey()))

	dir, err := os.MkdirTemp("", "ingest-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	emb, portNote, err := startDemoNATS(filepath.Join(dir, "nats"), *natsPort)
	if err != nil {
		return err
	}
	defer emb.Shutdown()

	addr, httpNote := *httpAddr, ""
	if addr != "" && !portFree(addr) {
		httpNote = fmt.Sprintf(" (%s is taken)", addr)
		addr = "127.0.0.1:0"
	}
	yaml := fmt.Sprintf(demoConfigYAML, em.URL(), secret, emb.ClientURL(), addr)
	cfg, err := LoadConfig(LoadOptions{File: "demo", Data: []byte(yaml),
		Overrides: []Override{{Key: "log.level", Value: *logLevel, Origin: "flag --log-level"}}})
	if err != nil {
		return err
	}
	cfg.Restless.APIKey = ingest.Secret(em.APIKey())
	log := newLogger(e.stderr, cfg.Log)

	stop, force, release := signals()
	defer release()
	var metricsURL string
	d, err := newDaemon(ctx, cfg, log,
		func(d *daemon) { d.wrapSink = func(s sink) sink { return &printingSink{sink: s, out: out} } },
		func(d *daemon) { d.onHTTP = func(a string) { metricsURL = "http://" + a } })
	if err != nil {
		return err
	}

	out.line("restless-ingest demo: Restless Stream emulator → pipeline (verify, dedupe, checkpoint) → NATS JetStream\n")
	out.line(fmt.Sprintf("  emulator:   %s (demo API: a new order every second, stream \"demo\", HMAC-signed)\n", em.URL()))
	out.line(fmt.Sprintf("  NATS:       %s%s, JetStream stream RESTLESS_DEMO\n", emb.ClientURL(), portNote))
	if metricsURL != "" {
		out.line(fmt.Sprintf("  metrics:    %s/metrics  (also /healthz, /readyz)%s\n", metricsURL, httpNote))
	}
	out.line(fmt.Sprintf("  watch it:   nats sub 'restless.>' -s %s\n", emb.ClientURL()))
	out.line("Published events follow. Ctrl-C drains and stops.\n\n")

	progCtx, stopProgress := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { out.progress(progCtx, d.metrics) })
	err = d.run(ctx, stop, force)
	stopProgress()
	wg.Wait()
	r, p, dup, rej := d.metrics.Totals()
	out.line(fmt.Sprintf("\ndemo stopped: %d received, %d published, %d duplicates, %d rejected\n", r, p, dup, rej))
	return err
}

// startDemoNATS starts the embedded NATS server on port, or on a free port when
// port is taken; the note says which happened.
func startDemoNATS(dir string, port int) (*natsserver.Server, string, error) {
	emb, err := natsserver.Start(natsserver.Config{Dir: dir, Port: port})
	if err == nil {
		return emb, "", nil
	}
	if port == 0 {
		return nil, "", err
	}
	emb, err2 := natsserver.Start(natsserver.Config{Dir: dir, Port: 0})
	if err2 != nil {
		return nil, "", errors.Join(err, err2)
	}
	return emb, fmt.Sprintf(" (port %d is taken, so a free port was chosen)", port), nil
}

// portFree reports whether addr can be listened on now.
func portFree(addr string) bool {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return false
	}
	ln.Close()
	return true
}

// printingSink prints every record after the broker acknowledged it.
type printingSink struct {
	sink
	out *console
}

func (p *printingSink) Write(ctx context.Context, recs []ingest.Record) error {
	err := p.sink.Write(ctx, recs)
	var we ingest.WriteErrors
	if err != nil && !errors.As(err, &we) {
		return err
	}
	for i := range recs {
		if we != nil && i < len(we) && we[i] != nil {
			continue
		}
		p.out.line(formatRecord(&recs[i]))
	}
	return err
}

// formatRecord is one compact line per record.
func formatRecord(r *ingest.Record) string {
	now := time.Now().Format("15:04:05")
	if reason, ok := r.Header(pipeline.HeaderDLQReason); ok {
		msg, _ := r.Header(pipeline.HeaderDLQError)
		return fmt.Sprintf("%s  %-16s rejected (%s): %s\n", now, r.Dest, reason, msg)
	}
	id, _ := r.Header(pipeline.HeaderEventID)
	typ, _ := r.Header(pipeline.HeaderEventType)
	verified, _ := r.Header(pipeline.HeaderVerified)
	v := "unverified"
	if verified == "true" {
		v = "verified"
	}
	body := string(r.Value)
	if ev, err := client.ParseEvent(r.Value); err == nil {
		switch {
		case ev.Data != nil:
			body = string(ev.Data)
		case ev.Error != nil:
			body = "error: " + ev.ErrorMessage()
		}
	}
	return fmt.Sprintf("%s  %-16s #%s %-6s %-10s %s\n", now, r.Dest, id, typ, v, truncate(body, 90))
}

func truncate(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// console serialises the demo's output: event lines and the progress line,
// which is redrawn in place on a terminal and printed every few seconds otherwise.
type console struct {
	mu     sync.Mutex
	w      io.Writer
	tty    bool
	status string // the progress line shown on a terminal, "" if none
}

func newConsole(w io.Writer) *console {
	c := &console{w: w}
	if f, ok := w.(*os.File); ok {
		c.tty = isTerminal(f)
	}
	return c
}

// line prints s (ending in a newline) above the progress line.
func (c *console) line(s string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.tty && c.status != "" {
		fmt.Fprint(c.w, "\r\033[K", s, c.status)
		return
	}
	fmt.Fprint(c.w, s)
}

// progress redraws the progress line every second until ctx ends.
func (c *console) progress(ctx context.Context, m *Metrics) {
	start := time.Now()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var lastPub int64
	last := start
	for n := 1; ; n++ {
		select {
		case <-ctx.Done():
			c.mu.Lock()
			if c.tty && c.status != "" {
				fmt.Fprint(c.w, "\r\033[K")
				c.status = ""
			}
			c.mu.Unlock()
			return
		case now := <-tick.C:
			if !c.tty && n%5 != 0 {
				continue
			}
			_, pub, dup, rej := m.Totals()
			rate := float64(pub-lastPub) / now.Sub(last).Seconds()
			lastPub, last = pub, now
			text := fmt.Sprintf("▶ %.1f events/s · published %d · duplicates %d · rejected %d · up %s",
				rate, pub, dup, rej, now.Sub(start).Truncate(time.Second))
			c.mu.Lock()
			if c.tty {
				c.status = text
				fmt.Fprint(c.w, "\r\033[K", text)
			} else {
				fmt.Fprintln(c.w, text)
			}
			c.mu.Unlock()
		}
	}
}
