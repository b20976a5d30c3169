package main

import (
	"strings"
	"testing"

	"github.com/restless-stream/ingest"
)

// TestRedactText: registered secrets, whole or cut, and credentials no one
// registered (URL userinfo, credential-like query parameters, plain or
// percent-encoded inside another URL, Authorization tokens) never survive
// redactText; ordinary text does.
func TestRedactText(t *testing.T) {
	const key = "rs_live_Redact0123456789abcdefXYZ"
	registerSecrets(ingest.Secret(key))
	cut := `HTTP 500: "invalid key ` + key[:20] + `` // an error body cut at a limit, mid-key
	cases := []struct {
		in   string
		leak []string // none of these may remain
		keep []string // all of these must remain
	}{
		{"key " + key + " refused", []string{key}, []string{"key ", " refused"}},
		{cut, []string{key[:20], key[8:20]}, []string{"invalid key "}},
		{"GET http://127.0.0.1:9/x?streamId=s1&access_token=at_secret_1&limit=5: refused",
			[]string{"at_secret_1"}, []string{"streamId=s1", "limit=5", "refused"}},
		{"sse: https://stream.example/v1/direct?url=https%3A%2F%2Fapi.example%2Fv1%3Fq%3D1%26access_token%3Dtok_enc_2%26x%3Dy&pollingInterval=1",
			[]string{"tok_enc_2"}, []string{"q%3D1", "%26x%3Dy", "pollingInterval=1"}},
		{"https%3A%2F%2Fuser%3Apw_enc_3%40api.example%2Fv1", []string{"pw_enc_3", "user%3A"}, []string{"api.example"}},
		{"dial https://bob:pw_plain_4@api.example:8443/v1: refused", []string{"pw_plain_4", "bob:"}, []string{"api.example:8443/v1"}},
		{"?api_key=k5&apikey=k6&key=k7&secret=k8&password=k9&signature=k10&sig=k11&auth=k12&token=k13",
			[]string{"k5", "k6", "k7", "k8", "k9", "k10", "k11", "k12", "k13"}, nil},
		{"Authorization: Bearer eyJhbGciOi.payload.sig", []string{"eyJhbGciOi"}, []string{"Authorization: Bearer"}},
		{"dedupe_key=orders&streamId=abc", nil, []string{"dedupe_key=orders", "streamId=abc"}},
	}
	for _, c := range cases {
		got := redactText(c.in)
		for _, l := range c.leak {
			if strings.Contains(got, l) {
				t.Errorf("redactText(%q) = %q: %q left in", c.in, got, l)
			}
		}
		for _, k := range c.keep {
			if !strings.Contains(got, k) {
				t.Errorf("redactText(%q) = %q: %q lost", c.in, got, k)
			}
		}
	}
}

// TestTruncateRedacted: text is redacted before it is cut, so a cut never
// leaves part of a secret.
func TestTruncateRedacted(t *testing.T) {
	const key = "rs_live_Trunc0123456789abcdefXYZ"
	registerSecrets(ingest.Secret(key))
	in := strings.Repeat("x", 40) + key + strings.Repeat("y", 40)
	for n := 41; n < len(in); n++ {
		got := truncateRedacted(in, n)
		if strings.Contains(got, key[:8]) || len(got) > n+len("…") {
			t.Fatalf("truncateRedacted(…, %d) = %q", n, got)
		}
	}
}
