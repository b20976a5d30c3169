package reliability

import (
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/plain"
)

// Wrong credentials are secrets too: a refused password must not be echoed.
const (
	wrongAPIKey   = "rs_wrong0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0"
	wrongToken    = "nats-wrong-token-8b7a6c5d"
	wrongPassword = "kafka-wrong-password-1a2b3c"
)

// bugNilDaemonClose: cmd/ingest newDaemon's deferred cleanup calls d.close()
// after `return nil, err` has set the named result d to nil, so every start-up
// failure (a refused NATS token or Kafka password, an unreachable broker)
// panics with a stack trace instead of reporting the error.
func init() { allSecrets = append(allSecrets, wrongAPIKey, wrongToken, wrongPassword) }

// startTokenNATS runs a NATS server with JetStream that requires natsToken.
func startTokenNATS(t *testing.T) string {
	t.Helper()
	s, err := natsserver.NewServer(&natsserver.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(),
		Authorization: natsToken, NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		s.Shutdown()
		t.Fatal("NATS server not ready")
	}
	t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	return s.ClientURL()
}

// TestSecrets runs the daemon with every kind of secret (the API key, HMAC
// secrets, a NATS token, a Kafka SASL password), right and wrong, through
// `check`, `run`, its metrics and readiness, and scans every byte: none may
// appear. Every other scenario scans its own output the same way.
func TestSecrets(t *testing.T) {
	begin(t)
	u := newUpstream(t)
	runs := 0

	t.Run("check", func(t *testing.T) {
		runs++
		code, out := checkConfig(t, fmt.Sprintf(`
restless: {api_key: %q}
streams: [{name: a, stream_id: s1, verify: {secrets: [%q, %q]}}]
sink: {type: kafka, kafka: {sasl: {mechanism: plain, username: u, password: %q}}}
`, apiKey, hmacSecretA, hmacSecretB, kafkaPassword), map[string]string{"INGEST_SINK__NATS__TOKEN": natsToken})
		if code != 0 || !strings.Contains(out, "[REDACTED]") {
			t.Errorf("check: exit %d, want 0 with secrets redacted:\n%s", code, out)
		}
		runs++
		// A rejected configuration echoes nothing secret either.
		code, out = checkConfig(t, fmt.Sprintf("restless: {api_key: %q}\nstreams: [{name: a, stream_id: s1, verify: {secrets: [%q], mode: bogus}}]\nsink: {type: bogus}\n",
			apiKey, hmacSecretA), nil)
		if code != 2 {
			t.Errorf("check: exit %d, want 2:\n%s", code, out)
		}
	})

	// daemon runs cfg until its firehose landed, scrapes metrics and
	// readiness, then stops it.
	daemon := func(t *testing.T, sink string, verify func()) {
		runs++
		dir := t.TempDir()
		fh := u.newFirehose(t, fmt.Sprintf("fh_secret_%d", runs), hmacSecretA, 300, 0, 400)
		// A second stream that never ends keeps the daemon up for the scrape.
		ctl := u.newFirehose(t, fmt.Sprintf("fh_secret_ctl_%d", runs), hmacSecretB, 0, 20, 300)
		cfg := daemonCfg{upstream: u.url, checkpoint: filepath.Join(dir, "cp"), http: true, sink: sink, streams: []streamCfg{
			{name: "sec", streamID: fh.id, secret: hmacSecretA}, {name: "ctl", transport: "websocket", streamID: ctl.id, secret: hmacSecretB}}}
		p := runDaemon(t, 2*time.Minute, writeFile(t, dir, "ingest.yaml", cfg.yaml()), true)
		waitFor(t, time.Minute, "the firehose to land", func() bool {
			m, err := p.metrics()
			return err == nil && m.stream("ingest_events_published_total", "sec") >= 300
		})
		if _, _, err := p.get("/readyz"); err != nil {
			t.Error(err)
		}
		p.signal(syscall.SIGTERM)
		if code := p.wait(30 * time.Second); code != 0 {
			t.Errorf("exit code %d after SIGTERM, want 0", code)
		}
		verify()
	}

	t.Run("NATS token", func(t *testing.T) {
		url := startTokenNATS(t)
		daemon(t, fmt.Sprintf("type: nats\n  nats: {url: %q, token: %q, stream: SECRETS}", url, natsToken), func() {
			if n := len(readJetStream(t, url, "SECRETS", nats.Token(natsToken))); n < 300 {
				t.Errorf("%d messages in JetStream, want at least 300", n)
			}
		})
	})

	t.Run("Kafka SASL password", func(t *testing.T) {
		_, broker := startKfake(t, kfake.EnableSASL(), kfake.Superuser("PLAIN", "ingest", kafkaPassword))
		daemon(t, fmt.Sprintf("type: kafka\n  kafka: {brokers: [%q], create_topics: true, sasl: {mechanism: plain, username: ingest, password: %q}}", broker, kafkaPassword), func() {
			recs := readKafka(t, []string{broker}, []string{"restless.sec"}, kgo.SASL(plain.Auth{User: "ingest", Pass: kafkaPassword}.AsMechanism()))
			if len(recs) < 300 {
				t.Errorf("%d records in Kafka, want at least 300", len(recs))
			}
		})
	})

	// Refused credentials: the daemon says why, without the value.
	refused := func(t *testing.T, env map[string]string, sink string, says *regexp.Regexp) {
		runs++
		dir := t.TempDir()
		fh := u.newFirehose(t, fmt.Sprintf("fh_refused_%d", runs), hmacSecretA, 10, 0, 300)
		cfg := daemonCfg{upstream: u.url, checkpoint: filepath.Join(dir, "cp"), sink: sink,
			streams: []streamCfg{{name: "sec", streamID: fh.id, secret: hmacSecretA}}}
		if env == nil {
			env = map[string]string{"RESTLESS_API_KEY": apiKey}
		}
		p := start(t, time.Minute, env, "run", "-c", writeFile(t, dir, "ingest.yaml", cfg.yaml()))
		if code := p.wait(45 * time.Second); code != 1 {
			t.Errorf("exit code %d, want 1", code)
		}
		out := p.stderr.String()
		if strings.Contains(out, "panic") {
			t.Errorf("the daemon panicked instead of reporting the refusal")
		}
		if !says.MatchString(out) {
			t.Errorf("stderr does not say %q:\n%s", says, out)
		}
	}
	t.Run("wrong API key", func(t *testing.T) {
		refused(t, map[string]string{"RESTLESS_API_KEY": wrongAPIKey}, "type: stdout", regexp.MustCompile(`401`))
	})
	t.Run("wrong NATS token", func(t *testing.T) {
		url := startTokenNATS(t)
		refused(t, nil, fmt.Sprintf("type: nats\n  nats: {url: %q, token: %q, stream: SECRETS}", url, wrongToken), regexp.MustCompile(`(?i)authori`))
	})
	t.Run("wrong Kafka password", func(t *testing.T) {
		_, broker := startKfake(t, kfake.EnableSASL(), kfake.Superuser("PLAIN", "ingest", kafkaPassword))
		refused(t, nil, fmt.Sprintf("type: kafka\n  kafka: {brokers: [%q], create_topics: true, sasl: {mechanism: plain, username: ingest, password: %q}}", broker, wrongPassword),
			regexp.MustCompile(`(?i)sasl|authenticat`))
	})

	seenMu.Lock()
	scanned, leaks := seenBytes, len(seenLeaks)
	seenMu.Unlock()
	t.Logf("%d bytes of output scanned in this run, %d leaks", scanned, leaks)
	if leaks != 0 {
		t.Errorf("secrets leaked: %v", seenLeaks)
	}
	record(t, Row{Scenario: "7. Secrets: API key, HMAC secrets, NATS token, Kafka password (right and wrong) in logs, errors, check, metrics", Runs: runs,
		Bound: fmt.Sprintf("no secret in %d bytes of output (every scenario of the run)", scanned)})
}
