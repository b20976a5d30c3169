package client

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"testing"
)

// conformanceCase is one record of the json-patch-tests suite
// (testdata/json-patch-tests, from github.com/json-patch/json-patch-tests at
// commit 2a928f9, Apache-2.0; see its README.md and LICENSE there).
type conformanceCase struct {
	Comment  string          `json:"comment"`
	Doc      json.RawMessage `json:"doc"`
	Patch    json.RawMessage `json:"patch"`
	Expected json.RawMessage `json:"expected"`
	Error    string          `json:"error"`
	Disabled bool            `json:"disabled"`
}

// knownConformanceFailures are the suite's cases the patch library
// (github.com/evanphx/json-patch/v5, with the options of patchOptions) gets
// wrong, by file and index, with what it does. The test fails when one of
// them starts passing, so the list stays true. None of them can make a
// Document show a wrong document from a patch the emulator or a conforming
// server writes: the first two refuse a valid patch (the document is unset
// until the next full one), the last two accept an index no writer emits.
var knownConformanceFailures = map[string]string{
	"tests.json#57": `a "test" of the path "/" (the member named "") fails though the value matches`,
	"tests.json#58": `a "test" of the path "/" (the member named "") fails though the value matches`,
	"tests.json#87": `an array index with a leading zero ("00") is read as 0 instead of refused`,
	"tests.json#88": `an array index with a leading zero ("01") is read as 1 instead of refused`,
}

func loadConformance(t *testing.T, name string) []conformanceCase {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "json-patch-tests", name))
	if err != nil {
		t.Fatal(err)
	}
	var cases []conformanceCase
	if err := json.Unmarshal(b, &cases); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if len(cases) < 10 {
		t.Fatalf("%s: only %d cases", name, len(cases))
	}
	return cases
}

// conformanceFailure runs one case through apply and says what went wrong,
// "" when the result is what the suite expects. A case with neither
// "expected" nor "error" must apply without an error.
func conformanceFailure(c conformanceCase, apply func(doc, patch []byte) ([]byte, error)) string {
	out, err := apply(c.Doc, c.Patch)
	switch {
	case c.Error != "":
		if err == nil {
			return "applied (" + string(out) + "), want the error " + c.Error
		}
	case err != nil:
		return "error " + err.Error()
	case c.Expected != nil:
		var got, want any
		if json.Unmarshal(out, &got) != nil {
			return "result is not JSON: " + string(out)
		}
		if err := json.Unmarshal(c.Expected, &want); err != nil {
			return "expected is not JSON"
		}
		if !reflect.DeepEqual(got, want) {
			return "got " + string(out) + ", want " + string(c.Expected)
		}
	}
	return ""
}

// TestPatchConformance runs the community JSON Patch suite (tests.json and
// spec_tests.json) through the applier Document uses.
func TestPatchConformance(t *testing.T) {
	opts := patchOptions(DefaultMaxEventBytes)
	apply := func(doc, patch []byte) ([]byte, error) { return applyPatch(doc, patch, opts) }
	ran := 0
	for _, file := range []string{"tests.json", "spec_tests.json"} {
		for i, c := range loadConformance(t, file) {
			if c.Disabled || c.Doc == nil || c.Patch == nil {
				continue
			}
			ran++
			key := file + "#" + strconv.Itoa(i)
			failure := conformanceFailure(c, apply)
			known, isKnown := knownConformanceFailures[key]
			switch {
			case failure != "" && !isKnown:
				t.Errorf("%s %q: %s", key, c.Comment, failure)
			case failure == "" && isKnown:
				t.Errorf("%s %q: passes now; remove it from knownConformanceFailures (%s)", key, c.Comment, known)
			}
		}
	}
	if ran < 90 {
		t.Fatalf("ran only %d cases", ran)
	}
	t.Logf("%d cases, %d known failures", ran, len(knownConformanceFailures))
}
