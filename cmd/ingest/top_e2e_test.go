package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/restless-stream/ingest/emulator"
	"github.com/restless-stream/ingest/internal/testenv"
)

// startTopDaemon runs the daemon on a firehose of 50 events/s and a quiet
// stream, and returns it and its http.addr.
func startTopDaemon(t *testing.T) (*proc, string) {
	t.Helper()
	em := newTestEmulator(t)
	if _, err := em.CreateFirehose(emulator.FirehoseConfig{ID: "fh_top", EventBytes: 300, Rate: 50, Secret: "fire-secret-1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := em.CreateStream(emulator.StreamSpec{ID: "st_calm", URL: em.URL() + "/_emulator/demo/orders", Inactive: true, Secret: "calm-secret-2"}); err != nil {
		t.Fatal(err)
	}
	return startStatusDaemon(t, em, `
  - {name: fire, stream_id: fh_top, verify: {secrets: [fire-secret-1]}}
  - {name: calm, stream_id: st_calm, verify: {secrets: [calm-secret-2]}}`, []string{"fire-secret-1", "calm-secret-2"})
}

// fireRow matches top's row of the firehose once it has a rate above 0.
var fireRow = regexp.MustCompile(`(?m)^fire\s+connected\s+([1-9][0-9]*\.[0-9])\s+[0-9]+\.[0-9]{3}s\s+-\s*$`)

// calmRow matches top's row of the quiet stream.
var calmRow = regexp.MustCompile(`(?m)^calm\s+connected\s+0\.0\s+0\.000s\s+-\s*$`)

// TestTopInTmux runs `ingest top` on a terminal: tmux, detached, 120×30.
// It checks the rows, that q leaves with exit 0, and in a second run that
// a daemon that goes away is shown and that Ctrl-C leaves with exit 0.
func TestTopInTmux(t *testing.T) {
	tmux := testenv.Tool(t, "tmux")
	bin := ingestBinary(t)
	daemon, addr := startTopDaemon(t)

	dir := t.TempDir()
	sock := filepath.Join(dir, "tmux.sock")
	run := func(args ...string) string {
		t.Helper()
		out, err := exec.Command(tmux, append([]string{"-S", sock}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("tmux %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	exit1, exit2 := filepath.Join(dir, "exit1"), filepath.Join(dir, "exit2")
	top := bin + " top --addr " + addr
	script := top + "; echo $? > " + exit1 + "; " + top + "; echo $? > " + exit2
	run("-f", "/dev/null", "new-session", "-d", "-s", "top", "-x", "120", "-y", "30", "sh -c '"+script+"'")
	t.Cleanup(func() { _ = exec.Command(tmux, "-S", sock, "kill-server").Run() })

	pane := func() string { return run("capture-pane", "-p", "-t", "top") }
	waitPane := func(what string, ok func(string) bool) string {
		t.Helper()
		var last string
		deadline := time.Now().Add(30 * time.Second)
		for !ok(last) {
			if time.Now().After(deadline) {
				t.Fatalf("the pane never showed %s; it shows:\n%s", what, last)
			}
			time.Sleep(100 * time.Millisecond)
			last = pane()
		}
		return last
	}
	exitCode := func(file string) int {
		t.Helper()
		var b []byte
		waitUntil(t, 20*time.Second, "top to exit", func() bool {
			var err error
			b, err = os.ReadFile(file)
			return err == nil && strings.HasSuffix(string(b), "\n")
		})
		code, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil {
			t.Fatalf("exit file %q", b)
		}
		return code
	}

	screen := waitPane("both rows, the firehose with a rate", func(s string) bool {
		return fireRow.MatchString(s) && calmRow.MatchString(s)
	})
	lines := strings.Split(screen, "\n")
	if !strings.HasPrefix(lines[0], "ingest top  http://"+addr+"  ") || !strings.Contains(lines[0], "2 streams") {
		t.Errorf("headline %q", lines[0])
	}
	if !slicesContainsFields(lines, "NAME STATE EV/S LAG LAST ERROR") {
		t.Errorf("no header row:\n%s", screen)
	}
	if r, _ := strconv.ParseFloat(fireRow.FindStringSubmatch(screen)[1], 64); r < 10 || r > 200 {
		t.Errorf("firehose at 50 events/s shown at %v events/s", r)
	}
	run("send-keys", "-t", "top", "q")
	if code := exitCode(exit1); code != 0 {
		t.Fatalf("q: exit %d, want 0", code)
	}

	// The second run: the daemon goes away, top says so and keeps trying.
	waitPane("the rows again", func(s string) bool { return fireRow.MatchString(s) })
	daemon.signal(syscall.SIGTERM)
	if code := daemon.wait(30 * time.Second); code != 0 {
		t.Fatalf("daemon exit %d", code)
	}
	waitPane("that the daemon is unreachable", func(s string) bool {
		return strings.Contains(s, "daemon unreachable since") && strings.Contains(s, "retrying every second")
	})
	run("send-keys", "-t", "top", "C-c")
	if code := exitCode(exit2); code != 0 {
		t.Fatalf("Ctrl-C: exit %d, want 0", code)
	}
}

// slicesContainsFields reports whether a line of lines has the words of want.
func slicesContainsFields(lines []string, want string) bool {
	for _, l := range lines {
		if strings.Join(strings.Fields(l), " ") == want {
			return true
		}
	}
	return false
}

// TestTopPlainOnAPipe: with stdout a pipe, top prints one plain block per
// second, says when the daemon goes away, keeps going, and leaves on SIGINT
// with exit 0.
func TestTopPlainOnAPipe(t *testing.T) {
	daemon, addr := startTopDaemon(t)
	top := startIngest(t, nil, nil, "top", "--addr", addr)
	top.waitOutput(fireRow, 30*time.Second)
	top.waitOutput(calmRow, 5*time.Second)
	out := top.stdout.String()
	if strings.Contains(out, "\x1b") {
		t.Errorf("escape sequences on a pipe: %q", out)
	}
	blocks := strings.Split(strings.TrimSpace(out), "\n\n")
	head := regexp.MustCompile(`^ingest top  http://` + regexp.QuoteMeta(addr) + `  \d\d:\d\d:\d\d  2 streams\nNAME +STATE +EV/S +LAG +LAST ERROR\n`)
	for i, b := range blocks {
		if !head.MatchString(b) || strings.Count(b, "\n") != 3 {
			t.Errorf("block %d:\n%s", i, b)
		}
	}
	daemon.signal(syscall.SIGTERM)
	if code := daemon.wait(30 * time.Second); code != 0 {
		t.Fatalf("daemon exit %d", code)
	}
	top.waitOutput(regexp.MustCompile(`daemon unreachable since \d\d:\d\d:\d\d: .*; retrying every second \(rows as of`), 10*time.Second)
	n := strings.Count(top.stdout.String(), "daemon unreachable")
	waitUntil(t, 10*time.Second, "top to keep trying", func() bool {
		return strings.Count(top.stdout.String(), "daemon unreachable") > n
	})
	top.signal(syscall.SIGINT)
	if code := top.wait(10 * time.Second); code != 0 {
		t.Fatalf("top: exit %d after SIGINT, want 0", code)
	}
}
