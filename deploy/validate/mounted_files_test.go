package validate

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nkeys"
)

// mountedPath matches a file path under the chart's Secret mounts, which
// exist only in a pod: /etc/restless-ingest/<dir>/<file>.
var mountedPath = regexp.MustCompile(`/etc/restless-ingest/[a-z0-9-]+/[A-Za-z0-9._-]+`)

// withMountedFiles writes, under dir, a real file of the right kind for each
// path of cfgText under the chart's Secret mounts (a PEM certificate for
// .crt/.pem, its key for .key, a NATS credentials file for .creds), and
// returns cfgText with those paths replaced, so that `ingest check`, which
// opens and parses TLS and credentials files, checks what a pod would see.
func withMountedFiles(t *testing.T, dir, cfgText string) string {
	t.Helper()
	certPEM, keyPEM := selfSignedPEM(t)
	made := map[string]string{}
	return mountedPath.ReplaceAllStringFunc(cfgText, func(p string) string {
		if local, ok := made[p]; ok {
			return local
		}
		var body []byte
		switch ext := filepath.Ext(p); ext {
		case ".crt", ".pem":
			body = certPEM
		case ".key":
			body = keyPEM
		case ".creds":
			body = natsCreds(t)
		default:
			t.Fatalf("rendered configuration names %s under a Secret mount: no test file for %q files", p, ext)
		}
		local := filepath.Join(dir, "mounted", strings.TrimPrefix(p, "/etc/restless-ingest/"))
		if err := os.MkdirAll(filepath.Dir(local), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(local, body, 0o600); err != nil {
			t.Fatal(err)
		}
		made[p] = local
		return local
	})
}

// selfSignedPEM returns a self-signed CA certificate and its key, as PEM.
func selfSignedPEM(t *testing.T) (cert, key []byte) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "restless-ingest chart test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
}

// natsCreds returns a NATS credentials file: a user JWT and a fresh user
// NKey seed, decorated as `nsc` writes them.
func natsCreds(t *testing.T) []byte {
	t.Helper()
	user, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	seed, err := user.Seed()
	if err != nil {
		t.Fatal(err)
	}
	// The check reads the JWT's shape, not its claims or signature (the
	// server verifies those); three base64url parts are enough here.
	const jwt = "eyJ0eXAiOiJKV1QiLCJhbGciOiJlZDI1NTE5LW5rZXkifQ.eyJzdWIiOiJVQUJDIn0.c2lnbmF0dXJl"
	return []byte("-----BEGIN NATS USER JWT-----\n" + jwt + "\n------END NATS USER JWT------\n\n" +
		"************************* IMPORTANT *************************\n" +
		"NKEY Seed printed below can be used to sign and prove identity.\n\n" +
		"-----BEGIN USER NKEY SEED-----\n" + string(seed) + "\n------END USER NKEY SEED------\n")
}
