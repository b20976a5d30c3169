package jsonpatch

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"testing"
)

// TestApplyConformance runs the community JSON Patch suite
// (github.com/json-patch/json-patch-tests, kept with its licence in
// client/testdata/json-patch-tests) through Apply. It passes every case;
// the SDK's library (github.com/evanphx/json-patch/v5) fails five of them
// (client checks one itself; its TestPatchConformance lists the other four),
// which is why the emulator keeps this applier, besides needing Diff.
func TestApplyConformance(t *testing.T) {
	ran := 0
	for _, f := range []string{"tests.json", "spec_tests.json"} {
		b, err := os.ReadFile(filepath.Join("..", "..", "client", "testdata", "json-patch-tests", f))
		if err != nil {
			t.Fatal(err)
		}
		var cases []struct {
			Comment  string          `json:"comment"`
			Doc      json.RawMessage `json:"doc"`
			Patch    json.RawMessage `json:"patch"`
			Expected json.RawMessage `json:"expected"`
			Error    string          `json:"error"`
			Disabled bool            `json:"disabled"`
		}
		if err := json.Unmarshal(b, &cases); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for i, c := range cases {
			if c.Disabled || c.Doc == nil || c.Patch == nil {
				continue
			}
			ran++
			name := f + "#" + strconv.Itoa(i)
			out, err := Apply(c.Doc, c.Patch)
			switch {
			case c.Error != "":
				if err == nil {
					t.Errorf("%s %q: applied (%s), want the error %s", name, c.Comment, out, c.Error)
				}
			case err != nil:
				t.Errorf("%s %q: %v", name, c.Comment, err)
			case c.Expected != nil:
				var got, want any
				if err := json.Unmarshal(out, &got); err != nil {
					t.Fatalf("%s: result %s: %v", name, out, err)
				}
				if err := json.Unmarshal(c.Expected, &want); err != nil {
					t.Fatalf("%s: expected: %v", name, err)
				}
				if !reflect.DeepEqual(got, want) {
					t.Errorf("%s %q: got %s, want %s", name, c.Comment, out, c.Expected)
				}
			}
		}
	}
	if ran < 90 {
		t.Fatalf("ran only %d cases", ran)
	}
}
