package main

import (
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// configKeys lists every key of Config as the README writes it: dotted koanf
// tags, "[]" for list elements (streams[].name).
func configKeys(t reflect.Type, prefix string) []string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	var out []string
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("koanf")
		if tag == "" {
			continue
		}
		key := tag
		if prefix != "" {
			key = prefix + "." + tag
		}
		ft := f.Type
		for ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		switch {
		case ft.Kind() == reflect.Struct:
			out = append(out, configKeys(ft, key)...)
		case ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct:
			out = append(out, configKeys(ft.Elem(), key+"[]")...)
		default:
			out = append(out, key)
		}
	}
	return out
}

// TestREADMEConfigurationReference keeps the README's configuration reference
// and the configuration struct in step: every key documented, nothing extra.
func TestREADMEConfigurationReference(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(repoRoot(t), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	start := strings.Index(readme, "\n## Configuration reference")
	if start < 0 {
		t.Fatal(`README has no "## Configuration reference" section`)
	}
	section := readme[start+1:]
	if end := strings.Index(section, "\n## "); end >= 0 {
		section = section[:end]
	}
	documented := map[string]bool{}
	for _, m := range regexp.MustCompile("(?m)^\\| `([a-z_\\[\\].]+)`").FindAllStringSubmatch(section, -1) {
		documented[m[1]] = true
	}
	want := configKeys(reflect.TypeFor[Config](), "")
	sort.Strings(want)
	for _, k := range want {
		if !documented[k] {
			t.Errorf("README configuration reference lacks %s", k)
		}
		delete(documented, k)
	}
	for k := range documented {
		t.Errorf("README documents %s, which the configuration does not have", k)
	}
	if !strings.HasPrefix(readme, "# restless-ingest\n\n```sh\ngo run ./cmd/ingest demo") || !strings.Contains(readme[:400], "go test -race ./...") {
		t.Error("README must start with the title and the two commands")
	}
}
