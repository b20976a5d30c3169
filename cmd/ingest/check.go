package main

import (
	"bytes"
	"context"
	"fmt"

	"go.yaml.in/yaml/v3"
)

// cmdCheck validates the configuration and prints it, secrets redacted.
func cmdCheck(e *env, args []string) error {
	fs := newFlagSet("check", e.stderr)
	var cf configFlags
	cf.register(fs)
	connect := fs.Bool("connect", false, "also try the REST API with the key, each stream (one handshake) and the broker, and report each")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg, err := cf.load()
	if err != nil {
		return err
	}
	if ign := cfg.IgnoredEnv(); len(ign) > 0 {
		fmt.Fprintf(e.stderr, "ingest: warning: %s\n", ignoredEnvMsg(ign))
	}
	out, err := cfg.effectiveYAML()
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "# effective configuration (secrets redacted)\n%s", redactText(string(out)))
	if *connect {
		fmt.Fprintln(e.stdout, "# connections")
		return checkConnect(context.Background(), e.stdout, cfg)
	}
	return nil
}

// effectiveYAML renders the configuration; secrets print as [REDACTED].
func (c *Config) effectiveYAML() ([]byte, error) {
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(c); err != nil {
		return nil, fmt.Errorf("render configuration: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
