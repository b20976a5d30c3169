package main

import (
	"sort"
	"strings"
	"sync"

	"github.com/restless-stream/ingest"
)

// The secrets of the loaded configuration, so that text from anywhere (a library's
// error, a panic) can be scrubbed before it is printed or logged.
var (
	secretsMu sync.RWMutex
	replacer  *strings.Replacer
	secretSet = map[string]bool{}
)

// minSecretLen keeps tiny values from blanking out ordinary text.
const minSecretLen = 4

// registerSecrets remembers secret values for redactText.
func registerSecrets(secrets ...ingest.Secret) {
	secretsMu.Lock()
	defer secretsMu.Unlock()
	for _, s := range secrets {
		if v := s.Reveal(); len(v) >= minSecretLen {
			secretSet[v] = true
		}
	}
	vals := make([]string, 0, len(secretSet))
	for v := range secretSet {
		vals = append(vals, v)
	}
	// Longest first, so a secret that contains another is replaced whole.
	sort.Slice(vals, func(i, j int) bool { return len(vals[i]) > len(vals[j]) })
	var pairs []string
	for _, v := range vals {
		pairs = append(pairs, v, "[REDACTED]")
	}
	replacer = strings.NewReplacer(pairs...)
}

// redactText replaces every registered secret in s.
func redactText(s string) string {
	secretsMu.RLock()
	r := replacer
	secretsMu.RUnlock()
	if r == nil {
		return s
	}
	return r.Replace(s)
}

// secrets lists every secret of the configuration.
func (c *Config) secrets() []ingest.Secret {
	out := []ingest.Secret{c.Restless.APIKey, c.Sink.NATS.Token, c.Sink.Kafka.SASL.Password}
	for _, s := range c.Streams {
		out = append(out, s.Verify.Secrets...)
	}
	out = append(out, c.Discover.Verify.Secrets...)
	return out
}
