package main

import (
	"context"
	"encoding/json"
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

func checkpointsCycle(t *testing.T, cfg string) {
	t.Helper()
	show := func() checkpointEntry {
		t.Helper()
		code, out, errOut := runIngest(t, nil, nil, "checkpoints", "show", "orders", "-c", cfg)
		var en checkpointEntry
		if code != 0 || json.Unmarshal([]byte(out), &en) != nil {
			t.Fatalf("show: exit %d, %s %s", code, out, errOut)
		}
		return en
	}
	if en := show(); en.Exists || !en.Configured {
		t.Fatalf("before set: %+v", en)
	}
	if code, _, errOut := runIngest(t, nil, nil, "checkpoints", "set", "orders", "1780793376562", "-c", cfg); code != 0 {
		t.Fatalf("set: exit %d, %s", code, errOut)
	}
	if en := show(); !en.Exists || en.Cursor != "1780793376562" {
		t.Fatalf("after set: %+v", en)
	}
	code, out, _ := runIngest(t, nil, nil, "checkpoints", "list", "-c", cfg)
	var list []checkpointEntry
	if code != 0 || json.Unmarshal([]byte(out), &list) != nil || len(list) != 1 || list[0].Cursor != "1780793376562" {
		t.Fatalf("list: exit %d, %s", code, out)
	}

	// A running daemon resumes from it and holds it: set and reset refuse,
	// show still reads.
	p := startIngest(t, nil, nil, "run", "-c", cfg)
	p.waitOutput(regexp.MustCompile(`stream resumes from its checkpoint" stream=orders cursor=1780793376562`), 30*time.Second)
	p.waitOutput(runningRE, 30*time.Second)
	host, _ := os.Hostname()
	holder := fmt.Sprintf("pid %d on host %s", p.cmd.Process.Pid, host)
	for _, args := range [][]string{{"set", "orders", "42"}, {"reset", "orders"}} {
		code, _, errOut := runIngest(t, nil, nil, append(append([]string{"checkpoints"}, args...), "-c", cfg)...)
		if code != 1 || !strings.Contains(errOut, holder) {
			t.Errorf("%v while a daemon runs: exit %d, %s; want 1 naming %s", args, code, errOut, holder)
		}
	}
	if en := show(); en.Cursor != "1780793376562" {
		t.Errorf("while running: %+v", en)
	}
	p.signal(syscall.SIGTERM)
	if code := p.wait(30 * time.Second); code != 0 {
		t.Fatalf("daemon: exit %d", code)
	}

	if code, _, errOut := runIngest(t, nil, nil, "checkpoints", "reset", "orders", "-c", cfg); code != 0 {
		t.Fatalf("reset: exit %d, %s", code, errOut)
	}
	if en := show(); en.Exists {
		t.Fatalf("after reset: %+v", en)
	}
	for _, args := range [][]string{{"set", "orders"}, {"set", "orders", "yesterday"}, {"show", "Bad Name"}, {"frob"}} {
		if code, _, _ := runIngest(t, nil, nil, append(append([]string{"checkpoints"}, args...), "-c", cfg)...); code != 2 {
			t.Errorf("%v: exit %d, want 2", args, code)
		}
	}
}

// TestCheckpointsCommandFile: list, show, set and reset on the file store, and
// their refusal while a daemon holds the directory.
func TestCheckpointsCommandFile(t *testing.T) {
	cfg := writeConfig(t, t.TempDir(), `
streams: [{name: orders, url: "http://127.0.0.1:1/s"}]
sink: {type: file, file: {path: events.jsonl}}
checkpoint: {dir: cp}
http: {addr: ""}
`)
	checkpointsCycle(t, cfg)
}

// TestCheckpointsCommandNATSKV: the same on a nats_kv store.
func TestCheckpointsCommandNATSKV(t *testing.T) {
	url := testenv.NATS(t)
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	stream, bucket := uniqueName("CKC"), uniqueName("ckc_")
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = js.DeleteStream(ctx, stream)
		_ = js.DeleteKeyValue(ctx, bucket)
		_ = js.DeleteKeyValue(ctx, checkpoint.LeaseBucket(bucket))
	})
	cfg := writeConfig(t, t.TempDir(), fmt.Sprintf(`
streams: [{name: orders, url: "http://127.0.0.1:1/s", destination: %[3]s.orders}]
sink: {type: nats, nats: {url: %[1]s, stream: %[2]s, base_subject: "%[3]s.>"}}
checkpoint: {type: nats_kv, nats_kv_bucket: %[4]s}
http: {addr: ""}
`, url, stream, strings.ToLower(stream), bucket))
	checkpointsCycle(t, cfg)
}
