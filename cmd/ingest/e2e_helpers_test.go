package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/restless-stream/ingest/emulator"
	"github.com/restless-stream/ingest/internal/testenv"
	"github.com/restless-stream/ingest/internal/testproc"
)

// The binary under test, built once per test run.
var (
	buildOnce sync.Once
	buildDir  string
	buildPath string
	buildErr  error
)

func TestMain(m *testing.M) {
	// The default URLs are the hosted service's, which needs a key: tests that
	// load a configuration without one get this (the binary's tests do not:
	// startIngest strips RESTLESS_ variables). Tests of a missing key unset it.
	if os.Getenv(envAPIKey) == "" {
		os.Setenv(envAPIKey, "rs_unit_test_key_0123456789")
	}
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// ingestBinary builds ./cmd/ingest (once) as a user would.
func ingestBinary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "ingest-e2e-")
		if buildErr != nil {
			return
		}
		buildPath = filepath.Join(buildDir, "ingest")
		out, err := exec.Command("go", "build", "-o", buildPath, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return buildPath
}

// proc is a running ingest process.
type proc struct {
	t       *testing.T
	cmd     *exec.Cmd
	stdout  *testproc.Output
	stderr  *testproc.Output
	done    chan struct{}
	code    int
	secrets []string
}

// startIngest runs the binary with args and env (on top of a clean environment:
// no INGEST_ or RESTLESS_ variable leaks in). Every value in secrets must never
// appear in its output; that is checked when the test ends.
func startIngest(t *testing.T, env map[string]string, secrets []string, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(ingestBinary(t), args...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "INGEST_") && !strings.HasPrefix(kv, "RESTLESS_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	p := &proc{t: t, cmd: cmd, stdout: testproc.NewOutput(), stderr: testproc.NewOutput(), done: make(chan struct{}), secrets: secrets}
	cmd.Stdout, cmd.Stderr = p.stdout, p.stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start ingest: %v", err)
	}
	go func() {
		err := cmd.Wait()
		p.code = cmd.ProcessState.ExitCode()
		if err != nil && p.code < 0 {
			p.code = -1
		}
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = cmd.Process.Kill()
			<-p.done
		}
		all := p.stdout.String() + p.stderr.String()
		for _, s := range p.secrets {
			if s != "" && strings.Contains(all, s) {
				t.Errorf("ingest %v printed the secret %q", args, s)
			}
		}
		if t.Failed() {
			t.Logf("ingest %v\nstdout:\n%s\nstderr:\n%s", args, p.stdout, p.stderr)
		}
	})
	return p
}

// runIngest runs the binary to completion and returns its exit code and output.
func runIngest(t *testing.T, env map[string]string, secrets []string, args ...string) (int, string, string) {
	t.Helper()
	p := startIngest(t, env, secrets, args...)
	code := p.wait(60 * time.Second)
	return code, p.stdout.String(), p.stderr.String()
}

// wait returns the exit code, failing the test after timeout.
func (p *proc) wait(timeout time.Duration) int {
	p.t.Helper()
	select {
	case <-p.done:
		return p.code
	case <-time.After(timeout):
		p.t.Fatalf("ingest did not exit within %v", timeout)
		return -1
	}
}

// signal sends sig to the process.
func (p *proc) signal(sig syscall.Signal) {
	p.t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.t.Fatalf("signal: %v", err)
	}
}

// waitOutput waits until re matches stdout or stderr and returns the match.
func (p *proc) waitOutput(re *regexp.Regexp, timeout time.Duration) []string {
	p.t.Helper()
	m, err := testproc.WaitMatch(re, timeout, p.done, p.stdout, p.stderr)
	if errors.Is(err, testproc.ErrExited) {
		p.t.Fatalf("ingest exited (code %d) before printing %q", p.code, re)
	}
	if err != nil {
		p.t.Fatalf("ingest did not print %q within %v", re, timeout)
	}
	return m
}

// waitUntil polls cond until it holds; for state outside the process (files,
// brokers) that has no event to wait on.
func waitUntil(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		<-tick.C
	}
}

const testAPIKey = "rs_e2e_9f8e7d6c5b4a39281706f5e4d3c2b1a0"

// newTestEmulator starts an in-process emulator accepting testAPIKey.
func newTestEmulator(t *testing.T) *emulator.Emulator {
	t.Helper()
	em, err := emulator.New(emulator.Options{APIKeys: []string{testAPIKey}, KeepAlive: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := em.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = em.Close() })
	return em
}

// writeConfig writes a configuration file and returns its path.
func writeConfig(t *testing.T, dir, yaml string) string {
	t.Helper()
	path := filepath.Join(dir, "ingest.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// natsAvailable reports whether the shared NATS server listens on 127.0.0.1:4222.
func natsAvailable() bool { return testenv.DialNATS() == nil }

func uniqueName(prefix string) string {
	return fmt.Sprintf("%s%d", prefix, time.Now().UnixNano()%1_000_000_000)
}

// ctxT is a context for test calls to brokers.
func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
