package main

import (
	"fmt"
	"strings"
	"testing"
)

// TestCheckConnect: check --connect tries the REST API with the key, every
// stream and the broker, reports each, and exits 1 when one fails.
func TestCheckConnect(t *testing.T) {
	em := newTestEmulator(t)
	fh := newFirehose(t, em, "probe", 1000)
	dir := t.TempDir()
	good := writeConfig(t, dir, fmt.Sprintf(`
restless: {base_url: %[1]s, stream_base_url: %[1]s}
streams:
  - {name: demo, stream_id: %[2]s}
sink: {type: file, file: {path: events.jsonl}}
http: {addr: ""}
`, em.URL(), fh.id))
	env := map[string]string{"RESTLESS_API_KEY": testAPIKey}
	code, out, errOut := runIngest(t, env, []string{testAPIKey}, "check", "--connect", "-c", good)
	if code != 0 || !strings.Contains(out, "ok    restless API") || !strings.Contains(out, "ok    stream demo connects") {
		t.Fatalf("good: exit %d\n%s\n%s", code, out, errOut)
	}

	bad := writeConfig(t, t.TempDir(), fmt.Sprintf(`
restless: {base_url: %[1]s, stream_base_url: %[1]s}
streams:
  - {name: demo, stream_id: %[3]s}
  - {name: missing, stream_id: no_such_stream}
sink: {type: nats, nats: {url: "nats://127.0.0.1:%[2]d"}}
http: {addr: ""}
`, em.URL(), freeLocalPort(t), fh.id))
	code, out, errOut = runIngest(t, map[string]string{"RESTLESS_API_KEY": "rs_wrong_key_000011112222"}, []string{"rs_wrong_key_000011112222"}, "check", "--connect", "-c", bad)
	if code != 1 {
		t.Fatalf("bad: exit %d, want 1\n%s\n%s", code, out, errOut)
	}
	for _, want := range []string{"FAIL  restless API", "FAIL  stream demo connects", "FAIL  stream missing connects", "FAIL  sink nats reachable"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}
