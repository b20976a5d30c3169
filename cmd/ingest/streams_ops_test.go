package main

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestStreamsRoughEdges: validate-key fails on a bad key, -h is per operation,
// RESTLESS_BASE_URL is honoured, list and list --all have one shape, an update
// without fields and bad values are usage errors (exit 2).
func TestStreamsRoughEdges(t *testing.T) {
	em := newTestEmulator(t)
	env := map[string]string{"RESTLESS_API_KEY": testAPIKey, "RESTLESS_BASE_URL": em.URL()}
	secrets := []string{testAPIKey}

	code, out, errOut := runIngest(t, env, secrets, "streams", "create", "--name", "Edges", "--url", em.URL()+"/_emulator/demo/orders")
	if code != 0 {
		t.Fatalf("create with RESTLESS_BASE_URL: exit %d, %s", code, errOut)
	}
	var created struct{ ID, Name string }
	if err := json.Unmarshal([]byte(out), &created); err != nil || created.ID == "" {
		t.Fatalf("create output %q: %v", out, err)
	}

	// One shape for a page and for every page.
	type page struct {
		Streams        []json.RawMessage `json:"streams"`
		PaginationInfo *struct {
			HasNextPage bool `json:"hasNextPage"`
		} `json:"paginationInfo"`
	}
	for _, args := range [][]string{{"streams", "list"}, {"streams", "list", "--all"}} {
		code, out, _ := runIngest(t, env, secrets, args...)
		var p page
		if err := json.Unmarshal([]byte(out), &p); code != 0 || err != nil || len(p.Streams) == 0 || p.PaginationInfo == nil {
			t.Errorf("%v: exit %d, %v, not a page: %s", args, code, err, out)
		}
	}

	const bad = "rs_not_a_key_0000111122223333"
	if code, out, _ := runIngest(t, env, []string{testAPIKey, bad}, "streams", "validate-key", bad); code != 1 {
		t.Errorf("validate-key with an invalid key: exit %d, want 1; %s", code, out)
	}
	if code, _, _ := runIngest(t, env, secrets, "streams", "validate-key"); code != 0 {
		t.Errorf("validate-key with the valid key: exit %d, want 0", code)
	}

	_, _, getHelp := runIngest(t, env, secrets, "streams", "get", "-h")
	_, _, listHelp := runIngest(t, env, secrets, "streams", "list", "-h")
	if !strings.Contains(getHelp, "ingest streams get ID") || strings.Contains(getHelp, "-limit") || getHelp == listHelp {
		t.Errorf("get -h:\n%s", getHelp)
	}
	if !strings.Contains(listHelp, "-limit") || strings.Contains(listHelp, "-payload-mode") {
		t.Errorf("list -h:\n%s", listHelp)
	}

	code, _, errOut = runIngest(t, env, secrets, "streams", "update", created.ID)
	if code != 2 || !strings.Contains(errOut, "no field to change") {
		t.Errorf("update without fields: exit %d, %s", code, errOut)
	}
	for _, args := range [][]string{
		{"streams", "list", "--limit", "-1"},
		{"streams", "create", "--name", "x", "--url", em.URL(), "--status", "MAYBE"},
		{"streams", "update", created.ID, "--payload-mode", "DIFF"},
		{"streams", "update", created.ID, "--method", "FETCH"},
		{"streams", "get", created.ID, "--name", "x"},
		{"streams", "tail", created.ID, "--since", "yesterday"},
		{"streams", "frobnicate"},
	} {
		if code, _, errOut := runIngest(t, env, secrets, args...); code != 2 {
			t.Errorf("%v: exit %d, want 2; %s", args, code, errOut)
		}
	}
	code, out, _ = runIngest(t, env, secrets, "streams", "get", created.ID)
	if code != 0 || !strings.Contains(out, `"Edges"`) {
		t.Errorf("the stream changed: %s", out)
	}
}
