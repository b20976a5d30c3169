package main

import (
	"testing"

	"github.com/restless-stream/ingest/client"
)

func TestDiscoveredName(t *testing.T) {
	for id, want := range map[string]string{
		"st_4f2a":         "d-st_4f2a",
		"Stream.Orders/1": "d-stream-orders-1",
		"ÄB c":            "d--b-c", // one dash per character, not per byte
	} {
		if got := discoveredName(id); got != want {
			t.Errorf("discoveredName(%q) = %q, want %q", id, got, want)
		}
	}
}

func TestRestartSections(t *testing.T) {
	old := &Config{Log: LogConfig{Level: "info", Format: "text"}, HTTP: HTTPConfig{Addr: "a"}}
	next := *old
	next.Streams = []StreamConfig{{Name: "x"}}
	next.Discover.Enabled = true
	next.Log.Level = "debug"
	if got := restartSections(old, &next); len(got) != 0 {
		t.Errorf("streams, discover and log.level need no restart, got %v", got)
	}
	next.HTTP.Addr = "b"
	next.Log.Format = "json"
	next.Sink.Type = "kafka"
	if got := restartSections(old, &next); !equalStrings(got, []string{"sink", "http", "log.format"}) {
		t.Errorf("restartSections = %v", got)
	}
}

func TestDesiredConfiguredWins(t *testing.T) {
	s := &streamSet{cfg: &Config{Streams: []StreamConfig{{Name: "orders", StreamID: "st_1"}}}}
	d := DiscoverConfig{Transport: "sse"}
	s.discovered = []StreamConfig{
		discoveredStream(clientStream("st_1"), d), // configured under another name: the configured one wins
		discoveredStream(clientStream("st_2"), d),
	}
	want, paths := s.desired()
	if len(want) != 2 || want[0].Name != "orders" || want[1].Name != "d-st_2" {
		t.Fatalf("desired = %+v", want)
	}
	if paths["orders"] != "streams[0]" || paths["d-st_2"] != "discover" || want[1].Destination != "restless.d-st_2" {
		t.Errorf("paths %v, destination %q", paths, want[1].Destination)
	}
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func clientStream(id string) client.Stream { return client.Stream{ID: id} }
