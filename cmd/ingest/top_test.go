package main

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
)

// TestTopRates: events/s is the difference of events_published over the
// time between two answers; unknown on the first answer, for a new stream,
// and when a counter went down (a restarted daemon).
func TestTopRates(t *testing.T) {
	v := newTopView("http://127.0.0.1:9464")
	t0 := time.Date(2026, 12, 4, 17, 0, 0, 0, time.UTC)
	v.apply(topPoll{at: t0, streams: []StreamStatus{{Name: "a", EventsPublished: 100}}})
	if r := v.rates["a"]; !math.IsNaN(r) {
		t.Fatalf("first answer: rate %v, want unknown", r)
	}
	v.apply(topPoll{at: t0.Add(2 * time.Second), streams: []StreamStatus{{Name: "a", EventsPublished: 400}, {Name: "b", EventsPublished: 9}}})
	if r := v.rates["a"]; r != 150 {
		t.Errorf("a: %v events/s, want 150", r)
	}
	if r := v.rates["b"]; !math.IsNaN(r) {
		t.Errorf("b, new: %v, want unknown", r)
	}
	// The daemon goes away for 3 s: the rows stay, the rate spans the gap.
	gone := &unreachableError{base: v.base, err: errors.New("connection refused")}
	v.apply(topPoll{at: t0.Add(3 * time.Second), err: gone})
	v.apply(topPoll{at: t0.Add(4 * time.Second), err: gone})
	if len(v.last) != 2 || !strings.Contains(v.problem(), "daemon unreachable since 17:00:03: connection refused; retrying every second (rows as of 17:00:02)") {
		t.Errorf("while gone: %d rows, problem %q", len(v.last), v.problem())
	}
	v.apply(topPoll{at: t0.Add(5 * time.Second), streams: []StreamStatus{{Name: "a", EventsPublished: 700}, {Name: "b", EventsPublished: 3}}})
	if v.problem() != "" {
		t.Errorf("back: problem %q", v.problem())
	}
	if r := v.rates["a"]; r != 100 {
		t.Errorf("a after the gap: %v, want 100", r)
	}
	if r := v.rates["b"]; !math.IsNaN(r) {
		t.Errorf("b went down (a restart): %v, want unknown", r)
	}
}

func TestTopScreen(t *testing.T) {
	v := newTopView("http://127.0.0.1:9464")
	now := time.Date(2026, 12, 4, 17, 0, 0, 0, time.UTC)
	if s := v.screen(now, 80, 24); !strings.Contains(s, "asking the daemon") {
		t.Errorf("before the first answer:\n%s", s)
	}
	errMsg := "refused\x1b[2J"
	var streams []StreamStatus
	for _, n := range []string{"a", "b", "c", "d", "e"} {
		streams = append(streams, StreamStatus{Name: n, State: streamConnected, LagSeconds: 0.5, LastError: &errMsg})
	}
	v.apply(topPoll{at: now, streams: streams})
	v.apply(topPoll{at: now.Add(time.Second), streams: streams})
	full := v.screen(now, 0, 0)
	lines := strings.Split(full, "\n")
	if len(lines) != 2+1+5 || !strings.HasPrefix(lines[0], "ingest top  http://127.0.0.1:9464  17:00:00  5 streams") {
		t.Fatalf("screen:\n%s", full)
	}
	if strings.Join(strings.Fields(lines[2]), " ") != "NAME STATE EV/S LAG LAST ERROR" ||
		strings.Join(strings.Fields(lines[3]), " ") != "a connected 0.0 0.500s refused?[2J" {
		t.Errorf("rows:\n%s", full)
	}
	small := strings.Split(v.screen(now, 20, 6), "\n")
	if len(small) != 6 || small[5] != "… 3 more" {
		t.Errorf("6 lines high:\n%s", strings.Join(small, "\n"))
	}
	for _, l := range small {
		if n := len([]rune(l)); n > 20 {
			t.Errorf("line of %d runes on a screen 20 wide: %q", n, l)
		}
	}
}

// TestTopKeys: q and Ctrl-C leave; other keys do not.
func TestTopKeys(t *testing.T) {
	m := &topModel{view: newTopView("http://x"), now: time.Now}
	for _, k := range []tea.KeyMsg{{Type: tea.KeyRunes, Runes: []rune("q")}, {Type: tea.KeyCtrlC}} {
		if _, cmd := m.Update(k); cmd == nil || cmd() != tea.Quit() {
			t.Errorf("%s does not quit", k)
		}
	}
	if _, cmd := m.Update(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune("x")}); cmd != nil {
		t.Error("x does something")
	}
	// An answer schedules the next poll.
	if _, cmd := m.Update(topPoll{at: time.Now()}); cmd == nil {
		t.Error("an answer schedules nothing")
	}
}
