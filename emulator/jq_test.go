package emulator

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestJQ(t *testing.T) {
	doc := `{"a":{"b":[1,{"c":"x"}]},"k y":2,"orders":[{"id":1,"status":"open","total":12.5},{"id":2,"status":"paid","total":7},` +
		`{"id":3,"status":"open","total":1}],"big":12345678901234567890}`
	tests := []struct{ name, filter, want string }{
		{"identity", ".", ""},
		{"path", ".a.b[1].c", `"x"`},
		{"negative index", ".a.b[-2]", `1`},
		{"missing index", ".a.b[9]", `null`},
		{"missing member", ".missing.deeper", `null`},
		{"quoted key", `.["k y"]`, `2`},
		{"select", `[.orders[] | select(.status == "open") | .id]`, `[1,3]`},
		{"map", `.orders | map(.total)`, `[12.5,7,1]`},
		{"paths", `[paths(type == "number")] | length`, `9`},
		{"interpolation", `"order \(.orders[0].id) is \(.orders[0].status)"`, `"order 1 is open"`},
		{"object construction", `{count: (.orders | length), first: .orders[0].id}`, `{"count":3,"first":1}`},
		{"reduce", `reduce .orders[] as $o (0; . + $o.total)`, `20.5`},
		{"big integer kept", `.big`, `12345678901234567890`},
		{"environment is empty", `$ENV | length`, `0`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, err := compileJQ(tt.filter)
			if err != nil {
				t.Fatalf("compile %q: %v", tt.filter, err)
			}
			got, ok, err := runJQ(context.Background(), code, []byte(doc), time.Minute, 1<<20)
			if err != nil || !ok {
				t.Fatalf("%q = %s, %v, %v", tt.filter, got, ok, err)
			}
			want := tt.want
			if want == "" {
				c, _ := canonical([]byte(doc))
				want = string(c)
			}
			if c, err := canonical(got); err != nil || string(c) != want {
				t.Errorf("%q = %s; want %s", tt.filter, got, want)
			}
		})
	}
}

func TestJQNoFilter(t *testing.T) {
	for _, f := range []string{"", "  \n"} {
		if code, err := compileJQ(f); code != nil || err != nil {
			t.Errorf("compileJQ(%q) = %v, %v; want no program", f, code, err)
		}
	}
}

func TestJQBadFilters(t *testing.T) {
	for _, bad := range []string{
		".a |", ".[", `.["x]`, "map(", "undefined_function", "$undefined", "..a", `import "x" as x; .`,
		`include "x"; .`, "input_line_number | debug", ".a ]",
	} {
		if _, err := compileJQ(bad); err == nil {
			t.Errorf("compileJQ(%q) accepted", bad)
		}
	}
}

func TestJQRunErrors(t *testing.T) {
	doc := []byte(`{"a":{"b":[1,2]},"s":"x"}`)
	tests := []struct {
		name, filter string
		timeout      time.Duration
		max          int64
		want         string // in the error; "" = no result and no error
	}{
		{"index array with name", ".a.b.c", time.Minute, 1 << 20, "expected an object"},
		{"index object with number", ".a[0]", time.Minute, 1 << 20, "expected an array"},
		{"error function", `error("boom")`, time.Minute, 1 << 20, "boom"},
		{"several results", ".a.b[]", time.Minute, 1 << 20, "more than one result"},
		{"error after a result", `1, error("late")`, time.Minute, 1 << 20, "late"},
		{"endless loop", "def f: f; f", 10 * time.Millisecond, 1 << 20, "ran longer than"},
		{"endless generator", "[repeat(.)]", 10 * time.Millisecond, 1 << 20, "ran longer than"},
		{"result too large", `[range(1000)]`, time.Minute, 100, "larger than 100 bytes"},
		{"halt", "halt", time.Minute, 1 << 20, "halted"},
		{"halt_error", `halt_error`, time.Minute, 1 << 20, "jq:"},
		{"no result", "empty", time.Minute, 1 << 20, ""},
		{"select gives nothing", `select(.s == "y")`, time.Minute, 1 << 20, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, err := compileJQ(tt.filter)
			if err != nil {
				t.Fatalf("compile %q: %v", tt.filter, err)
			}
			out, ok, err := runJQ(context.Background(), code, doc, tt.timeout, tt.max)
			if ok || out != nil {
				t.Fatalf("%q gave %s", tt.filter, out)
			}
			if tt.want == "" {
				if err != nil {
					t.Fatalf("%q: %v, want no result and no error", tt.filter, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("%q: error %v, want one containing %q", tt.filter, err, tt.want)
			}
		})
	}
}

func TestJQStopsWithItsContext(t *testing.T) {
	code, err := compileJQ("def f: f; f")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, ok, err := runJQ(ctx, code, []byte(`{}`), time.Hour, 1<<20); ok || err == nil {
		t.Fatalf("a cancelled run gave ok %v, error %v", ok, err)
	}
}

func FuzzJQ(f *testing.F) {
	f.Add(".a.b[0]", `{"a":{"b":[1]}}`)
	f.Add(`.["x"][-1]`, `{"x":[1,2]}`)
	f.Add(`[.[] | select(. > 1)] | map(. * 2)`, `[1,2,3]`)
	f.Add(`"\(.a)-\(.b)"`, `{"a":1,"b":"x"}`)
	f.Fuzz(func(t *testing.T, filter, doc string) {
		code, err := compileJQ(filter)
		if err != nil || code == nil {
			return
		}
		out, ok, err := runJQ(context.Background(), code, []byte(doc), 50*time.Millisecond, 1<<16)
		if err == nil && ok && len(out) > 1<<16 {
			t.Fatalf("%q gave %d bytes, over the bound", filter, len(out))
		}
	})
}

// BenchmarkJQ runs a select/map filter on a 100-order upstream document, as
// a poller does on each poll.
func BenchmarkJQ(b *testing.B) {
	var doc strings.Builder
	doc.WriteString(`{"orders":[`)
	for i := range 100 {
		if i > 0 {
			doc.WriteByte(',')
		}
		fmt.Fprintf(&doc, `{"id":%d,"status":%q,"total":%d.5,"lines":[{"sku":"A-%d","qty":2}]}`, i, []string{"open", "paid"}[i%2], i, i)
	}
	doc.WriteString(`]}`)
	in := []byte(doc.String())
	code, err := compileJQ(`.orders | map(select(.status == "open") | {id, total}) | {open: length, items: .}`)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		if _, ok, err := runJQ(context.Background(), code, in, time.Minute, 1<<20); err != nil || !ok {
			b.Fatal(ok, err)
		}
	}
}
