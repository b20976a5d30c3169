package main

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/restless-stream/ingest/client"
	"github.com/restless-stream/ingest/pipeline"
	filesink "github.com/restless-stream/ingest/sink/file"
)

func TestDiscoveryFollowsTheAccount(t *testing.T) {
	// The upstream API the managed streams poll: it changes on every poll.
	var n atomic.Int64
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"n":%d}`, n.Add(1))
	}))
	t.Cleanup(upstream.Close)
	em := newTestEmulator(t)

	// The daemon lists streams through a proxy that can fail on demand.
	var fault atomic.Int64
	emURL, _ := url.Parse(em.URL())
	rp := httputil.NewSingleHostReverseProxy(emURL)
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if code := fault.Load(); code != 0 {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(int(code))
			fmt.Fprintf(w, `{"statusCode":%d,"message":"injected"}`, code)
			return
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(proxy.Close)

	cl, err := client.New(testAPIKey, client.WithBaseURL(em.URL()), client.WithStreamBaseURL(em.URL()))
	if err != nil {
		t.Fatal(err)
	}
	ctx := ctxT(t, 2*time.Minute)
	create := func(name string) string {
		t.Helper()
		st, err := cl.Streams.Create(ctx, client.CreateStreamRequest{Name: name, URL: upstream.URL, PollingInterval: 0.05})
		if err != nil {
			t.Fatal(err)
		}
		return st.ID
	}
	a := create("orders-a")
	create("billing-b") // not matched by the prefix

	dir := t.TempDir()
	events := filepath.Join(dir, "events.jsonl")
	cfg := writeConfig(t, dir, fmt.Sprintf(`
restless: {base_url: %[1]s, stream_base_url: %[2]s}
discover: {enabled: true, interval: 1s, name_prefix: orders-}
sink: {type: file, file: {path: %[3]s}}
checkpoint: {type: file, dir: %[4]s}
http: {addr: "127.0.0.1:0"}
`, proxy.URL, em.URL(), events, filepath.Join(dir, "cp")))
	p := startIngest(t, map[string]string{"RESTLESS_API_KEY": testAPIKey}, []string{testAPIKey}, "run", "-c", cfg)
	p.waitOutput(regexp.MustCompile(`http=http://`), 20*time.Second)

	byDest := func() map[string][]string {
		lines, _, _ := filesink.ReadFile(events)
		out := map[string][]string{}
		for _, l := range lines {
			out[l.Destination] = append(out[l.Destination], l.Headers[pipeline.HeaderEventID])
		}
		return out
	}
	dest := func(id string) string { return "restless." + discoveredName(id) }
	grows := func(d string, by int) {
		t.Helper()
		n := len(byDest()[d])
		waitUntil(t, 20*time.Second, fmt.Sprintf("%d more records at %s", by, d), func() bool { return len(byDest()[d]) >= n+by })
	}
	logged := func(s string) int { return strings.Count(p.stderr.String(), s) }
	// within waits for a log line: one interval, plus a list and a connect.
	within := func(s string, n int) {
		t.Helper()
		waitUntil(t, 3*time.Second, fmt.Sprintf("%d× %q", n, s), func() bool { return logged(s) >= n })
	}

	grows(dest(a), 10)
	c := create("orders-c")
	within(`msg="stream added" stream=`+discoveredName(c), 1)
	grows(dest(c), 10)

	// Stopped: drained and removed; started again: added again.
	if _, err := cl.Streams.Stop(ctx, a); err != nil {
		t.Fatal(err)
	}
	within(`msg="stream drained and stopped" stream=`+discoveredName(a), 1)
	if _, err := cl.Streams.Start(ctx, a); err != nil {
		t.Fatal(err)
	}
	within(`msg="stream added" stream=`+discoveredName(a), 2)
	grows(dest(a), 10)

	// The list failing for a while changes nothing, and is logged once
	// per distinct failure.
	for _, code := range []int64{500, 401} {
		fault.Store(code)
		grows(dest(c), 40) // well over several intervals
	}
	fault.Store(0)
	within("reading the account's streams works again", 1)
	if got := logged("reading the account's streams failed"); got != 2 {
		t.Errorf("list failures logged %d times, want 2 (500, then 401)", got)
	}
	if got := logged(`msg="stream drained and stopped"`); got != 1 {
		t.Errorf("%d streams stopped while the list failed, want only the one stopped before", got)
	}

	// Deleted: its lane ends, the next list removes it; the others go on.
	if _, err := cl.Streams.Delete(ctx, c); err != nil {
		t.Fatal(err)
	}
	within(`msg="stream drained and stopped" stream=`+discoveredName(c), 1)
	grows(dest(a), 10)

	p.signal(syscall.SIGTERM)
	if code := p.wait(30 * time.Second); code != 0 {
		t.Fatalf("exit code %d", code)
	}
	for d, ids := range byDest() {
		seen := map[string]bool{}
		for _, id := range ids {
			if seen[id] {
				t.Errorf("%s: event %s published twice", d, id)
			}
			seen[id] = true
		}
	}
	for d := range byDest() {
		if d != dest(a) && d != dest(c) {
			t.Errorf("records at %s: only the streams named orders-… are discovered", d)
		}
	}
}
