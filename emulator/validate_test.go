package emulator

import (
	"maps"
	"slices"
	"testing"
)

// TestBodyFields checks the members each request body accepts, read from
// client's request models.
func TestBodyFields(t *testing.T) {
	direct := []string{"url", "method", "headers", "body", "jqFilter", "payloadMode", "pollingInterval",
		"pollingStrategies", "apiKey", "api_key"}
	tests := []struct {
		name string
		got  map[string]bool
		want []string
	}{
		{"stream", streamFields, append([]string{"name", "description", "status"}, direct...)},
		{"direct setup", setupFields, append([]string{"language"}, direct...)},
		{"direct session", sessionFields, append([]string{"dedupeKey", "dedupe_key"}, direct...)},
		{"connection snippets", snippetFields, []string{"streamId", "language"}},
	}
	for _, tt := range tests {
		got := slices.Sorted(maps.Keys(tt.got))
		want := slices.Sorted(slices.Values(tt.want))
		if !slices.Equal(got, want) {
			t.Errorf("%s body members = %v, want %v", tt.name, got, want)
		}
	}
}
