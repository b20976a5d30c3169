package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/restless-stream/ingest/pipeline"
	filesink "github.com/restless-stream/ingest/sink/file"
)

func TestStreamsCommands(t *testing.T) {
	em := newTestEmulator(t)
	env := map[string]string{"RESTLESS_API_KEY": testAPIKey, "INGEST_RESTLESS__BASE_URL": em.URL()}
	secrets := []string{testAPIKey}

	code, out, _ := runIngest(t, env, secrets, "streams", "create", "--name", "Orders", "--url", em.URL()+"/_emulator/demo/orders",
		"--polling-interval", "1", "--header", "Accept=application/json")
	if code != 0 {
		t.Fatalf("create: exit %d", code)
	}
	var created struct{ ID, Name, HMACSecret string }
	if err := json.Unmarshal([]byte(out), &created); err != nil || created.ID == "" || created.Name != "Orders" {
		t.Fatalf("create output %q: %v", out, err)
	}
	code, out, _ = runIngest(t, env, secrets, "streams", "get", created.ID)
	if code != 0 || !strings.Contains(out, `"id": "`+created.ID+`"`) {
		t.Fatalf("get: exit %d, %s", code, out)
	}
	code, out, _ = runIngest(t, env, secrets, "streams", "update", created.ID, "--name", "Orders v2")
	if code != 0 || !strings.Contains(out, `"Orders v2"`) {
		t.Fatalf("update: exit %d, %s", code, out)
	}
	code, out, _ = runIngest(t, env, secrets, "streams", "list", "--all")
	if code != 0 || !strings.Contains(out, created.ID) {
		t.Fatalf("list: exit %d, %s", code, out)
	}
	for _, op := range []string{"stop", "start", "usage", "snippets"} {
		if code, out, _ = runIngest(t, env, secrets, "streams", op, created.ID); code != 0 {
			t.Errorf("%s: exit %d, %s", op, code, out)
		}
	}
	code, out, _ = runIngest(t, env, secrets, "streams", "direct-session", "--url", em.URL()+"/_emulator/demo/orders", "--dedupe-key", "k1")
	if code != 0 || !strings.Contains(out, "sessionId") {
		t.Errorf("direct-session: exit %d, %s", code, out)
	}
	if code, out, _ = runIngest(t, env, secrets, "streams", "validate-key"); code != 0 || !strings.Contains(out, "affected") {
		t.Errorf("validate-key: exit %d, %s", code, out)
	}
	if code, _, _ = runIngest(t, env, secrets, "streams", "delete", created.ID); code != 0 {
		t.Errorf("delete: exit %d", code)
	}

	// Failures: an API error is a runtime failure (1); a usage mistake is 2.
	code, _, errOut := runIngest(t, env, secrets, "streams", "get", created.ID)
	if code != 1 || !strings.Contains(errOut, "404") {
		t.Errorf("get deleted: exit %d, %s", code, errOut)
	}
	code, _, errOut = runIngest(t, map[string]string{"INGEST_RESTLESS__BASE_URL": em.URL()}, nil, "streams", "list")
	if code != 2 || !strings.Contains(errOut, "RESTLESS_API_KEY") {
		t.Errorf("no key: exit %d, %s", code, errOut)
	}
	if code, _, _ = runIngest(t, env, secrets, "streams", "get"); code != 2 {
		t.Errorf("get without ID: exit %d, want 2", code)
	}
	const bad = "rs_bad_key_0000111122223333"
	code, _, errOut = runIngest(t, map[string]string{"INGEST_RESTLESS__BASE_URL": em.URL()}, []string{bad}, "streams", "list", "--api-key", bad)
	if code != 1 || !strings.Contains(errOut, "401") {
		t.Errorf("bad key: exit %d, %s", code, errOut)
	}
}

func TestEmulateCommand(t *testing.T) {
	p := startIngest(t, nil, nil, "emulate", "--addr", "127.0.0.1:0", "--demo-secret", "chosen-secret")
	m := p.waitOutput(regexp.MustCompile(`listening on (http://127\.0\.0\.1:\d+)`), 20*time.Second)
	key := p.waitOutput(regexp.MustCompile(`API key:\s+(rs_[0-9a-f]+)`), 5*time.Second)[1]
	req, _ := http.NewRequest(http.MethodGet, m[1]+"/streams/demo", nil)
	req.Header.Set("x-api-key", key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /streams/demo with the printed key: %v %v", resp, err)
	}
	resp.Body.Close()
	if strings.Contains(p.stdout.String(), "chosen-secret") {
		t.Error("emulate printed the demo secret it was given")
	}
	p.signal(syscall.SIGINT)
	if code := p.wait(20 * time.Second); code != 0 {
		t.Fatalf("emulate exit code %d after SIGINT, want 0", code)
	}
}

// TestRunDirectStream reads a direct stream (the emulator polling its demo API)
// into the file sink, verified with the emulator's direct secret.
func TestRunDirectStream(t *testing.T) {
	em := newTestEmulator(t)
	dir := t.TempDir()
	events := filepath.Join(dir, "events.jsonl")
	cfg := writeConfig(t, dir, fmt.Sprintf(`
restless: {base_url: %[1]s, stream_base_url: %[1]s}
streams:
  - name: direct_sse
    direct: {url: "%[1]s/_emulator/demo/orders", polling_interval: 0.2}
    verify: {secrets: ["${DIRECT_SECRET}"]}
  - name: direct_ws
    transport: websocket
    direct: {url: "%[1]s/_emulator/demo/orders", polling_interval: 0.2, dedupe_key: ws-session}
    verify: {secrets: ["${DIRECT_SECRET}"]}
sink: {type: file, file: {path: %[2]s}}
checkpoint: {type: memory}
http: {addr: ""}
`, em.URL(), events))
	env := map[string]string{"RESTLESS_API_KEY": testAPIKey, "DIRECT_SECRET": em.DirectSecret()}
	p := startIngest(t, env, []string{testAPIKey, em.DirectSecret()}, "run", "-c", cfg)
	seen := map[string]int{}
	waitUntil(t, 30*time.Second, "events of both direct streams", func() bool {
		lines, _, _ := filesink.ReadFile(events)
		clear(seen)
		for _, l := range lines {
			if l.Headers[pipeline.HeaderVerified] == "true" {
				seen[l.Headers[pipeline.HeaderStream]]++
			}
		}
		return seen["direct_sse"] >= 2 && seen["direct_ws"] >= 2
	})
	p.signal(syscall.SIGTERM)
	if code := p.wait(20 * time.Second); code != 0 {
		t.Fatalf("exit code %d, want 0", code)
	}
}

// TestRunCPUProfileFlag: --cpuprofile to a file that cannot be created is a
// usage error naming the flag, before anything starts.
func TestRunCPUProfileFlag(t *testing.T) {
	dir := t.TempDir()
	cfg := writeConfig(t, dir, `
restless: {api_key: rs_profile_0123456789}
streams:
  - name: orders
    stream_id: stream_123
sink: {type: stdout}
`)
	code, _, stderr := runIngest(t, nil, nil, "run", "-c", cfg, "--cpuprofile", filepath.Join(dir, "no", "such", "dir", "cpu.prof"))
	if code != 2 || !strings.Contains(stderr, "--cpuprofile") {
		t.Fatalf("exit %d, stderr %q: want 2 and a message naming --cpuprofile", code, stderr)
	}
}
