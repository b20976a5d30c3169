package main

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/restless-stream/ingest/checkpoint"
	"github.com/restless-stream/ingest/internal/testenv"
)

var runningRE = regexp.MustCompile(`ingest running`)

// secondDaemon starts two daemons on one configuration: the second must exit 1
// naming the first's pid and host, the first keeps running and stops cleanly,
// and then a new one starts.
func secondDaemon(t *testing.T, cfg string, env map[string]string, secrets []string) {
	t.Helper()
	a := startIngest(t, env, secrets, "run", "-c", cfg)
	a.waitOutput(runningRE, 30*time.Second)

	b := startIngest(t, env, secrets, "run", "-c", cfg)
	if code := b.wait(30 * time.Second); code != exitFailure {
		t.Fatalf("second daemon: exit %d, want 1\n%s", code, b.stderr)
	}
	host, _ := os.Hostname()
	want := fmt.Sprintf("held by another process (pid %d on host %s", a.cmd.Process.Pid, host)
	if !strings.Contains(b.stderr.String(), want) {
		t.Errorf("second daemon's error does not name the holder (%q):\n%s", want, b.stderr)
	}
	if strings.Contains(b.stderr.String(), "ingest running") {
		t.Errorf("second daemon ran:\n%s", b.stderr)
	}

	a.signal(syscall.SIGTERM)
	if code := a.wait(30 * time.Second); code != 0 {
		t.Fatalf("first daemon: exit %d after SIGTERM, want 0", code)
	}
	c := startIngest(t, env, secrets, "run", "-c", cfg)
	c.waitOutput(runningRE, 30*time.Second)
	c.signal(syscall.SIGTERM)
	if code := c.wait(30 * time.Second); code != 0 {
		t.Fatalf("daemon after the first stopped: exit %d, want 0", code)
	}
}

// TestSecondDaemonOnFileCheckpointsRefused: two processes on one checkpoint.dir.
func TestSecondDaemonOnFileCheckpointsRefused(t *testing.T) {
	em := newTestEmulator(t)
	dir := t.TempDir()
	cfg := writeConfig(t, dir, fmt.Sprintf(`
restless: {base_url: %[1]s, stream_base_url: %[1]s}
streams:
  - name: orders
    direct: {url: "%[1]s/_emulator/demo/orders", polling_interval: 0.2}
sink: {type: file, file: {path: events.jsonl}}
checkpoint: {dir: cp}
http: {addr: ""}
`, em.URL()))
	secondDaemon(t, cfg, map[string]string{"RESTLESS_API_KEY": testAPIKey}, []string{testAPIKey})
}

// TestSecondDaemonOnNATSKVRefused: two processes on one nats_kv bucket (on two
// hosts they would share nothing else).
func TestSecondDaemonOnNATSKVRefused(t *testing.T) {
	url := testenv.NATS(t)
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	stream, bucket := uniqueName("OWN"), uniqueName("own_ckpt_")
	subject := strings.ToLower(stream)
	t.Cleanup(func() { // registered first: runs last, after the deletions
		nc.Close()
	})
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = js.DeleteStream(ctx, stream)
		_ = js.DeleteKeyValue(ctx, bucket)
		_ = js.DeleteKeyValue(ctx, checkpoint.LeaseBucket(bucket))
	})
	em := newTestEmulator(t)
	cfg := writeConfig(t, t.TempDir(), fmt.Sprintf(`
restless: {base_url: %[1]s, stream_base_url: %[1]s}
streams:
  - name: orders
    direct: {url: "%[1]s/_emulator/demo/orders", polling_interval: 0.2}
    destination: %[4]s.orders
sink: {type: nats, nats: {url: %[2]s, stream: %[3]s, base_subject: "%[4]s.>"}}
checkpoint: {type: nats_kv, nats_kv_bucket: %[5]s}
http: {addr: ""}
`, em.URL(), url, stream, subject, bucket))
	secondDaemon(t, cfg, map[string]string{"RESTLESS_API_KEY": testAPIKey}, []string{testAPIKey})
}
