package client

import "testing"

func TestDefaults(t *testing.T) {
	if DefaultMaxEventBytes != 4194304 {
		t.Errorf("DefaultMaxEventBytes = %d, want 4194304 (4 MiB, INGEST.md max_event_bytes)", DefaultMaxEventBytes)
	}
	if got := DefaultDestination("orders"); got != "restless.orders" {
		t.Errorf("DefaultDestination(orders) = %q, want restless.orders", got)
	}
}

func TestEnumsValid(t *testing.T) {
	checkValid(t, StreamStatus.Valid, []StreamStatus{StatusActive, StatusInactive}, []StreamStatus{"", "active", "PAUSED"})
	checkValid(t, HTTPMethod.Valid, []HTTPMethod{MethodGet, MethodPost, MethodPut, MethodPatch, MethodDelete, MethodOptions},
		[]HTTPMethod{"", "get", "HEAD", "FETCH"})
	checkValid(t, PayloadMode.Valid, []PayloadMode{PayloadFullData, PayloadJSONPatch}, []PayloadMode{"", "full_data", "DIFF"})
}

func checkValid[T ~string](t *testing.T, valid func(T) bool, good, bad []T) {
	t.Helper()
	for _, v := range good {
		if !valid(v) {
			t.Errorf("%T %q is not valid", v, v)
		}
	}
	for _, v := range bad {
		if valid(v) {
			t.Errorf("%T %q is valid", v, v)
		}
	}
}
