package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/restless-stream/ingest/emulator"
	"github.com/restless-stream/ingest/pipeline"
	filesink "github.com/restless-stream/ingest/sink/file"
)

// reloadRig is a daemon reading rate-limited firehoses into a file, with a
// configuration file the test rewrites.
type reloadRig struct {
	t      *testing.T
	em     *emulator.Emulator
	dir    string
	cfg    string
	events string
	p      *proc
	http   string
}

func newReloadRig(t *testing.T, ids ...string) *reloadRig {
	t.Helper()
	r := &reloadRig{t: t, em: newTestEmulator(t), dir: t.TempDir()}
	for i, id := range ids {
		if _, err := r.em.CreateFirehose(emulator.FirehoseConfig{ID: id, EventBytes: 400, Rate: 300, Secret: "s-" + id, StartID: int64(i+1) * 1_000_000}); err != nil {
			t.Fatal(err)
		}
	}
	r.events = filepath.Join(r.dir, "events.jsonl")
	r.cfg = filepath.Join(r.dir, "ingest.yaml")
	return r
}

// config is a full configuration with the given streams section and log level.
func (r *reloadRig) config(streams, level string) string {
	return fmt.Sprintf(`
restless: {base_url: %[1]s, stream_base_url: %[1]s}
streams:
%[2]s
sink: {type: file, file: {path: %[3]s}}
checkpoint: {type: file, dir: %[4]s}
http: {addr: "127.0.0.1:0"}
log: {level: %[5]s}
`, r.em.URL(), streams, r.events, filepath.Join(r.dir, "cp"), level)
}

// write replaces the configuration file by a rename, as editors do.
func (r *reloadRig) write(content string) {
	r.t.Helper()
	tmp := filepath.Join(r.dir, ".ingest.yaml.tmp")
	if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
		r.t.Fatal(err)
	}
	if err := os.Rename(tmp, r.cfg); err != nil {
		r.t.Fatal(err)
	}
}

func (r *reloadRig) start(args ...string) {
	r.t.Helper()
	r.p = startIngest(r.t, map[string]string{"RESTLESS_API_KEY": testAPIKey}, []string{testAPIKey}, append([]string{"run", "-c", r.cfg}, args...)...)
	r.http = r.p.waitOutput(regexp.MustCompile(`http=http://(127\.0\.0\.1:\d+)`), 20*time.Second)[1]
}

// byDest reads the file sink: the event ids per destination.
func (r *reloadRig) byDest() map[string][]string {
	lines, _, err := filesink.ReadFile(r.events)
	if err != nil {
		return nil
	}
	out := map[string][]string{}
	for _, l := range lines {
		out[l.Destination] = append(out[l.Destination], l.Headers[pipeline.HeaderEventID])
	}
	return out
}

// waitEvents waits until dest holds at least n records.
func (r *reloadRig) waitEvents(dest string, n int) {
	r.t.Helper()
	waitUntil(r.t, 30*time.Second, fmt.Sprintf("%d records at %s", n, dest), func() bool { return len(r.byDest()[dest]) >= n })
}

// metric returns the value of one series of /metrics ("" when absent).
func (r *reloadRig) metric(series string) string {
	r.t.Helper()
	resp, err := http.Get("http://" + r.http + "/metrics")
	if err != nil {
		r.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			return v
		}
	}
	return ""
}

// reloadAndWait sends SIGHUP and waits for the n-th "reload:" outcome line.
func (r *reloadRig) reloadAndWait(n int, outcome string) {
	r.t.Helper()
	r.p.signal(syscall.SIGHUP)
	r.waitCount(outcome, n)
}

func (r *reloadRig) waitCount(s string, n int) {
	r.t.Helper()
	waitUntil(r.t, 30*time.Second, fmt.Sprintf("%d× %q in the log", n, s), func() bool { return strings.Count(r.p.stderr.String(), s) >= n })
}

// contiguous checks that ids are consecutive numbers: no gap, no repeat.
func contiguous(t *testing.T, what string, ids []string) {
	t.Helper()
	for i := 1; i < len(ids); i++ {
		a, _ := strconv.ParseInt(ids[i-1], 10, 64)
		b, _ := strconv.ParseInt(ids[i], 10, 64)
		if b != a+1 {
			t.Fatalf("%s: event %s follows %s (record %d): a gap or a repeat", what, ids[i], ids[i-1], i)
		}
	}
}

const stream = "  - {name: %s, stream_id: %s}\n"

func TestReloadAppliesOnlyWhatChanged(t *testing.T) {
	r := newReloadRig(t, "fh_keep", "fh_gone", "fh_moved", "fh_fresh")
	v1 := fmt.Sprintf(stream, "keep", "fh_keep") + fmt.Sprintf(stream, "gone", "fh_gone") + fmt.Sprintf(stream, "moved", "fh_moved")
	r.write(r.config(v1, "info"))
	r.start()
	r.waitEvents("restless.keep", 50)
	r.waitEvents("restless.gone", 50)
	r.waitEvents("restless.moved", 50)
	reconnects := r.metric(`ingest_source_reconnects_total{stream="keep"}`)

	// Add fresh, remove gone, move moved to another destination.
	v2 := fmt.Sprintf(stream, "keep", "fh_keep") + "  - {name: moved, stream_id: fh_moved, destination: moved.v2}\n" + fmt.Sprintf(stream, "fresh", "fh_fresh")
	r.write(r.config(v2, "info"))
	r.reloadAndWait(1, "reload: configuration applied")
	r.waitEvents("restless.fresh", 50)
	r.waitEvents("moved.v2", 50)
	goneAt := len(r.byDest()["restless.gone"])

	// Only log.level: debug lines appear, no stream is touched.
	r.write(r.config(v2, "debug"))
	r.reloadAndWait(2, "reload: configuration applied")
	r.waitCount("log level changed", 1)

	// Broken files change nothing, each problem is logged; a fixed file applies.
	for i, bad := range []string{
		"streams: [\n  - {name: keep",
		r.config(v2+"    colour: blue\n", "debug"),
		r.config(v2+"    verify: {secrets: [\"${RELOAD_SECRET_UNSET}\"]}\n", "debug"),
	} {
		r.write(bad)
		r.reloadAndWait(i+1, "reload: the configuration in effect is kept")
	}
	if got := r.metric(`ingest_config_reloads_total{result="invalid"}`); got != "3" {
		t.Errorf("invalid reloads counted %q, want 3", got)
	}
	r.write(r.config(v2+"  - {name: late, stream_id: fh_gone, destination: late}\n", "debug"))
	r.reloadAndWait(3, "reload: configuration applied")
	r.waitEvents("late", 20)
	if got := r.metric(`ingest_config_reloads_total{result="ok"}`); got != "3" {
		t.Errorf("applied reloads counted %q, want 3", got)
	}

	n := len(r.byDest()["restless.keep"])
	r.waitEvents("restless.keep", n+50) // keep still flows
	if got := r.metric(`ingest_source_reconnects_total{stream="keep"}`); got != reconnects {
		t.Errorf("keep reconnected across the reloads: %s, then %s", reconnects, got)
	}
	r.p.signal(syscall.SIGTERM)
	if code := r.p.wait(30 * time.Second); code != 0 {
		t.Fatalf("exit code %d after SIGTERM", code)
	}
	if c := strings.Count(r.p.stderr.String(), `msg="source connected" stream=keep`); c != 1 {
		t.Errorf("keep connected %d times, want once: an unchanged stream keeps its connection", c)
	}
	got := r.byDest()
	contiguous(t, "keep", got["restless.keep"])
	contiguous(t, "fresh", got["restless.fresh"])
	contiguous(t, "gone", got["restless.gone"])
	if len(got["restless.gone"]) != goneAt {
		t.Errorf("gone published after its removal: %d records, then %d", goneAt, len(got["restless.gone"]))
	}
	// The moved stream continues at its new destination where it stopped.
	contiguous(t, "moved", append(append([]string(nil), got["restless.moved"]...), got["moved.v2"]...))
	if got["restless.keep"][0] != "1000001" {
		t.Errorf("keep starts at %s", got["restless.keep"][0])
	}
	// late took over gone's stream id under a new name: its own checkpoint.
	if got["late"][0] != "2000001" {
		t.Errorf("late starts at %s, want the stream's first event", got["late"][0])
	}
}

func TestWatchConfigFollowsARenameReplace(t *testing.T) {
	r := newReloadRig(t, "fh_a", "fh_b")
	r.write(r.config(fmt.Sprintf(stream, "a", "fh_a"), "info"))
	r.start("--watch-config")
	r.waitEvents("restless.a", 20)
	r.write(r.config(fmt.Sprintf(stream, "a", "fh_a")+fmt.Sprintf(stream, "b", "fh_b"), "info"))
	r.waitCount("reload: configuration applied", 1)
	r.waitEvents("restless.b", 20)
	// A second replace: the watch survives the first rename.
	r.write(r.config(fmt.Sprintf(stream, "b", "fh_b"), "info"))
	r.waitCount("reload: configuration applied", 2)
	r.waitCount(`msg="stream drained and stopped" stream=a`, 1)
	r.p.signal(syscall.SIGTERM)
	if code := r.p.wait(30 * time.Second); code != 0 {
		t.Fatalf("exit code %d", code)
	}
	contiguous(t, "a", r.byDest()["restless.a"])
	contiguous(t, "b", r.byDest()["restless.b"])
}
