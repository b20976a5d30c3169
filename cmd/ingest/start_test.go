package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/restless-stream/ingest/checkpoint"
	"github.com/restless-stream/ingest/internal/natsserver"
)

// freeLocalPort returns a loopback port that was free a moment ago.
func freeLocalPort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func readyzCode(addr string) int {
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get("http://" + addr + "/readyz")
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestRunWaitsForNATSAtStart: with NATS down at start, run keeps trying with
// /readyz at 503, and starts once the server is up.
func TestRunWaitsForNATSAtStart(t *testing.T) {
	em := newTestEmulator(t)
	natsPort, httpPort := freeLocalPort(t), freeLocalPort(t)
	httpAddr := fmt.Sprintf("127.0.0.1:%d", httpPort)
	cfg := writeConfig(t, t.TempDir(), fmt.Sprintf(`
restless: {base_url: %[1]s, stream_base_url: %[1]s}
streams:
  - name: orders
    direct: {url: "%[1]s/_emulator/demo/orders", polling_interval: 0.2}
sink: {type: nats, nats: {url: "nats://127.0.0.1:%[2]d"}}
checkpoint: {type: nats_kv}
http: {addr: "%[3]s"}
`, em.URL(), natsPort, httpAddr))
	env := map[string]string{"RESTLESS_API_KEY": testAPIKey}
	p := startIngest(t, env, []string{testAPIKey}, "run", "-c", cfg)
	p.waitOutput(regexp.MustCompile(`cannot start: broker or checkpoint store unreachable; retrying.*attempt=2`), 30*time.Second)
	if code := readyzCode(httpAddr); code != http.StatusServiceUnavailable {
		t.Fatalf("/readyz while NATS is down at start = %d, want 503", code)
	}

	srv, err := natsserver.Start(natsserver.Config{Dir: t.TempDir(), Port: natsPort})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	p.waitOutput(regexp.MustCompile(`ingest running`), 60*time.Second)
	waitUntil(t, 30*time.Second, "/readyz 200", func() bool { return readyzCode(httpAddr) == http.StatusOK })
	p.signal(syscall.SIGTERM)
	if code := p.wait(30 * time.Second); code != 0 {
		t.Fatalf("exit %d after SIGTERM, want 0", code)
	}
}

// TestRunStoppedWhileWaitingForNATS: a signal during the start's retries stops
// the daemon cleanly.
func TestRunStoppedWhileWaitingForNATS(t *testing.T) {
	cfg := writeConfig(t, t.TempDir(), fmt.Sprintf(`
streams: [{name: orders, url: "http://127.0.0.1:1/s"}]
sink: {type: nats, nats: {url: "nats://127.0.0.1:%d"}}
checkpoint: {type: memory}
http: {addr: ""}
`, freeLocalPort(t)))
	p := startIngest(t, nil, nil, "run", "-c", cfg)
	p.waitOutput(regexp.MustCompile(`retrying`), 30*time.Second)
	p.signal(syscall.SIGINT)
	if code := p.wait(30 * time.Second); code != 0 {
		t.Fatalf("exit %d after SIGINT during the start, want 0", code)
	}
}

// TestShutdownTimeoutWithBrokerDown: with the broker gone, a stop drains for
// shutdown_timeout, then exits 1; what was not acknowledged is read again.
func TestShutdownTimeoutWithBrokerDown(t *testing.T) {
	em := newTestEmulator(t)
	srv, err := natsserver.Start(natsserver.Config{Dir: t.TempDir(), Port: 0})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	dir := t.TempDir()
	cfg := writeConfig(t, dir, fmt.Sprintf(`
restless: {base_url: %[1]s, stream_base_url: %[1]s}
streams:
  - name: orders
    direct: {url: "%[1]s/_emulator/demo/orders", polling_interval: 0.1}
sink: {type: nats, nats: {url: "%[2]s"}}
checkpoint: {dir: cp}
http: {addr: ""}
shutdown_timeout: 2s
`, em.URL(), srv.ClientURL()))
	env := map[string]string{"RESTLESS_API_KEY": testAPIKey}
	p := startIngest(t, env, []string{testAPIKey}, "run", "-c", cfg)
	p.waitOutput(regexp.MustCompile(`source connected`), 30*time.Second)
	srv.Shutdown()
	p.waitOutput(regexp.MustCompile(`sink disconnected`), 30*time.Second)
	time.Sleep(500 * time.Millisecond) // events keep coming; their writes now wait
	p.signal(syscall.SIGTERM)
	if code := p.wait(30 * time.Second); code != exitFailure {
		t.Fatalf("exit %d, want 1 after shutdown_timeout", code)
	}
	p.waitOutput(regexp.MustCompile(`shutdown_timeout reached`), time.Second)
}

// TestRetryableStart: only a broker that cannot be reached is waited for;
// refused credentials and configuration mistakes end the start at once.
func TestRetryableStart(t *testing.T) {
	for _, tt := range []struct {
		name string
		err  error
		want bool
	}{
		{"connection refused", &brokerError{fmt.Errorf("sink.nats: %w", &net.OpError{Op: "dial", Err: syscall.ECONNREFUSED})}, true},
		{"no servers", &brokerError{fmt.Errorf("sink.nats: %w", nats.ErrNoServers)}, true},
		{"refused token", &brokerError{fmt.Errorf("sink.nats: %w", nats.ErrAuthorization)}, false},
		{"kafka sasl refused", &brokerError{fmt.Errorf("kafka: wrong password?: %w", io.ErrUnexpectedEOF)}, false},
		{"configuration", &brokerError{&ConfigError{Errs: []FieldError{{Path: "sink.nats.replicas", Msg: "x"}}}}, false},
		{"held", &brokerError{&checkpoint.HeldError{What: "x", Holder: "y"}}, false},
		{"local path", fmt.Errorf("sink.file.path: %w", syscall.ECONNREFUSED), false},
	} {
		if got := retryableStart(tt.err); got != tt.want {
			t.Errorf("%s: retryable = %v, want %v", tt.name, got, tt.want)
		}
	}
}
