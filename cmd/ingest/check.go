package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"

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

// effectiveYAML renders the configuration; secrets print as [REDACTED]:
// the secret fields, the values of direct.headers (but for plain ones such
// as Content-Type), and, through redactText, URL userinfo and
// credential-like query parameters.
func (c *Config) effectiveYAML() ([]byte, error) {
	var n yaml.Node
	if err := n.Encode(c); err != nil {
		return nil, fmt.Errorf("render configuration: %w", err)
	}
	redactHeaderNodes(&n)
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(&n); err != nil {
		return nil, fmt.Errorf("render configuration: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// redactHeaderNodes replaces the value of every header under a "headers"
// mapping, but for plainHeaders.
func redactHeaderNodes(n *yaml.Node) {
	if n.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Value == "headers" && v.Kind == yaml.MappingNode {
				for j := 0; j+1 < len(v.Content); j += 2 {
					if !plainHeaders[http.CanonicalHeaderKey(v.Content[j].Value)] {
						v.Content[j+1] = &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: redacted}
					}
				}
			}
		}
	}
	for _, c := range n.Content {
		redactHeaderNodes(c)
	}
}
