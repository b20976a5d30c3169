package main

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

// TestLoadIgnoresPlatformEnvironment: the variables Kubernetes injects for a
// Service named ingest do not stop the load; they are listed for a warning.
func TestLoadIgnoresPlatformEnvironment(t *testing.T) {
	for k, v := range map[string]string{
		"INGEST_SERVICE_HOST":          "10.0.0.7",
		"INGEST_SERVICE_PORT":          "9464",
		"INGEST_PORT":                  "tcp://10.0.0.7:9464",
		"INGEST_PORT_9464_TCP_ADDR":    "10.0.0.7",
		"INGEST_SINK__NATS__NOT_A_KEY": "x",
		"INGEST_LOG__LEVEL":            "debug",
	} {
		t.Setenv(k, v)
	}
	cfg, err := load(t, minimalYAML)
	if err != nil {
		t.Fatalf("LoadConfig: %v", err)
	}
	want := []string{"INGEST_PORT", "INGEST_PORT_9464_TCP_ADDR", "INGEST_SERVICE_HOST", "INGEST_SERVICE_PORT", "INGEST_SINK__NATS__NOT_A_KEY"}
	if got := cfg.IgnoredEnv(); !slices.Equal(got, want) {
		t.Errorf("IgnoredEnv = %v, want %v", got, want)
	}
	if cfg.Log.Level != "debug" {
		t.Errorf("log.level = %q: a variable that names a key must still apply", cfg.Log.Level)
	}
}

// TestLoadUnknownFileKeyStillFails: the file is not the platform's; a key it has
// that names nothing stays an error, and so does a wrong value from a variable
// that does name a key.
func TestLoadUnknownFileKeyStillFails(t *testing.T) {
	t.Setenv("INGEST_PORT", "tcp://10.0.0.7:9464")
	_, err := load(t, minimalYAML+"port: 80\n")
	var ce *ConfigError
	if !errors.As(err, &ce) || !strings.Contains(ce.Error(), "port: unknown key") {
		t.Fatalf("err = %v, want port: unknown key", err)
	}
	t.Setenv("INGEST_SINK__KAFKA__PARTITIONS", "many")
	_, err = load(t, minimalYAML)
	if !errors.As(err, &ce) || !strings.Contains(ce.Error(), "sink.kafka.partitions") {
		t.Fatalf("err = %v, want sink.kafka.partitions", err)
	}
}

func TestNamesKey(t *testing.T) {
	for key, want := range map[string]bool{
		"sink.nats.url":              true,
		"streams.0.since":            true,
		"streams.x.since":            false,
		"streams.0.direct.headers.a": true,
		"streams.0.direct.body.a.b":  true,
		"log.level.x":                false,
		"port":                       false,
		"service_host":               false,
	} {
		if got := namesKey(typeOfConfig, strings.Split(key, ".")); got != want {
			t.Errorf("namesKey(%s) = %v, want %v", key, got, want)
		}
	}
}

// TestIgnoredEnvSuggestsTheKey: a variable with single underscores where levels
// need two is ignored, with the name it was meant to have.
func TestIgnoredEnvSuggestsTheKey(t *testing.T) {
	t.Setenv("INGEST_SINK_TYPE", "kafka")
	cfg := mustLoad(t, minimalYAML)
	if cfg.Sink.Type != "nats" {
		t.Errorf("sink.type = %q, want the default", cfg.Sink.Type)
	}
	msg := ignoredEnvMsg(cfg.IgnoredEnv())
	if !strings.Contains(msg, "INGEST_SINK_TYPE (did you mean INGEST_SINK__TYPE? use __ between levels)") {
		t.Errorf("warning = %q", msg)
	}
	if s := envSuggestion("INGEST_SERVICE_HOST"); s != "" {
		t.Errorf("suggestion for INGEST_SERVICE_HOST = %q, want none", s)
	}
}

// TestCheckWithKubernetesServiceEnv: `ingest check` in a pod next to a Service
// named ingest passes, and warns once, listing the variables.
func TestCheckWithKubernetesServiceEnv(t *testing.T) {
	file := writeConfig(t, t.TempDir(), minimalYAML)
	env := map[string]string{"INGEST_SERVICE_HOST": "10.0.0.7", "INGEST_PORT": "tcp://10.0.0.7:9464", envAPIKey: "rs_k8s_0123456789"}
	code, _, errOut := runIngest(t, env, nil, "check", "-c", file)
	if code != 0 {
		t.Fatalf("check: exit %d, stderr:\n%s", code, errOut)
	}
	if n := strings.Count(errOut, "INGEST_PORT, INGEST_SERVICE_HOST"); n != 1 {
		t.Errorf("stderr names the ignored variables %d times, want once:\n%s", n, errOut)
	}
}
