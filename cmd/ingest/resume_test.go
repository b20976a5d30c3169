package main

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/restless-stream/ingest/checkpoint"
)

// TestRelativePathsFollowTheConfigFile: a relative checkpoint.dir (and the
// default one) is the same directory whichever directory the daemon starts in.
func TestRelativePathsFollowTheConfigFile(t *testing.T) {
	dir := t.TempDir()
	file := writeConfig(t, dir, minimalYAML+`
checkpoint: {dir: ./cp}
sink: {type: file, file: {path: out/events.jsonl}, nats: {tls: {ca_file: /etc/ca.pem}}}
`)
	t.Chdir(t.TempDir()) // anywhere else
	cfg, err := LoadConfig(LoadOptions{File: file})
	if err != nil {
		t.Fatal(err)
	}
	abs, _ := filepath.Abs(dir)
	if want := filepath.Join(abs, "cp"); cfg.Checkpoint.Dir != want {
		t.Errorf("checkpoint.dir = %q, want %q", cfg.Checkpoint.Dir, want)
	}
	if want := filepath.Join(abs, "out", "events.jsonl"); cfg.Sink.File.Path != want {
		t.Errorf("sink.file.path = %q, want %q", cfg.Sink.File.Path, want)
	}
	if cfg.Sink.NATS.TLS.CAFile != "/etc/ca.pem" {
		t.Errorf("an absolute path changed: %q", cfg.Sink.NATS.TLS.CAFile)
	}
	if want := filepath.Join(abs, "data", "nats"); cfg.Sink.NATS.EmbeddedDir != want {
		t.Errorf("default embedded_dir = %q, want %q", cfg.Sink.NATS.EmbeddedDir, want)
	}

	// A variable's relative path is the working directory's, as a shell user expects.
	t.Setenv("INGEST_CHECKPOINT__DIR", "here")
	cfg, err = LoadConfig(LoadOptions{File: file})
	if err != nil {
		t.Fatal(err)
	}
	wd, _ := os.Getwd()
	if want := filepath.Join(wd, "here"); cfg.Checkpoint.Dir != want {
		t.Errorf("checkpoint.dir from the environment = %q, want %q", cfg.Checkpoint.Dir, want)
	}
}

// TestStartLogsResumeOrFreshStart: at start every stream says whether it resumed
// (cursor and checkpoint file) or starts fresh (live or from since), and
// checkpoint.require_existing refuses a stream without a checkpoint, by name.
func TestStartLogsResumeOrFreshStart(t *testing.T) {
	dir := t.TempDir()
	yaml := `
streams:
  - {name: orders, url: "http://127.0.0.1:1/s"}
  - {name: users, url: "http://127.0.0.1:1/u", since: "2026-01-01T00:00:00Z"}
  - {name: live, url: "http://127.0.0.1:1/l"}
sink: {type: file, file: {path: events.jsonl}}
checkpoint: {dir: cp}
http: {addr: ""}
`
	file := writeConfig(t, dir, yaml)
	st, err := checkpoint.NewFile(filepath.Join(dir, "cp"))
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Save(context.Background(), "orders", "evt_41"); err != nil {
		t.Fatal(err)
	}
	st.Close()
	t.Chdir(t.TempDir())

	cfg, err := LoadConfig(LoadOptions{File: file})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	d, err := newDaemon(context.Background(), cfg, slog.New(slog.NewTextHandler(&buf, nil)))
	if err != nil {
		t.Fatalf("newDaemon: %v", err)
	}
	d.close()
	logs := buf.String()
	abs, _ := filepath.Abs(dir)
	for _, want := range []string{
		`msg="stream resumes from its checkpoint" stream=orders cursor=evt_41 checkpoint="file ` + filepath.Join(abs, "cp", "orders.checkpoint") + `"`,
		`stream starts fresh: no checkpoint, reading from since" stream=users since=2026-01-01T00:00:00Z`,
		`stream starts fresh: no checkpoint, reading live (earlier events are not read)" stream=live`,
		`resolved against its directory" dir=` + abs,
	} {
		if !strings.Contains(logs, want) {
			t.Errorf("log lacks %s:\n%s", want, logs)
		}
	}

	cfg, err = LoadConfig(LoadOptions{File: file, Overrides: []Override{{Key: "checkpoint.require_existing", Value: "true", Origin: "test"}}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = newDaemon(context.Background(), cfg, slog.New(slog.NewTextHandler(&buf, nil)))
	var ce *ConfigError
	if !errors.As(err, &ce) || exitCode(err) != exitUsage {
		t.Fatalf("require_existing: err = %v, want a configuration error (exit 2)", err)
	}
	msg := ce.Error()
	if !strings.Contains(msg, "streams[1]: stream users has no checkpoint") || !strings.Contains(msg, "streams[2]: stream live") || strings.Contains(msg, "orders") {
		t.Errorf("require_existing error = %q, want users and live named, not orders", msg)
	}
}
