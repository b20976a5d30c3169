package reliability

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/restless-stream/ingest/internal/testproc"
)

// seen collects every byte of output of the suite (process output, metrics,
// readiness reports) so that the secrets scenario can scan all of it.
var (
	seenMu    sync.Mutex
	seenBytes int64
	seenLeaks []string
)

// scan checks text for the suite's secrets and fails t when one appears.
func scan(t *testing.T, what, text string) {
	t.Helper()
	seenMu.Lock()
	seenBytes += int64(len(text))
	seenMu.Unlock()
	for _, s := range allSecrets {
		if strings.Contains(text, s) {
			seenMu.Lock()
			seenLeaks = append(seenLeaks, fmt.Sprintf("%s: %s", t.Name(), what))
			seenMu.Unlock()
			t.Errorf("%s contains the secret %q", what, s)
		}
	}
}

// proc is one run of the ingest binary.
type proc struct {
	t      *testing.T
	name   string
	cmd    *exec.Cmd
	cancel context.CancelFunc
	stdout *testproc.Output
	stderr *testproc.Output
	done   chan struct{}
	code   int
	http   string // host:port of the metrics server, once known
}

// start runs `ingest args...` with a clean environment plus env. The process
// is bounded by timeout and killed when the test ends; its output is scanned
// for secrets then.
func start(t *testing.T, timeout time.Duration, env map[string]string, args ...string) *proc {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	cmd := exec.CommandContext(ctx, binary, args...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "INGEST_") && !strings.HasPrefix(kv, "RESTLESS_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	p := &proc{t: t, name: strings.Join(args, " "), cmd: cmd, cancel: cancel, stdout: testproc.NewOutput(), stderr: testproc.NewOutput(), done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.stdout, p.stderr
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("start ingest: %v", err)
	}
	go func() {
		_ = cmd.Wait()
		p.code = cmd.ProcessState.ExitCode()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.kill()
		cancel()
		scan(t, "output of ingest "+p.name, p.stdout.String()+p.stderr.String())
		if t.Failed() {
			t.Logf("ingest %s (exit %d)\nstdout (tail):\n%s\nstderr (tail):\n%s", p.name, p.code, tail(p.stdout.String(), 3000), tail(p.stderr.String(), 6000))
		}
	})
	return p
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}

// runDaemon starts `ingest run -c cfg` and waits until it logs where its
// metrics server listens (when the configuration has one).
func runDaemon(t *testing.T, timeout time.Duration, cfg string, withHTTP bool) *proc {
	t.Helper()
	p := start(t, timeout, map[string]string{"RESTLESS_API_KEY": apiKey}, "run", "-c", cfg)
	if withHTTP {
		m := p.waitOutput(regexp.MustCompile(`http=http://(127\.0\.0\.1:\d+)`), 30*time.Second)
		p.http = m[1]
	} else {
		p.waitOutput(regexp.MustCompile(`ingest running`), 30*time.Second)
	}
	return p
}

// kill sends SIGKILL (kill -9) and waits for the process to go.
func (p *proc) kill() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		p.t.Errorf("ingest %s survived SIGKILL for 10s", p.name)
	}
}

// signal sends sig.
func (p *proc) signal(sig syscall.Signal) {
	p.t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.t.Fatalf("signal %v: %v", sig, err)
	}
}

// exited reports whether the process has ended.
func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// wait returns the exit code, failing the test after timeout.
func (p *proc) wait(timeout time.Duration) int {
	p.t.Helper()
	select {
	case <-p.done:
		return p.code
	case <-time.After(timeout):
		p.t.Fatalf("ingest %s did not exit within %v", p.name, timeout)
		return -1
	}
}

// waitOutput waits until re matches stdout or stderr.
func (p *proc) waitOutput(re *regexp.Regexp, timeout time.Duration) []string {
	p.t.Helper()
	m, err := testproc.WaitMatch(re, timeout, p.done, p.stdout, p.stderr)
	if errors.Is(err, testproc.ErrExited) {
		p.t.Fatalf("ingest %s exited (code %d) before printing %q", p.name, p.code, re)
	}
	if err != nil {
		p.t.Fatalf("ingest %s did not print %q within %v", p.name, re, timeout)
	}
	return m
}

// get fetches a path of the metrics server; the body is scanned for secrets.
func (p *proc) get(path string) (int, string, error) {
	p.t.Helper()
	if p.http == "" {
		p.t.Fatal("the daemon has no metrics server")
	}
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + p.http + path)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	scan(p.t, path+" of ingest "+p.name, string(b))
	return resp.StatusCode, string(b), err
}

// metrics scrapes /metrics into series → value, keyed as printed:
// name{label="v",...}.
func (p *proc) metrics() (metrics, error) {
	p.t.Helper()
	code, body, err := p.get("/metrics")
	if err != nil {
		return nil, err
	}
	if code != http.StatusOK {
		return nil, fmt.Errorf("/metrics: HTTP %d", code)
	}
	return parseMetrics(body), nil
}

type metrics map[string]float64

func parseMetrics(body string) metrics {
	m := metrics{}
	sc := bufio.NewScanner(strings.NewReader(body))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			continue
		}
		m[line[:i]] = v
	}
	return m
}

// stream returns a per-stream series, e.g. m.stream("ingest_events_published_total", "orders").
func (m metrics) stream(name, stream string) float64 {
	return m[fmt.Sprintf(`%s{stream=%q}`, name, stream)]
}

// rejected returns ingest_events_rejected_total for a stream and reason.
func (m metrics) rejected(stream, reason string) float64 {
	return m[fmt.Sprintf(`ingest_events_rejected_total{reason=%q,stream=%q}`, reason, stream)]
}

// waitFor polls cond (state outside the test process has no event to wait on)
// until it holds or timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		<-tick.C
	}
}

// waitForWhy is waitFor with a cond that says what it still waits for ("" = done).
func waitForWhy(t *testing.T, timeout time.Duration, what string, cond func() string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		why := cond()
		if why == "" {
			return
		}
		if t.Failed() {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s: %s", timeout, what, why)
		}
		<-tick.C
	}
}

// writeFile writes a file in dir and returns its path.
func writeFile(t *testing.T, dir, name, text string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
