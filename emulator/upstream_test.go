package emulator

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestUpstreamAllowed: the pollers never fetch the emulator's own address
// (but for its demo upstream, served in-process), never follow a redirect
// to an upstream they may not fetch, and with AllowUpstream fetch only the
// hosts it names. A refused poll is an error event naming why; the refused
// server sees no request.
func TestUpstreamAllowed(t *testing.T) {
	target := &upstream{}
	target.set(200, `{"secret":"internal"}`)
	tsrv := httptest.NewServer(target)
	defer tsrv.Close()
	cases := []struct {
		name  string
		allow []string
		url   func(e *Emulator, redirector string) string
		want  string // "" = an update is published; else the error event's message contains it
		// targetSeen: the target server was fetched
		targetSeen bool
	}{
		{name: "own address", url: func(e *Emulator, _ string) string { return e.URL() + "/streams" }, want: "own address"},
		{name: "own address as localhost", url: func(e *Emulator, _ string) string {
			return strings.Replace(e.URL(), "127.0.0.1", "localhost", 1) + "/streams"
		}, want: "own address"},
		{name: "own demo upstream, in-process", url: func(e *Emulator, _ string) string { return e.URL() + DemoPath }},
		{name: "redirect to own address", url: func(_ *Emulator, r string) string { return r + "/to-own" }, want: "own address"},
		{name: "allowed", allow: []string{"127.0.0.1:*"}, url: func(*Emulator, string) string { return tsrv.URL }, targetSeen: true},
		{name: "not in the list", allow: []string{"api.example.com", "*.example.org"}, url: func(*Emulator, string) string { return tsrv.URL }, want: "not in the allowed upstreams"},
		{name: "redirect out of the list", allow: []string{"localhost:*"}, url: func(_ *Emulator, r string) string {
			return strings.Replace(r, "127.0.0.1", "localhost", 1) + "/to-target"
		}, want: "not in the allowed upstreams"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := target.count()
			e := startEmu(t, Options{AllowUpstream: c.allow})
			redir := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				to := tsrv.URL
				if r.URL.Path == "/to-own" {
					to = e.URL() + "/streams"
				}
				http.Redirect(w, r, to, http.StatusFound)
			}))
			defer redir.Close()
			code, st := call(t, e, "POST", "/streams", map[string]any{"name": "s", "url": c.url(e, redir.URL), "pollingInterval": 0.05})
			if code != 201 {
				t.Fatalf("create: %d %v", code, st)
			}
			// From the start: the first poll may be done before the subscription.
			sub := subscribeSSE(t, st["sseUrl"].(string), map[string]string{"Last-Event-ID": "1"})
			r := sub.next(t)
			if c.want == "" {
				if r.ev.Type != "update" {
					t.Fatalf("got %s, want an update", r.raw)
				}
			} else if r.ev.Type != "error" || !strings.Contains(string(r.ev.Error), c.want) {
				t.Fatalf("got %s, want an error event saying %q", r.raw, c.want)
			}
			if seen := target.count() > before; seen != c.targetSeen {
				t.Errorf("target fetched: %v, want %v", seen, c.targetSeen)
			}
		})
	}
}

func TestMatchUpstream(t *testing.T) {
	cases := []struct {
		pattern, host, port string
		want                bool
	}{
		{"api.example.com", "api.example.com", "443", true},
		{"api.example.com", "API.example.com", "80", true},
		{"api.example.com:8443", "api.example.com", "443", false},
		{"api.example.com:8443", "api.example.com", "8443", true},
		{"*.example.com", "a.b.example.com", "443", true},
		{"*.example.com", "example.com", "443", false},
		{"*.example.com", "evilexample.com", "443", false},
		{"[::1]:*", "::1", "9", true},
		{"*", "anything", "1", true},
		{"10.0.0.1", "10.0.0.10", "80", false},
	}
	for _, c := range cases {
		if got := matchUpstream(c.pattern, c.host, c.port); got != c.want {
			t.Errorf("matchUpstream(%q, %q, %q) = %v, want %v", c.pattern, c.host, c.port, got, c.want)
		}
	}
	if err := checkAllowUpstream([]string{"http://x/"}); err == nil {
		t.Error("a URL accepted as a pattern")
	}
}
