package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/restless-stream/ingest/internal/testenv"
)

// TestCheckpointStoreFailingIsVisibleAndStopIsBounded runs the binary with
// a checkpoint directory no process may create a file in, whatever its user
// (an immutable directory: root too is refused there). The failing checkpoint turns
// /readyz to 503 and shows in ingest_checkpoint_failing and
// ingest_checkpoint_failures_total and in the log; SIGTERM then ends the
// daemon within the bound of the last save, with exit status 1 and a line
// saying the stream will be read again from the older checkpoint.
func TestCheckpointStoreFailingIsVisibleAndStopIsBounded(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("needs chattr +i, a directory nobody may create a file in")
	}
	dir := t.TempDir()
	cp := immutableDir(t, filepath.Join(dir, "cp"))
	em := newTestEmulator(t)
	fh := newFirehose(t, em, "ro", 50)
	cfg := writeConfig(t, dir, fmt.Sprintf(`
restless: {base_url: %[1]s, stream_base_url: %[1]s}
streams:
  - name: ro
    stream_id: %[2]s
    verify: {secrets: [%[3]s]}
sink: {type: file, file: {path: %[4]s}}
checkpoint: {type: file, dir: %[5]s}
http: {addr: "127.0.0.1:0"}
log: {level: info}
`, em.URL(), fh.id, fh.secret, filepath.Join(dir, "events.jsonl"), cp))
	p := startIngest(t, map[string]string{"RESTLESS_API_KEY": testAPIKey}, []string{testAPIKey, fh.secret}, "run", "-c", cfg)
	addr := p.waitOutput(regexp.MustCompile(`http=http://(127\.0\.0\.1:\d+)`), 20*time.Second)[1]
	get := func(path string) (int, string) {
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}

	var ready string
	waitUntil(t, 20*time.Second, "/readyz to say 503 for the checkpoint", func() bool {
		code, body := get("/readyz")
		ready = body
		return code == http.StatusServiceUnavailable && strings.Contains(body, "checkpoint_error")
	})
	var rep readyReport
	if err := json.Unmarshal([]byte(ready), &rep); err != nil || rep.Streams["ro"].CheckpointError == "" {
		t.Errorf("/readyz %s: want the stream's checkpoint_error (%v)", ready, err)
	}
	_, metrics := get("/metrics")
	if !strings.Contains(metrics, `ingest_checkpoint_failing{stream="ro"} 1`) {
		t.Errorf("metrics lack ingest_checkpoint_failing{stream=\"ro\"} 1")
	}
	if regexp.MustCompile(`ingest_checkpoint_failures_total\{stream="ro"\} [1-9]`).FindString(metrics) == "" {
		t.Errorf("ingest_checkpoint_failures_total{stream=\"ro\"} did not count")
	}
	p.waitOutput(regexp.MustCompile(`checkpoint save failed`), 5*time.Second)

	p.signal(syscall.SIGTERM)
	// The bound: the drain, one save under way (10 s) and the last save
	// (10 s), with room for a slow machine.
	if code := p.wait(40 * time.Second); code != 1 {
		t.Fatalf("exit code %d after SIGTERM with a failing checkpoint, want 1", code)
	}
	p.waitOutput(regexp.MustCompile(`will be read again from`), time.Second)
}

// TestCredentialsNeverPrinted: the credentials a configuration holds
// outside its secret fields — a password in base_url, a direct stream's
// header values, an access_token in its upstream URL — are printed neither
// by `ingest check` nor in the error log of a stream that cannot connect.
func TestCredentialsNeverPrinted(t *testing.T) {
	const (
		password = "pw-Zq8Xr2Lm4Nc7"
		header   = "Bearer hdr-Tq5Wy9Kd3Vb1"
		hdrToken = "hdr-Tq5Wy9Kd3Vb1"
		apiKey   = "xk-Hj6Fs2Pa8Ue4"
		token    = "at-Mv3Cz7Rn1Ge5"
	)
	// A port nothing listens on: every connection is refused, and logged.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close()
	dir := t.TempDir()
	cfg := writeConfig(t, dir, fmt.Sprintf(`
restless: {base_url: "http://user:%[2]s@%[1]s", stream_base_url: "http://user:%[2]s@%[1]s"}
streams:
  - name: direct
    direct:
      url: "https://api.example.com/v1/orders?limit=5&access_token=%[5]s"
      headers: {Authorization: "%[3]s", X-Api-Key: "%[4]s", Accept: application/json}
    verify: {mode: "off"}
    reconnect: {initial: 50ms, max: 100ms}
sink: {type: stdout}
checkpoint: {type: memory}
http: {addr: ""}
`, dead, password, header, apiKey, token))
	secrets := []string{password, hdrToken, apiKey, token}
	code, out, errOut := runIngest(t, map[string]string{"RESTLESS_API_KEY": testAPIKey}, append(secrets, testAPIKey), "check", "-c", cfg)
	if code != 0 {
		t.Fatalf("check: exit %d\n%s", code, errOut)
	}
	for _, want := range []string{"application/json", "limit=5", "[REDACTED]@" + dead} {
		if !strings.Contains(out, want) {
			t.Errorf("check output lacks %q:\n%s", want, out)
		}
	}

	p := startIngest(t, map[string]string{"RESTLESS_API_KEY": testAPIKey}, append(secrets, testAPIKey), "run", "-c", cfg)
	p.waitOutput(regexp.MustCompile(`(?s)reconnecting.*reconnecting`), 20*time.Second)
	p.signal(syscall.SIGTERM)
	p.wait(20 * time.Second)
	// startIngest's cleanup fails the test when a secret was printed.
}

// immutableDir makes dir with an empty lock file in it (the daemon's
// checkpoint lock), then marks dir immutable: no process, root included,
// may create a file in it, so every checkpoint save fails.
func immutableDir(t *testing.T, dir string) string {
	t.Helper()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, ".lock"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("chattr", "+i", dir).CombinedOutput()
	if err != nil {
		testenv.Require(t, "chattr +i (root, on ext4 or tmpfs)", fmt.Errorf("%v: %s", err, out))
	}
	t.Cleanup(func() { _ = exec.Command("chattr", "-i", dir).Run() })
	if f, err := os.Create(filepath.Join(dir, "probe")); err == nil {
		f.Close()
		t.Fatalf("%s is immutable, yet a file could be created in it", dir)
	}
	return dir
}
