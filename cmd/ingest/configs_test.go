package main

import (
	"path/filepath"
	"testing"
)

// TestExampleConfigsPassCheck loads every file under configs/ as `ingest check`
// does, with the variables they reference set.
func TestExampleConfigsPassCheck(t *testing.T) {
	for k, v := range map[string]string{
		"RESTLESS_API_KEY": "rs_example", "RESTLESS_DEMO_SECRET": "demo-secret",
		"ORDERS_HMAC_SECRET": "orders-secret", "KAFKA_USERNAME": "ingest", "KAFKA_PASSWORD": "kafka-password",
	} {
		t.Setenv(k, v)
	}
	files, err := filepath.Glob(filepath.Join(repoRoot(t), "configs", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	more, _ := filepath.Glob(filepath.Join(repoRoot(t), "configs", "compose", "*.yaml"))
	files = append(files, more...)
	if len(files) < 6 {
		t.Fatalf("found only %d configuration files: %v", len(files), files)
	}
	for _, f := range files {
		t.Run(filepath.Base(filepath.Dir(f))+"/"+filepath.Base(f), func(t *testing.T) {
			cfg, err := LoadConfig(LoadOptions{File: f})
			if err != nil {
				t.Fatalf("check fails:\n%v", err)
			}
			if _, err := cfg.effectiveYAML(); err != nil {
				t.Fatal(err)
			}
		})
	}
}
