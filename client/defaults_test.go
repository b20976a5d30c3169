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
	for _, s := range []StreamStatus{StatusActive, StatusInactive} {
		if !s.Valid() {
			t.Errorf("%q is not valid", s)
		}
	}
	for _, s := range []StreamStatus{"", "active", "PAUSED"} {
		if s.Valid() {
			t.Errorf("status %q is valid", s)
		}
	}
	for _, m := range []HTTPMethod{MethodGet, MethodPost, MethodPut, MethodPatch, MethodDelete, MethodOptions} {
		if !m.Valid() {
			t.Errorf("%q is not valid", m)
		}
	}
	for _, m := range []HTTPMethod{"", "get", "HEAD", "FETCH"} {
		if m.Valid() {
			t.Errorf("method %q is valid", m)
		}
	}
	for _, p := range []PayloadMode{PayloadFullData, PayloadJSONPatch} {
		if !p.Valid() {
			t.Errorf("%q is not valid", p)
		}
	}
	for _, p := range []PayloadMode{"", "full_data", "DIFF"} {
		if p.Valid() {
			t.Errorf("payload mode %q is valid", p)
		}
	}
}
