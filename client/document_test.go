package client

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func update(data string) *Event {
	ev := &Event{Type: EventUpdate, EventID: "1"}
	if data != "" {
		ev.Data = json.RawMessage(data)
	}
	return ev
}

func wantDoc(t *testing.T, d *Document, want string) {
	t.Helper()
	if !d.Valid() {
		t.Fatalf("document unset, want %s", want)
	}
	var got any
	if err := json.Unmarshal(d.Bytes(), &got); err != nil {
		t.Fatalf("document %s: %v", d.Bytes(), err)
	}
	if gb, _ := json.Marshal(got); string(gb) != mustCompact(t, want) {
		t.Fatalf("document %s, want %s", d.Bytes(), want)
	}
}

func mustCompact(t *testing.T, s string) string {
	t.Helper()
	var v any
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(v)
	return string(b)
}

func TestDocumentFullThenPatch(t *testing.T) {
	d := NewDocument()
	if d.Valid() || d.Bytes() != nil {
		t.Fatal("a new document is set")
	}
	if changed, err := d.Apply(update(`{"a":1,"b":[1,2]}`)); !changed || err != nil {
		t.Fatalf("full: %v %v", changed, err)
	}
	wantDoc(t, d, `{"a":1,"b":[1,2]}`)
	changed, err := d.Apply(update(`[{"op":"replace","path":"/a","value":2},{"op":"add","path":"/b/-","value":3}]`))
	if !changed || err != nil {
		t.Fatalf("patch: %v %v", changed, err)
	}
	wantDoc(t, d, `{"a":2,"b":[1,2,3]}`)
	// An empty patch applies and changes nothing, but counts as applied.
	if changed, err := d.Apply(update(`[]`)); !changed || err != nil {
		t.Fatalf("empty patch: %v %v", changed, err)
	}
	wantDoc(t, d, `{"a":2,"b":[1,2,3]}`)
	v, err := d.Value()
	if err != nil {
		t.Fatal(err)
	}
	if m, ok := v.(map[string]any); !ok || m["a"] != json.Number("2") {
		t.Fatalf("Value = %#v", v)
	}
}

func TestDocumentFallbackReplaces(t *testing.T) {
	d := NewDocument()
	if _, err := d.Apply(update(`{"a":1}`)); err != nil {
		t.Fatal(err)
	}
	// An array with payload_mode_fallback set is a full document (an
	// upstream whose document is an array), not a patch.
	ev := update(`[1,2,3]`)
	ev.Meta.PayloadModeFallback = json.RawMessage(`"FULL_DATA"`)
	if changed, err := d.Apply(ev); !changed || err != nil {
		t.Fatalf("fallback: %v %v", changed, err)
	}
	wantDoc(t, d, `[1,2,3]`)
	// payload_mode_fallback null is no fallback: the array is a patch.
	ev = update(`[{"op":"add","path":"/-","value":4}]`)
	ev.Meta.PayloadModeFallback = json.RawMessage(`null`)
	if _, err := d.Apply(ev); err != nil {
		t.Fatal(err)
	}
	wantDoc(t, d, `[1,2,3,4]`)
	// Any data that is not an array replaces the document.
	for _, full := range []string{`"text"`, `42`, `true`, ` {"x":{}}`} {
		if changed, err := d.Apply(update(full)); !changed || err != nil {
			t.Fatalf("%s: %v %v", full, changed, err)
		}
		wantDoc(t, d, full)
	}
	// No data at all is a null document.
	if changed, err := d.Apply(update("")); !changed || err != nil {
		t.Fatalf("no data: %v %v", changed, err)
	}
	wantDoc(t, d, `null`)
}

func TestDocumentPatchWithoutDocument(t *testing.T) {
	d := NewDocument()
	changed, err := d.Apply(update(`[{"op":"add","path":"/a","value":1}]`))
	if changed || !errors.Is(err, ErrPatchFailed) {
		t.Fatalf("got %v %v, want ErrPatchFailed", changed, err)
	}
	if d.Valid() {
		t.Fatal("document set by a patch without a document")
	}
	if _, err := d.Value(); !errors.Is(err, ErrPatchFailed) {
		t.Fatalf("Value of an unset document: %v", err)
	}
}

func TestDocumentFailedPatchUnsetsUntilFull(t *testing.T) {
	for _, patch := range []string{
		`[{"op":"replace","path":"/missing","value":1}]`,
		`[{"op":"test","path":"/a","value":2}]`,
		`[{"op":"remove","path":"/a/b"}]`,
		`[{"op":"bogus","path":"/a"}]`,
		`[{"op":"add","path":"/b/-1","value":0}]`,
		`[{"op":"add","path":"/x"}]`,
		`[1,2]`,
		`["not an operation"]`,
	} {
		d := NewDocument()
		if _, err := d.Apply(update(`{"a":1,"b":[1]}`)); err != nil {
			t.Fatal(err)
		}
		changed, err := d.Apply(update(patch))
		if changed || !errors.Is(err, ErrPatchFailed) {
			t.Fatalf("%s: got %v %v, want ErrPatchFailed", patch, changed, err)
		}
		if !strings.Contains(err.Error(), `"1"`) {
			t.Errorf("%s: error %q does not name the event", patch, err)
		}
		if d.Valid() || d.Bytes() != nil {
			t.Fatalf("%s: document still set after a failed patch: %s", patch, d.Bytes())
		}
		// A good patch does not bring it back: only a full document does.
		if _, err := d.Apply(update(`[]`)); !errors.Is(err, ErrPatchFailed) || d.Valid() {
			t.Fatalf("%s: a patch after the failure: %v, valid %v", patch, err, d.Valid())
		}
		if changed, err := d.Apply(update(`{"c":3}`)); !changed || err != nil {
			t.Fatalf("%s: resync: %v %v", patch, changed, err)
		}
		wantDoc(t, d, `{"c":3}`)
	}
}

func TestDocumentErrorEventKeepsDocument(t *testing.T) {
	d := NewDocument()
	if _, err := d.Apply(update(`{"a":1}`)); err != nil {
		t.Fatal(err)
	}
	ev := &Event{Type: EventError, Error: json.RawMessage(`{"message":"upstream 500"}`)}
	if changed, err := d.Apply(ev); changed || err != nil {
		t.Fatalf("error event: %v %v", changed, err)
	}
	wantDoc(t, d, `{"a":1}`)
	if _, err := d.Apply(nil); err == nil {
		t.Fatal("nil event accepted")
	}
}

func TestDocumentSizeLimit(t *testing.T) {
	d := NewDocument(WithMaxDocumentBytes(64))
	big := `{"a":"` + strings.Repeat("x", 64) + `"}`
	if changed, err := d.Apply(update(big)); changed || err == nil || errors.Is(err, ErrPatchFailed) {
		t.Fatalf("oversized full document: %v %v", changed, err)
	}
	if d.Valid() {
		t.Fatal("oversized document kept")
	}
	if _, err := d.Apply(update(`{"a":"0123456789"}`)); err != nil {
		t.Fatal(err)
	}
	// Copies that double the document until it is over the limit.
	patch := `[{"op":"copy","from":"/a","path":"/b"},{"op":"copy","from":"/a","path":"/c"},{"op":"copy","from":"/a","path":"/d"},{"op":"copy","from":"/a","path":"/e"}]`
	if changed, err := d.Apply(update(patch)); changed || !errors.Is(err, ErrPatchFailed) {
		t.Fatalf("patch over the limit: %v %v", changed, err)
	}
	if d.Valid() {
		t.Fatal("document over the limit kept")
	}
	if NewDocument().maxBytes != DefaultMaxEventBytes || NewDocument(WithMaxDocumentBytes(0)).maxBytes != DefaultMaxEventBytes {
		t.Fatal("default limit is not DefaultMaxEventBytes")
	}
}

func TestDocumentKeepsBytesAndCopies(t *testing.T) {
	d := NewDocument()
	data := []byte(`{"a":1}`)
	if _, err := d.Apply(update(string(data))); err != nil {
		t.Fatal(err)
	}
	ev := &Event{Type: EventUpdate, Data: data}
	if _, err := d.Apply(ev); err != nil {
		t.Fatal(err)
	}
	data[2] = 'z' // the event's buffer is reused by a decoder
	wantDoc(t, d, `{"a":1}`)
	before := d.Bytes()
	if _, err := d.Apply(update(`[{"op":"replace","path":"/a","value":"<&>"}]`)); err != nil {
		t.Fatal(err)
	}
	if string(before) != `{"a":1}` {
		t.Fatalf("an earlier Bytes changed: %s", before)
	}
	if string(d.Bytes()) != `{"a":"<&>"}` {
		t.Fatalf("patched document %s, want the characters unescaped", d.Bytes())
	}
}

func TestDocumentRestore(t *testing.T) {
	d := NewDocument(WithMaxDocumentBytes(16))
	if err := d.Restore([]byte(`{"a":[1,2]}`)); err != nil {
		t.Fatal(err)
	}
	wantDoc(t, d, `{"a":[1,2]}`)
	for _, bad := range []string{`{"a":`, `{"a":"0123456789abcdef"}`, `1 2`} {
		if err := d.Restore([]byte(bad)); err == nil || d.Valid() {
			t.Fatalf("Restore(%s): %v, valid %v", bad, err, d.Valid())
		}
	}
	if err := d.Restore([]byte(`[]`)); err != nil {
		t.Fatal(err)
	}
	if err := d.Restore(nil); err != nil || d.Valid() {
		t.Fatalf("Restore(nil): %v, valid %v", err, d.Valid())
	}
	d.Restore([]byte(`1`))
	d.Reset()
	if d.Valid() {
		t.Fatal("Reset kept the document")
	}
}

// FuzzDocumentApply: no input panics; a failed patch always leaves the
// document unset; a set document is always valid JSON within the limit.
func FuzzDocumentApply(f *testing.F) {
	f.Add([]byte(`{"a":[1,2],"b":{"c":"d"}}`), []byte(`[{"op":"move","from":"/a/0","path":"/b/e"}]`), false)
	f.Add([]byte(`[1]`), []byte(`[{"op":"copy","from":"","path":"/-"}]`), false)
	f.Add([]byte(`{}`), []byte(`[{"op":"test","path":"","value":{}}]`), true)
	f.Add([]byte(`{"~":{"/":0}}`), []byte(`[{"op":"remove","path":"/~0/~1"}]`), false)
	f.Fuzz(func(t *testing.T, doc, patch []byte, fallback bool) {
		d := NewDocument(WithMaxDocumentBytes(1 << 12))
		_, errFull := d.Apply(&Event{Type: EventUpdate, Data: doc})
		if errFull != nil && d.Valid() {
			t.Fatalf("document set after a refused full document: %v", errFull)
		}
		ev := &Event{Type: EventUpdate, Data: patch}
		if fallback {
			ev.Meta.PayloadModeFallback = json.RawMessage(`"FULL_DATA"`)
		}
		changed, err := d.Apply(ev)
		if errors.Is(err, ErrPatchFailed) && d.Valid() {
			t.Fatalf("document set after a failed patch: %s", d.Bytes())
		}
		if err != nil && changed {
			t.Fatal("changed with an error")
		}
		if d.Valid() {
			if !json.Valid(d.Bytes()) || len(d.Bytes()) > 1<<12 {
				t.Fatalf("document %q not valid JSON within the limit", d.Bytes())
			}
			if _, err := d.Value(); err != nil {
				t.Fatal(err)
			}
		}
	})
}
