package jsonpatch

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

func mustEqualJSON(t *testing.T, got, want []byte) {
	t.Helper()
	g, err := decode(got)
	if err != nil {
		t.Fatalf("result %s: %v", got, err)
	}
	w, err := decode(want)
	if err != nil {
		t.Fatalf("want %s: %v", want, err)
	}
	if !Equal(g, w) {
		t.Fatalf("got %s, want %s", got, want)
	}
}

func TestDiffRoundTrip(t *testing.T) {
	tests := []struct {
		name, a, b, patch string
	}{
		{"equal", `{"a":1}`, `{"a":1}`, `[]`},
		{"replace scalar", `{"a":1}`, `{"a":2}`, `[{"op":"replace","path":"/a","value":2}]`},
		{"add member", `{}`, `{"a":null}`, `[{"op":"add","path":"/a","value":null}]`},
		{"remove member", `{"a":1,"b":2}`, `{"b":2}`, `[{"op":"remove","path":"/a"}]`},
		{"nested", `{"a":{"b":[1,2,3]}}`, `{"a":{"b":[1,5]}}`, `[{"op":"replace","path":"/a/b/1","value":5},{"op":"remove","path":"/a/b/2"}]`},
		{"array grows", `[1]`, `[1,2,3]`, `[{"op":"add","path":"/1","value":2},{"op":"add","path":"/2","value":3}]`},
		{"array shrinks", `[1,2,3]`, `[]`, `[{"op":"remove","path":"/2"},{"op":"remove","path":"/1"},{"op":"remove","path":"/0"}]`},
		{"type change", `{"a":[1]}`, `{"a":{"0":1}}`, `[{"op":"replace","path":"/a","value":{"0":1}}]`},
		{"root scalar", `1`, `"x"`, `[{"op":"replace","path":"","value":"x"}]`},
		{"root object to array", `{}`, `[]`, `[{"op":"replace","path":"","value":[]}]`},
		{"escaped keys", `{"a/b":1,"c~d":1}`, `{"a/b":2,"c~d":3}`, `[{"op":"replace","path":"/a~1b","value":2},{"op":"replace","path":"/c~0d","value":3}]`},
		{"number text", `{"n":1}`, `{"n":1.0}`, `[{"op":"replace","path":"/n","value":1.0}]`},
		{"unicode", `{"s":"Café"}`, `{"s":"Caf\u00e9!"}`, `[{"op":"replace","path":"/s","value":"Café!"}]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Diff([]byte(tt.a), []byte(tt.b))
			if err != nil {
				t.Fatal(err)
			}
			mustEqualJSON(t, p, []byte(tt.patch))
			got, err := Apply([]byte(tt.a), p)
			if err != nil {
				t.Fatalf("apply %s: %v", p, err)
			}
			mustEqualJSON(t, got, []byte(tt.b))
		})
	}
}

func TestDiffErrors(t *testing.T) {
	for _, tt := range []struct{ a, b, want string }{
		{`{`, `{}`, "first document"},
		{`{}`, `[1,]`, "second document"},
		{`{} {}`, `{}`, "data after"},
		{``, `{}`, "first document"},
	} {
		_, err := Diff([]byte(tt.a), []byte(tt.b))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Diff(%q, %q) = %v, want error containing %q", tt.a, tt.b, err, tt.want)
		}
	}
}

// The examples of RFC 6902 appendix A.
func TestApplyRFC(t *testing.T) {
	tests := []struct {
		name, doc, patch, want string
	}{
		{"A.1", `{"foo":"bar"}`, `[{"op":"add","path":"/baz","value":"qux"}]`, `{"baz":"qux","foo":"bar"}`},
		{"A.2", `{"foo":["bar","baz"]}`, `[{"op":"add","path":"/foo/1","value":"qux"}]`, `{"foo":["bar","qux","baz"]}`},
		{"A.3", `{"baz":"qux","foo":"bar"}`, `[{"op":"remove","path":"/baz"}]`, `{"foo":"bar"}`},
		{"A.4", `{"foo":["bar","qux","baz"]}`, `[{"op":"remove","path":"/foo/1"}]`, `{"foo":["bar","baz"]}`},
		{"A.5", `{"baz":"qux","foo":"bar"}`, `[{"op":"replace","path":"/baz","value":"boo"}]`, `{"baz":"boo","foo":"bar"}`},
		{"A.6", `{"foo":{"bar":"baz","waldo":"fred"},"qux":{"corge":"grault"}}`, `[{"op":"move","from":"/foo/waldo","path":"/qux/thud"}]`, `{"foo":{"bar":"baz"},"qux":{"corge":"grault","thud":"fred"}}`},
		{"A.7", `{"foo":["all","grass","cows","eat"]}`, `[{"op":"move","from":"/foo/1","path":"/foo/3"}]`, `{"foo":["all","cows","eat","grass"]}`},
		{"A.8", `{"baz":"qux","foo":["a",2,"c"]}`, `[{"op":"test","path":"/baz","value":"qux"},{"op":"test","path":"/foo/1","value":2}]`, `{"baz":"qux","foo":["a",2,"c"]}`},
		{"A.10", `{"foo":"bar"}`, `[{"op":"add","path":"/child","value":{"grandchild":{}}}]`, `{"foo":"bar","child":{"grandchild":{}}}`},
		{"A.14", `{"/":9,"~1":10}`, `[{"op":"test","path":"/~01","value":10}]`, `{"/":9,"~1":10}`},
		{"A.16", `{"foo":["bar"]}`, `[{"op":"add","path":"/foo/-","value":["abc","def"]}]`, `{"foo":["bar",["abc","def"]]}`},
		{"copy", `{"a":{"b":1}}`, `[{"op":"copy","from":"/a","path":"/c"},{"op":"replace","path":"/c/b","value":2}]`, `{"a":{"b":1},"c":{"b":2}}`},
		{"replace root", `{"a":1}`, `[{"op":"replace","path":"","value":[1]}]`, `[1]`},
		{"move same", `{"a":1}`, `[{"op":"move","from":"/a","path":"/a"}]`, `{"a":1}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Apply([]byte(tt.doc), []byte(tt.patch))
			if err != nil {
				t.Fatal(err)
			}
			mustEqualJSON(t, got, []byte(tt.want))
		})
	}
}

func TestApplyErrors(t *testing.T) {
	tests := []struct {
		name, doc, patch, want string
	}{
		{"bad doc", `{`, `[]`, "document"},
		{"patch not array", `{}`, `{}`, "not an array"},
		{"patch null", `{}`, `null`, "not an array"},
		{"unknown op", `{}`, `[{"op":"frob","path":"/a"}]`, "unknown op"},
		{"missing value", `{}`, `[{"op":"add","path":"/a"}]`, "missing value"},
		{"A.9 test fails", `{"baz":"qux"}`, `[{"op":"test","path":"/baz","value":"bar"}]`, "test operation failed"},
		{"A.12 add to missing parent", `{"foo":"bar"}`, `[{"op":"add","path":"/baz/bat","value":"qux"}]`, "no member"},
		{"remove missing", `{}`, `[{"op":"remove","path":"/a"}]`, "no member"},
		{"replace missing", `{}`, `[{"op":"replace","path":"/a","value":1}]`, "no member"},
		{"index out of range", `[1]`, `[{"op":"add","path":"/5","value":1}]`, "out of range"},
		{"leading zero", `[1,2]`, `[{"op":"remove","path":"/01"}]`, "bad array index"},
		{"dash on remove", `[1]`, `[{"op":"remove","path":"/-"}]`, "bad array index"},
		{"no slash", `{}`, `[{"op":"add","path":"a","value":1}]`, "does not start with /"},
		{"bad escape", `{}`, `[{"op":"add","path":"/a~2","value":1}]`, "bad ~ escape"},
		{"into scalar", `{"a":1}`, `[{"op":"add","path":"/a/b/c","value":1}]`, "inside a scalar"},
		{"move into child", `{"a":{}}`, `[{"op":"move","from":"/a","path":"/a/b"}]`, "children"},
		{"copy missing", `{}`, `[{"op":"copy","from":"/x","path":"/y"}]`, "from"},
		{"bad value", `{}`, `[{"op":"add","path":"/a","value":1}]x`, "not an array"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Apply([]byte(tt.doc), []byte(tt.patch))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want one containing %q", err, tt.want)
			}
		})
	}
	_, err := Apply([]byte(`{"a":1}`), []byte(`[{"op":"test","path":"/a","value":2}]`))
	if !errors.Is(err, ErrTestFailed) {
		t.Fatalf("err = %v, want ErrTestFailed", err)
	}
}

func FuzzDiffApply(f *testing.F) {
	f.Add(`{"a":1,"b":[1,2,{"c":null}]}`, `{"a":2,"b":[1,{"c":true}],"d":"x"}`)
	f.Add(`[]`, `[1,[2],{"~/":3}]`)
	f.Add(`"s"`, `{"":{"":[]}}`)
	f.Add(`{"n":1e3}`, `{"n":1000}`)
	f.Fuzz(func(t *testing.T, a, b string) {
		_, errA := decode([]byte(a))
		vb, errB := decode([]byte(b))
		if errA != nil || errB != nil {
			return
		}
		p, err := Diff([]byte(a), []byte(b))
		if err != nil {
			t.Fatalf("Diff: %v", err)
		}
		got, err := Apply([]byte(a), p)
		if err != nil {
			t.Fatalf("Apply(%s): %v", p, err)
		}
		vg, err := decode(got)
		if err != nil {
			t.Fatal(err)
		}
		if !Equal(vg, vb) {
			t.Fatalf("apply(diff(a,b), a) = %s, want %s (patch %s)", got, b, p)
		}
	})
}

func ExampleDiff() {
	patch, _ := Diff([]byte(`{"total":41,"items":["a"]}`), []byte(`{"total":42,"items":["a","b"]}`))
	fmt.Println(string(patch))
	doc, _ := Apply([]byte(`{"total":41,"items":["a"]}`), patch)
	fmt.Println(string(doc))
	// Output:
	// [{"op":"add","path":"/items/1","value":"b"},{"op":"replace","path":"/total","value":42}]
	// {"items":["a","b"],"total":42}
}
