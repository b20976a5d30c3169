package checkpoint

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// documentConformance checks the DocumentStore contract on s: a document
// saved with a cursor loads with it; a save without one clears it; a
// checkpoint without one loads with none; bad documents are refused.
func documentConformance(t *testing.T, s DocumentStore, stream string) {
	t.Helper()
	ctx := t.Context()
	if _, doc, ok, err := s.LoadDocument(ctx, stream); err != nil || ok || doc != nil {
		t.Fatalf("LoadDocument of a new stream = %s, %v, %v", doc, ok, err)
	}
	if err := s.Save(ctx, stream, "1"); err != nil {
		t.Fatal(err)
	}
	if c, doc, ok, err := s.LoadDocument(ctx, stream); err != nil || !ok || c != "1" || doc != nil {
		t.Fatalf("LoadDocument after Save = %q, %s, %v, %v", c, doc, ok, err)
	}
	want := `{"a":[1,2,{"b":"<&>"}]}`
	if err := s.SaveDocument(ctx, stream, "2", []byte(want)); err != nil {
		t.Fatal(err)
	}
	if c, doc, ok, err := s.LoadDocument(ctx, stream); err != nil || !ok || c != "2" || string(doc) != want {
		t.Fatalf("LoadDocument = %q, %s, %v, %v; want 2, %s", c, doc, ok, err, want)
	}
	if c, ok, err := s.Load(ctx, stream); err != nil || !ok || c != "2" {
		t.Fatalf("Load of a checkpoint with a document = %q, %v, %v", c, ok, err)
	}
	// An unset document is saved as none.
	if err := s.SaveDocument(ctx, stream, "3", nil); err != nil {
		t.Fatal(err)
	}
	if c, doc, ok, err := s.LoadDocument(ctx, stream); err != nil || !ok || c != "3" || doc != nil {
		t.Fatalf("LoadDocument after an unset document = %q, %s, %v, %v", c, doc, ok, err)
	}
	if err := s.SaveDocument(ctx, stream, "4", []byte(`[1,2,3]`)); err != nil {
		t.Fatal(err)
	}
	if err := s.Save(ctx, stream, "5"); err != nil {
		t.Fatal(err)
	}
	if c, doc, _, err := s.LoadDocument(ctx, stream); err != nil || c != "5" || doc != nil {
		t.Fatalf("LoadDocument after a Save without a document = %q, %s, %v", c, doc, err)
	}
	for _, bad := range []string{`{"a":`, `not json`} {
		if err := s.SaveDocument(ctx, stream, "6", []byte(bad)); err == nil {
			t.Errorf("SaveDocument(%s) accepted", bad)
		}
	}
	if err := s.SaveDocument(ctx, stream, "", []byte(`{}`)); err == nil {
		t.Error("SaveDocument with an empty cursor accepted")
	}
	if c, _, _, _ := s.LoadDocument(ctx, stream); c != "5" {
		t.Fatalf("a refused save changed the checkpoint to %q", c)
	}
}

func TestDocumentMemory(t *testing.T) {
	documentConformance(t, NewMemory(), "s")
}

func TestDocumentFile(t *testing.T) {
	dir := t.TempDir()
	s, err := NewFile(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	documentConformance(t, s, "s")

	// A document survives the store: a new one (a restart) loads it.
	if err := s.SaveDocument(t.Context(), "r", "9", []byte(`{"x":1}`)); err != nil {
		t.Fatal(err)
	}
	s2, err := NewFile(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if c, doc, ok, err := s2.LoadDocument(t.Context(), "r"); err != nil || !ok || c != "9" || string(doc) != `{"x":1}` {
		t.Fatalf("after a restart: %q, %s, %v, %v", c, doc, ok, err)
	}
	// A damaged version 3 file is corrupt, never "no checkpoint".
	path := filepath.Join(dir, "r"+fileSuffix)
	good, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(good), "restless-checkpoint 3 1 7 ") {
		t.Fatalf("file %q is not version 3", good)
	}
	for name, b := range map[string][]byte{
		"torn":      good[:len(good)-3],
		"bit flip":  []byte(strings.Replace(string(good), `"x"`, `"y"`, 1)),
		"long":      append(append([]byte(nil), good...), '\n'),
		"not json":  encodeV3("9", []byte(`{"x":`)),
		"bad count": []byte(strings.Replace(string(good), " 1 7 ", " 1 99999999999 ", 1)),
	} {
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		if _, _, _, err := s2.LoadDocument(t.Context(), "r"); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: LoadDocument = %v, want ErrCorrupt", name, err)
		}
		if _, _, err := s2.Load(t.Context(), "r"); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: Load = %v, want ErrCorrupt", name, err)
		}
	}
	// Files of the earlier versions load with no document.
	for _, b := range [][]byte{encodeFile("77"), slotFile(t2slot{seq: 1, cursor: "78"}, t2slot{})} {
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		if c, doc, ok, err := s2.LoadDocument(t.Context(), "r"); err != nil || !ok || doc != nil || (c != "77" && c != "78") {
			t.Errorf("older file: %q, %s, %v, %v", c, doc, ok, err)
		}
	}
}

func TestDocumentClaims(t *testing.T) {
	m := NewMemory()
	c1, err := m.Claim(t.Context(), "s", "a")
	if err != nil {
		t.Fatal(err)
	}
	documentConformance(t, c1, "s")
	if err := c1.SaveDocument(t.Context(), "s", "10", []byte(`{"v":10}`)); err != nil {
		t.Fatal(err)
	}
	// The next owner's claim starts with the document saved with the cursor.
	f := NewFenced()
	c2, err := m.Claim(t.Context(), "s", "b")
	if err != nil {
		t.Fatal(err)
	}
	f.Add(c2)
	if c, doc, ok, err := f.LoadDocument(t.Context(), "s"); err != nil || !ok || c != "10" || string(doc) != `{"v":10}` {
		t.Fatalf("handed over: %q, %s, %v, %v", c, doc, ok, err)
	}
	if err := c1.SaveDocument(t.Context(), "s", "11", []byte(`{"v":11}`)); !errors.Is(err, ErrFenced) {
		t.Fatalf("a fenced owner's save: %v", err)
	}
	if err := f.SaveDocument(t.Context(), "s", "12", []byte(`{"v":12}`)); err != nil {
		t.Fatal(err)
	}
	if c, doc, _, _ := m.LoadDocument(t.Context(), "s"); c != "12" || string(doc) != `{"v":12}` {
		t.Fatalf("store holds %q, %s", c, doc)
	}
}

func TestDocumentNATSKV(t *testing.T) {
	js := sharedJetStream(t)
	bucket := fmt.Sprintf("ckpt_doc_test_%d", time.Now().UnixNano())
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = js.DeleteKeyValue(ctx, bucket)
	})
	s, err := NewNATSKV(t.Context(), js, bucket)
	if err != nil {
		t.Fatal(err)
	}
	documentConformance(t, s, "plain")
	c, err := s.Claim(t.Context(), "plain", "m1")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.SaveDocument(t.Context(), "plain", "20", []byte(`{"v":20}`)); err != nil {
		t.Fatal(err)
	}
	c2, err := s.Claim(t.Context(), "plain", "m2")
	if err != nil {
		t.Fatal(err)
	}
	if cur, doc, ok, err := c2.LoadDocument(t.Context(), "plain"); err != nil || !ok || cur != "20" || string(doc) != `{"v":20}` {
		t.Fatalf("claim after a handover: %q, %s, %v, %v", cur, doc, ok, err)
	}
	if err := c.SaveDocument(t.Context(), "plain", "21", []byte(`{}`)); !errors.Is(err, ErrFenced) {
		t.Fatalf("a fenced owner's save: %v", err)
	}
}

func TestDocumentKafka(t *testing.T) {
	client := newKfake(t)
	documentConformance(t, openKafka(t, client, "docs"), "s")
	k := openKafka(t, client, "docs2")
	c1, err := k.Claim(t.Context(), "h", "m1")
	if err != nil {
		t.Fatal(err)
	}
	if err := c1.SaveDocument(t.Context(), "h", "30", []byte(`{"v":30}`)); err != nil {
		t.Fatal(err)
	}
	// Another replica's store claims the stream and gets the document.
	c2, err := openKafka(t, client, "docs2").Claim(t.Context(), "h", "m2")
	if err != nil {
		t.Fatal(err)
	}
	if cur, doc, ok, err := c2.LoadDocument(t.Context(), "h"); err != nil || !ok || cur != "30" || string(doc) != `{"v":30}` {
		t.Fatalf("claim after a handover: %q, %s, %v, %v", cur, doc, ok, err)
	}
}

// FuzzDecodeFileDocument: any bytes are either a checkpoint that encodes
// back to themselves (version 3) or ErrCorrupt; a document is always JSON.
func FuzzDecodeFileDocument(f *testing.F) {
	f.Add(encodeV3("1780793376562", []byte(`{"a":[1,2]}`)))
	f.Add(encodeV3("1", nil))
	f.Add([]byte("restless-checkpoint 3 1 2 00000000\n1\n{}\n"))
	f.Add(encodeFile("5"))
	f.Fuzz(func(t *testing.T, b []byte) {
		cur, doc, err := decodeFileDocument(b)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error does not wrap ErrCorrupt: %v", err)
			}
			return
		}
		if cur == "" {
			t.Fatal("accepted an empty cursor")
		}
		if doc != nil && !json.Valid(doc) {
			t.Fatalf("accepted a document that is not JSON: %q", doc)
		}
		if bytes.HasPrefix(b, []byte(fileMagic+" 3 ")) && string(encodeV3(cur, doc)) != string(b) {
			t.Fatalf("accepted %q which does not round-trip", b)
		}
	})
}
