package emulator

import (
	"strings"
	"testing"
)

func TestJQ(t *testing.T) {
	doc := []byte(`{"a":{"b":[1,{"c":"x"}]},"k y":2}`)
	tests := []struct{ filter, want, err string }{
		{".", `{"a":{"b":[1,{"c":"x"}]},"k y":2}`, ""},
		{"", `{"a":{"b":[1,{"c":"x"}]},"k y":2}`, ""},
		{".a.b[1].c", `"x"`, ""},
		{".a.b[-2]", `1`, ""},
		{".a.b[9]", `null`, ""},
		{".missing.deeper", `null`, ""},
		{`.["k y"]`, `2`, ""},
		{`.a["b"][0]`, `1`, ""},
		{".a.b.c", "", "cannot index array"},
		{".a[0]", "", "cannot index object"},
		{".a.b[0].x", "", "cannot index"},
	}
	for _, tt := range tests {
		steps, err := parseJQ(tt.filter)
		if err != nil {
			t.Fatalf("parse %q: %v", tt.filter, err)
		}
		got, err := applyJQ(steps, doc)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%q: err %v, want %q", tt.filter, err, tt.err)
			}
			continue
		}
		if err != nil || string(got) != tt.want {
			t.Errorf("%q = %s, %v; want %s", tt.filter, got, err, tt.want)
		}
	}
	for _, bad := range []string{"a", ".a | .b", ".[", `.["x]`, ".a[x]", "..", ".1a", "map(.x)"} {
		if _, err := parseJQ(bad); err == nil {
			t.Errorf("parseJQ(%q) accepted", bad)
		}
	}
}

func FuzzJQ(f *testing.F) {
	f.Add(".a.b[0]", `{"a":{"b":[1]}}`)
	f.Add(`.["x"][-1]`, `{"x":[1,2]}`)
	f.Fuzz(func(t *testing.T, filter, doc string) {
		steps, err := parseJQ(filter)
		if err != nil {
			return
		}
		_, _ = applyJQ(steps, []byte(doc)) // must not panic
	})
}
