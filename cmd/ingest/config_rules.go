package main

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/url"
	"os"
	"regexp"
	"strings"
	"time"
	_ "time/tzdata" // polling_strategies time zones are checked the same on every host

	"github.com/nats-io/nkeys"
)

// The rules below reject at load what the run would only reject later (a 400
// from the service, a failed TLS handshake, a connect error), so that
// `ingest check` can be trusted: a configuration it passes starts.

// hostedDomain is the hosted service's domain; its URLs need an API key.
const hostedDomain = "restlessapi.stream"

func isHosted(raw string) bool {
	u, err := url.Parse(raw)
	if err != nil {
		return false
	}
	h := strings.ToLower(u.Hostname())
	return h == hostedDomain || strings.HasSuffix(h, "."+hostedDomain)
}

// sinceTimestampLayouts are the timestamps a since may be: RFC 3339 and the
// shorter ISO-8601 forms the service accepts.
var sinceTimestampLayouts = []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999", "2006-01-02T15:04", "2006-01-02"}

// cursorRE is a plausible cursor: an event id (decimal epoch milliseconds in
// every known stream) or another opaque token of id characters with a digit.
var cursorRE = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,200}$`)

// validSince reports whether s is a timestamp or a plausible cursor.
func validSince(s string) bool {
	for _, l := range sinceTimestampLayouts {
		if _, err := time.Parse(l, s); err == nil {
			return true
		}
	}
	if dateLikeRE.MatchString(s) {
		return false // a timestamp that does not parse (2026-13-45), not a cursor
	}
	return cursorRE.MatchString(s) && strings.ContainsAny(s, "0123456789")
}

var dateLikeRE = regexp.MustCompile(`^[0-9]{4}-[0-9]{1,2}`)

// checkRunRules adds the run's own rejections to v.
func (c *Config) checkRunRules(v *validator) {
	// An API key for every stream that reaches the hosted service.
	if c.Restless.APIKey == "" {
		var needs []string
		for _, s := range c.Streams {
			var urls []string
			switch {
			case s.Direct != nil:
				urls = []string{c.Restless.BaseURL, c.Restless.StreamBaseURL}
			case s.StreamID != "" || s.SessionID != "":
				urls = []string{c.Restless.StreamBaseURL}
			case s.URL != "":
				urls = []string{s.URL}
			}
			for _, u := range urls {
				if isHosted(u) {
					needs = append(needs, s.Name)
					break
				}
			}
		}
		if len(needs) > 0 {
			v.add("restless.api_key", "required: stream %s reaches the hosted service (%s), which answers 401 without a key; set restless.api_key or RESTLESS_API_KEY",
				strings.Join(needs, ", "), hostedDomain)
		}
	}

	for i, s := range c.Streams {
		if s.Since != "" && !validSince(s.Since) {
			v.add(fmt.Sprintf("streams[%d].since", i), "%q is neither a timestamp (RFC 3339, e.g. 2026-01-02T15:04:05Z) nor a cursor (an event_id such as 1780793376562); the service would answer 400", s.Since)
		}
		if s.Direct == nil {
			continue
		}
		for j, ps := range s.Direct.PollingStrategies {
			if ps.Timezone == "" {
				continue
			}
			if _, err := time.LoadLocation(ps.Timezone); err != nil || strings.EqualFold(ps.Timezone, "local") {
				v.add(fmt.Sprintf("streams[%d].direct.polling_strategies[%d].timezone", i, j), "%q is not an IANA time zone (e.g. Europe/Paris, UTC)", ps.Timezone)
			}
		}
	}

	switch c.Sink.Type {
	case "nats":
		n := c.Sink.NATS
		if !n.Embedded {
			for _, u := range splitList(n.URL) {
				if msg := natsURLProblem(u); msg != "" {
					v.add("sink.nats.url", "%q %s", u, msg)
				}
			}
		}
		checkTLSFiles(v, "sink.nats.tls", n.TLS.CAFile, n.TLS.CertFile, n.TLS.KeyFile)
		if n.CredentialsFile != "" {
			if msg := credentialsProblem(n.CredentialsFile); msg != "" {
				v.add("sink.nats.credentials_file", "%s", msg)
			}
		}
	case "kafka":
		t := c.Sink.Kafka.TLS
		checkTLSFiles(v, "sink.kafka.tls", t.CAFile, t.CertFile, t.KeyFile)
	}
}

// natsURLProblem says what is wrong with a NATS server URL, or "".
func natsURLProblem(raw string) string {
	if !strings.Contains(raw, "://") {
		return "" // host:port, as nats.go accepts it
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "is not a URL"
	}
	switch strings.ToLower(u.Scheme) {
	case "nats", "tls", "ws", "wss":
	default:
		return fmt.Sprintf("has scheme %s: NATS URLs are nats://host:4222 (or tls://, ws://, wss://)", u.Scheme)
	}
	if u.Host == "" {
		return "has no host"
	}
	return ""
}

// checkTLSFiles checks that the PEM files exist and parse, and that a client
// certificate comes with its key.
func checkTLSFiles(v *validator, section, ca, cert, key string) {
	if ca != "" {
		if b, err := os.ReadFile(ca); err != nil {
			v.add(section+".ca_file", "cannot read %s: %v", ca, unwrapPathError(err))
		} else if !x509.NewCertPool().AppendCertsFromPEM(b) {
			v.add(section+".ca_file", "%s holds no PEM certificate", ca)
		}
	}
	// A certificate without its key (or the reverse) is the sink's rule.
	var cerr, kerr error
	if cert != "" {
		if _, cerr = os.Stat(cert); cerr != nil {
			v.add(section+".cert_file", "cannot read %s: %v", cert, unwrapPathError(cerr))
		}
	}
	if key != "" {
		if _, kerr = os.Stat(key); kerr != nil {
			v.add(section+".key_file", "cannot read %s: %v", key, unwrapPathError(kerr))
		}
	}
	if cert != "" && key != "" && cerr == nil && kerr == nil {
		if _, err := tls.LoadX509KeyPair(cert, key); err != nil {
			v.add(section+".cert_file", "%s with %s: not a PEM certificate and its key: %v", cert, key, err)
		}
	}
}

// credentialsProblem says what is wrong with a NATS credentials file, or "".
func credentialsProblem(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("cannot read %s: %v", path, unwrapPathError(err))
	}
	jwt, err := nkeys.ParseDecoratedJWT(b)
	if err != nil || strings.Count(strings.TrimSpace(jwt), ".") != 2 {
		return fmt.Sprintf("%s holds no user JWT (a NATS credentials file has a JWT and an NKey seed)", path)
	}
	if _, err := nkeys.ParseDecoratedUserNKey(b); err != nil {
		return fmt.Sprintf("%s holds no user NKey seed: %v", path, err)
	}
	return ""
}
