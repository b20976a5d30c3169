package main

import (
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/restless-stream/ingest/client"
	"github.com/restless-stream/ingest/emulator"
	"github.com/restless-stream/ingest/pipeline"
	filesink "github.com/restless-stream/ingest/sink/file"
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

func TestSetOwnerDrainsWhatIsNoLongerOwned(t *testing.T) {
	d, events := newTestDaemon(t, "a", "b")
	runDone := make(chan error, 1)
	go func() { runDone <- d.pipe.Run(t.Context()) }()
	waitUntil(t, 10*time.Second, "both streams published", func() bool {
		by := events()
		return len(by["restless.a"]) > 0 && len(by["restless.b"]) > 0
	})
	d.set.setOwner(t.Context(), func(name string) bool { return name == "b" })
	var names []string
	for _, st := range d.pipe.Status() {
		names = append(names, st.Name)
	}
	if !equalStrings(names, []string{"b"}) {
		t.Fatalf("lanes after the owner change: %v, want [b]", names)
	}
	if st, _, err := d.store.Load(t.Context(), "a"); err != nil || st == "" {
		t.Errorf("a's checkpoint %q (%v): a drained stream saves it", st, err)
	}
	d.set.setOwner(t.Context(), func(string) bool { return true })
	names = names[:0]
	for _, st := range d.pipe.Status() {
		names = append(names, st.Name)
	}
	if !equalStrings(names, []string{"b", "a"}) {
		t.Fatalf("lanes after taking a back: %v, want [b a]", names)
	}
	if err := d.pipe.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := <-runDone; err != nil {
		t.Fatal(err)
	}
}

// newTestDaemon builds (without running) a daemon reading one firehose of
// the emulator per name into a file; events reads the file by destination.
func newTestDaemon(t *testing.T, names ...string) (*daemon, func() map[string][]string) {
	t.Helper()
	em := newTestEmulator(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "events.jsonl")
	var streams strings.Builder
	for i, n := range names {
		if _, err := em.CreateFirehose(emulator.FirehoseConfig{ID: "fh_" + n, EventBytes: 300, Rate: 200, StartID: int64(i+1) * 1000}); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&streams, "  - {name: %s, stream_id: fh_%s}\n", n, n)
	}
	cfg, err := LoadConfig(LoadOptions{Data: fmt.Appendf(nil, `
restless: {api_key: %[1]s, base_url: %[2]s, stream_base_url: %[2]s}
streams:
%[3]s
sink: {type: file, file: {path: %[4]s}}
checkpoint: {type: memory}
http: {addr: ""}
`, testAPIKey, em.URL(), streams.String(), path)})
	if err != nil {
		t.Fatal(err)
	}
	d, err := newDaemon(t.Context(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.close)
	return d, func() map[string][]string {
		lines, _, _ := filesink.ReadFile(path)
		out := map[string][]string{}
		for _, l := range lines {
			out[l.Destination] = append(out[l.Destination], l.Headers[pipeline.HeaderEventID])
		}
		return out
	}
}
