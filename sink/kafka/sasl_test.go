package kafka

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
)

func TestSASL(t *testing.T) {
	tests := []struct {
		mechanism, kfakeMech string
	}{
		{"plain", "PLAIN"},
		{"scram-sha-256", "SCRAM-SHA-256"},
		{"scram-sha-512", "SCRAM-SHA-512"},
	}
	for _, tt := range tests {
		t.Run(tt.mechanism, func(t *testing.T) {
			_, addr := newCluster(t, kfake.EnableSASL(), kfake.Superuser(tt.kfakeMech, "ingest", "s3cret"))
			s := newSink(t, Config{Brokers: []string{addr}, SASL: SASLConfig{Mechanism: tt.mechanism, Username: "ingest", Password: "s3cret"}})
			if err := s.Write(context.Background(), records(testTopic, []string{"a"}, 5)); err != nil {
				t.Fatal(err)
			}

			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			bad, err := New(ctx, Config{Brokers: []string{addr}, MaxAttempts: 1, SASL: SASLConfig{Mechanism: tt.mechanism, Username: "ingest", Password: "wrong-password"}})
			if err == nil {
				bad.Close(ctx)
				t.Fatal("New succeeded with a wrong password")
			}
			if strings.Contains(err.Error(), "wrong-password") {
				t.Fatalf("error leaks the password: %v", err)
			}
			if !strings.Contains(err.Error(), "authentication") {
				t.Fatalf("error does not point at the authentication: %v", err)
			}
		})
	}
}
