package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nkeys"
)

// TestLoadReportsEveryProblemAtOnce: type errors, a faulty variable and the
// run's own rules are reported together, in one run.
func TestLoadReportsEveryProblemAtOnce(t *testing.T) {
	t.Setenv(envAPIKey, "")
	t.Setenv("INGEST_STREAMS__5__NAME", "gap")
	dir := t.TempDir()
	creds := filepath.Join(dir, "bad.creds")
	os.WriteFile(creds, []byte("not a credentials file\n"), 0o600)
	_, err := load(t, `
streams:
  - name: orders
    stream_id: s1
    idle_timeout: soon
    since: yesterday
  - name: poll
    transport: carrier-pigeon
    direct:
      url: https://example.com/api
      polling_strategies: [{start: "08:00", end: "18:00", timezone: Mars/Olympus}]
sink:
  nats:
    url: http://127.0.0.1:4222
    credentials_file: `+creds+`
    tls: {ca_file: `+filepath.Join(dir, "missing-ca.pem")+`}
`)
	var ce *ConfigError
	if !errors.As(err, &ce) {
		t.Fatalf("err = %v, want a *ConfigError", err)
	}
	want := map[string]string{
		"streams[0].idle_timeout": `"soon" is not a duration`,
		"streams[5]":              "index out of range",
		"streams[0].since":        `"yesterday" is neither a timestamp`,
		"streams[1].transport":    `"carrier-pigeon" is not one of`,
		"streams[1].direct.polling_strategies[0].timezone": `"Mars/Olympus" is not an IANA time zone`,
		"sink.nats.url":              `"http://127.0.0.1:4222" has scheme http`,
		"sink.nats.credentials_file": "holds no user JWT",
		"sink.nats.tls.ca_file":      "cannot read",
		"restless.api_key":           "required: stream orders, poll reaches the hosted service",
	}
	got := map[string]string{}
	for _, fe := range ce.Errs {
		got[fe.Path] += fe.Msg + "; "
	}
	for path, msg := range want {
		if !strings.Contains(got[path], msg) {
			t.Errorf("%s: %q, want it to say %q", path, got[path], msg)
		}
	}
	if strings.Contains(got["streams[0].idle_timeout"], "positive") {
		t.Errorf("idle_timeout also reported for its zero value: %q", got["streams[0].idle_timeout"])
	}
	if t.Failed() {
		t.Logf("all:\n%v", err)
	}
}

// TestLoadAcceptsWhatTheRunAccepts: timestamps and cursors as since, real
// zones, nats:// and host:port URLs, readable PEM and credentials files, and
// no key where no stream reaches the hosted service.
func TestLoadAcceptsWhatTheRunAccepts(t *testing.T) {
	t.Setenv(envAPIKey, "")
	dir := t.TempDir()
	cert, key := writeTestCert(t, dir)
	creds := writeTestCreds(t, dir)
	cfg, err := load(t, `
restless: {base_url: "http://127.0.0.1:1", stream_base_url: "http://127.0.0.1:1"}
streams:
  - {name: a, stream_id: s, since: "2026-01-02T15:04:05Z"}
  - {name: b, stream_id: s, since: "1780793376562"}
  - {name: c, stream_id: s, since: "2026-01-02"}
  - name: d
    direct:
      url: https://example.com/api
      polling_strategies: [{start: "08:00", end: "18:00", timezone: Europe/Paris}]
  - {name: e, url: "http://127.0.0.1:1/stream?streamId=x"}
sink:
  nats:
    url: "nats://127.0.0.1:4222, tls://n3:4222"
    credentials_file: `+creds+`
    tls: {ca_file: `+cert+`, cert_file: `+cert+`, key_file: `+key+`}
`)
	if err != nil {
		t.Fatalf("LoadConfig: %v", err)
	}
	if cfg.Restless.APIKey != "" {
		t.Errorf("api_key = %q", cfg.Restless.APIKey.Reveal())
	}
}

func TestValidSince(t *testing.T) {
	for s, want := range map[string]bool{
		"2026-01-02T15:04:05Z": true, "2026-01-02T15:04:05.123+02:00": true, "2026-01-02": true,
		"1780793376562": true, "evt_41": true, "yesterday": false, "now": false, "1 hour ago": false,
		"2026-13-45": false,
	} {
		if got := validSince(s); got != want {
			t.Errorf("validSince(%q) = %v, want %v", s, got, want)
		}
	}
}

func writeTestCert(t *testing.T, dir string) (certFile, keyFile string) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600)
	return certFile, keyFile
}

func writeTestCreds(t *testing.T, dir string) string {
	t.Helper()
	u, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	seed, err := u.Seed()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "user.creds")
	body := "-----BEGIN NATS USER JWT-----\neyJ0eXAiOiJKV1QifQ.eyJzdWIiOiJ4In0.c2ln\n------END NATS USER JWT------\n\n" +
		"-----BEGIN USER NKEY SEED-----\n" + string(seed) + "\n------END USER NKEY SEED------\n"
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestLoadAcceptsClusterMode: the two combinations cluster mode runs with,
// as INGEST.md writes them.
func TestLoadAcceptsClusterMode(t *testing.T) {
	for _, yaml := range []string{
		minimalYAML + "checkpoint: {type: nats_kv}\ncluster: {enabled: true, name: orders-eu, member: replica-1, lease_ttl: 2s}\n",
		minimalYAML + "sink: {type: kafka}\ncheckpoint: {type: kafka, kafka_topic: my_checkpoints}\ncluster: {enabled: true, lease_ttl: 6s}\n",
	} {
		cfg, err := load(t, yaml)
		if err != nil {
			t.Errorf("LoadConfig(%q): %v", yaml, err)
			continue
		}
		if !cfg.Cluster.Enabled {
			t.Errorf("%q: cluster.enabled false", yaml)
		}
	}
}
