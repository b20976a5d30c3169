package emulator

import (
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func TestStateFileSurvivesRestart(t *testing.T) {
	up := &upstream{}
	up.set(200, `{"v":1}`)
	srv := httptest.NewServer(up)
	defer srv.Close()
	path := filepath.Join(t.TempDir(), "state.json")

	e1, err := New(Options{APIKeys: []string{testKey}, StateFile: path})
	if err != nil {
		t.Fatal(err)
	}
	if err := e1.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	_, st := call(t, e1, "POST", "/streams", map[string]any{"name": "kept", "url": srv.URL, "status": "INACTIVE", "payloadMode": "JSON_PATCH"})
	id, secret := st["id"].(string), st["hmacSecret"].(string)
	lastID, err := e1.Publish(id, []byte(`{"v":1}`))
	if err != nil {
		t.Fatal(err)
	}
	_, sess := call(t, e1, "POST", "/streams/direct/session", map[string]any{"url": srv.URL, "dedupeKey": "k", "pollingInterval": 60})
	if err := e1.Close(); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("state file: %v %v", fi, err)
	}

	e2 := startEmu(t, Options{StateFile: path})
	code, got := call(t, e2, "GET", "/streams/"+id, nil)
	if code != 200 || got["name"] != "kept" || got["payloadMode"] != "JSON_PATCH" {
		t.Fatalf("after restart: %d %v", code, got)
	}
	if s, _ := e2.Secret(id); s != secret {
		t.Fatal("secret not kept")
	}
	next, err := e2.Publish(id, []byte(`{"v":2}`))
	if err != nil {
		t.Fatal(err)
	}
	a, _ := strconv.ParseInt(lastID, 10, 64)
	b, _ := strconv.ParseInt(next, 10, 64)
	if b <= a {
		t.Fatalf("event id %d after restart is not above %d", b, a)
	}
	_, sess2 := call(t, e2, "POST", "/streams/direct/session", map[string]any{"url": srv.URL, "dedupeKey": "k", "pollingInterval": 60})
	if sess2["sessionId"] != sess["sessionId"] {
		t.Fatalf("session not kept: %v then %v", sess, sess2)
	}
	// A connection without a cursor starts with the latest update; on a
	// JSON_PATCH stream that is the full document.
	r := subscribeSSE(t, sseURL(e2, id), nil).next(t)
	if string(r.ev.Data) != `{"v":2}` {
		t.Fatalf("first event %s", r.raw)
	}
}

func TestStateFileErrors(t *testing.T) {
	dir := t.TempDir()
	for name, content := range map[string]string{
		"bad.json":     `{`,
		"version.json": `{"version":99}`,
		"noid.json":    `{"version":1,"streams":[{"config":{}}]}`,
	} {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(content), 0o600)
		if _, err := New(Options{StateFile: p}); err == nil || !strings.Contains(err.Error(), "state file") {
			t.Errorf("%s: err %v", name, err)
		}
	}
	// An unwritable location is reported at once: the state file is written
	// at start (it keeps the generated key and secrets).
	if _, err := New(Options{StateFile: filepath.Join(dir, "missing", "state.json")}); err == nil || !strings.Contains(err.Error(), "state file") {
		t.Fatalf("New with an unwritable state file: err %v", err)
	}
	// A write that fails later is reported by Close.
	sub := filepath.Join(dir, "later")
	os.Mkdir(sub, 0o755)
	e, err := New(Options{StateFile: filepath.Join(sub, "state.json")})
	if err != nil {
		t.Fatal(err)
	}
	os.RemoveAll(sub)
	if _, err := e.CreateStream(StreamSpec{URL: "http://127.0.0.1:1/", Inactive: true}); err != nil {
		t.Fatal(err)
	}
	if err := e.Close(); err == nil {
		t.Fatal("Close did not report the failed state write")
	}
}
