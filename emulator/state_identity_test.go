package emulator

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// TestStateFileKeepsGeneratedKeyAndSecrets: with a state file, the generated
// API key and the demo and direct secrets are the same after a restart, even
// when nothing else was saved; keys the options chose are not written.
func TestStateFileKeepsGeneratedKeyAndSecrets(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.json")
	identity := func() (key, demo, direct string) {
		t.Helper()
		e, err := New(Options{StateFile: path, DemoAPI: true})
		if err != nil {
			t.Fatal(err)
		}
		defer e.Close()
		demo, err = e.Secret(DemoStreamID)
		if err != nil {
			t.Fatal(err)
		}
		return e.APIKey(), demo, e.DirectSecret()
	}
	k1, d1, x1 := identity()
	k2, d2, x2 := identity()
	if k1 != k2 || d1 != d2 || x1 != x2 {
		t.Errorf("after a restart: key %q→%q, demo secret %q→%q, direct secret %q→%q; want them kept", k1, k2, d1, d2, x1, x2)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatalf("no state file after a start: %v", err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("state file mode %v, want 0600: it holds a key", fi.Mode().Perm())
	}

	// Keys and secrets the options give win, and chosen keys are not written.
	e, err := New(Options{StateFile: path, APIKeys: []string{testKey}, DemoAPI: true, DemoSecret: "chosen-demo", DirectSecret: "chosen-direct"})
	if err != nil {
		t.Fatal(err)
	}
	if e.APIKey() != testKey || e.DirectSecret() != "chosen-direct" {
		t.Errorf("options lost: key %q, direct %q", e.APIKey(), e.DirectSecret())
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	var s stateFile
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatal(err)
	}
	if s.APIKey != "" {
		t.Errorf("state file holds the chosen key %q", s.APIKey)
	}
}
