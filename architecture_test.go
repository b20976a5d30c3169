package ingest_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/restless-stream/ingest"

// importRules is ARCHITECTURE.md's "who may import whom": for each package
// (by path inside the module, longest prefix first), the packages of this
// module it may import directly. Packages not listed (cmd/ingest, bench,
// reliability) wire everything together and may import anything.
var importRules = []struct {
	pkg     string // "" is the root package; "x/" covers x and everything below
	allowed []string
}{
	{"", nil},
	{"client/", []string{"client/"}},
	{"checkpoint", []string{""}},
	{"cluster", []string{""}},
	{"sink/", []string{""}},
	{"internal/", []string{"", "client", "internal/"}},
	{"source/", []string{"", "client", "internal/", "source/"}},
	{"pipeline/internal/", nil},
	{"pipeline", []string{"", "client", "checkpoint", "internal/", "pipeline/internal/"}},
	{"emulator/", []string{"client", "emulator/"}},
}

// thirdParty says which packages may import a module from outside the
// standard library at all, for the modules whose place is fixed.
var thirdParty = []struct {
	prefix string   // an import path prefix outside this module
	only   []string // the only packages of this module that may import it
}{
	{"github.com/knadh/koanf", []string{"cmd/"}},
	{"github.com/twmb/franz-go", []string{"bench/", "cluster"}},
	{"github.com/prometheus/", []string{"cmd/"}},
	// The SDK owns the WebSocket connection; the daemon's sources are
	// adapters over its subscriptions and never dial themselves.
	{"github.com/coder/websocket", []string{"client/", "emulator/"}},
}

// clientThirdParty are the modules outside the standard library that
// package client (and its packages) may import: the WebSocket connection and
// the RFC 6902 patch applier of client.Document.
var clientThirdParty = []string{"github.com/coder/websocket", "github.com/evanphx/json-patch/v5"}

func clientMayImport(imp string) bool {
	for _, m := range clientThirdParty {
		if imp == m || strings.HasPrefix(imp, m+"/") {
			return true
		}
	}
	return false
}

type listedPackage struct {
	ImportPath string
	Imports    []string
}

// within reports whether rel (a path inside the module, "" for the root) is
// matched by rule: "x/" matches x and everything below it, anything else only
// itself.
func within(rel, rule string) bool {
	if d, ok := strings.CutSuffix(rule, "/"); ok {
		return rel == d || strings.HasPrefix(rel, rule)
	}
	return rel == rule
}

func relative(path string) (string, bool) {
	if path == module {
		return "", true
	}
	rel, ok := strings.CutPrefix(path, module+"/")
	return rel, ok
}

// TestImportRules keeps ARCHITECTURE.md's import rules true: the shared
// vocabulary and the SDK depend on nothing else of ours (the SDK on nothing
// outside the standard library but coder/websocket), a sink knows only
// records, sources are adapters over the SDK's subscriptions that never dial
// themselves, sources and the pipeline never import adapters, and only
// cmd/ingest wires adapters together and reads configuration.
func TestImportRules(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list over the module")
	}
	out, err := exec.Command("go", "list", "-json", module+"/...").Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("go list: %v\n%s", err, ee.Stderr)
		}
		t.Fatalf("go list: %v", err)
	}
	dec := json.NewDecoder(bytes.NewReader(out))
	checked := 0
	for {
		var p listedPackage
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		rel, _ := relative(p.ImportPath)
		checked++
		for _, imp := range p.Imports {
			if irel, ours := relative(imp); ours {
				checkOwnImport(t, rel, irel)
				continue
			}
			if first, _, _ := strings.Cut(imp, "/"); strings.Contains(first, ".") {
				switch {
				case rel == "":
					t.Errorf("%q imports %s: it must use the standard library only", p.ImportPath, imp)
				case within(rel, "client/") && !clientMayImport(imp):
					t.Errorf("%q imports %s: the SDK may import only the standard library and %v", p.ImportPath, imp, clientThirdParty)
				}
			}
			for _, tp := range thirdParty {
				if !strings.HasPrefix(imp, tp.prefix) {
					continue
				}
				ok := false
				for _, o := range tp.only {
					ok = ok || within(rel, o)
				}
				if !ok {
					t.Errorf("%q imports %s, which only %v may import", p.ImportPath, imp, tp.only)
				}
			}
		}
	}
	if checked < 10 {
		t.Fatalf("go list reported only %d packages", checked)
	}
}

func checkOwnImport(t *testing.T, rel, irel string) {
	t.Helper()
	for _, r := range importRules {
		if !within(rel, r.pkg) {
			continue
		}
		for _, a := range r.allowed {
			if within(irel, a) {
				return
			}
		}
		t.Errorf("%s/%s imports %s/%s: %q may import only %q", module, rel, module, irel, r.pkg, r.allowed)
		return
	}
}
