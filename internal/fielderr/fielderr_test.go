package fielderr

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/restless-stream/ingest"
)

func TestSplit(t *testing.T) {
	plain := errors.New("reach brokers")
	tests := []struct {
		name   string
		err    error
		fields []string
		others []error
	}{
		{"nil", nil, nil, nil},
		{"one", ingest.FieldErrorf("A", "bad"), []string{"A"}, nil},
		{"joined and nested", errors.Join(
			ingest.FieldErrorf("A", "bad"),
			ingest.Prefix("TLS", errors.Join(ingest.FieldErrorf("CertFile", "x"), ingest.FieldErrorf("KeyFile", "y"))),
		), []string{"A", "TLS.CertFile", "TLS.KeyFile"}, nil},
		{"wrapped", fmt.Errorf("kafka: %w", errors.Join(ingest.FieldErrorf("A", "bad"), ingest.FieldErrorf("B[2]", "bad"))), []string{"A", "B[2]"}, nil},
		{"other", fmt.Errorf("kafka: %w", plain), nil, []error{fmt.Errorf("kafka: %w", plain)}},
		{"both", errors.Join(ingest.FieldErrorf("A", "bad"), plain), []string{"A"}, []error{plain}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fields, others := Fields(tt.err)
			if !slices.Equal(fields, tt.fields) {
				t.Errorf("fields %q, want %q", fields, tt.fields)
			}
			if len(others) != len(tt.others) {
				t.Fatalf("others %v, want %v", others, tt.others)
			}
			for i := range others {
				if others[i].Error() != tt.others[i].Error() {
					t.Errorf("other %d = %v, want %v", i, others[i], tt.others[i])
				}
			}
		})
	}
}
