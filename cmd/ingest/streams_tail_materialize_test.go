package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/restless-stream/ingest/client"
	"github.com/restless-stream/ingest/emulator"
)

func TestPrintDocuments(t *testing.T) {
	ev := func(id, data string) *client.Event {
		return &client.Event{Type: client.EventUpdate, EventID: id, Data: json.RawMessage(data)}
	}
	fallback := ev("6", `{"b":2}`)
	fallback.Meta.PayloadModeFallback = json.RawMessage(`"FULL_DATA"`)
	steps := []struct {
		ev  *client.Event
		err error
	}{
		{ev: ev("1", `{"a":1}`)},
		{ev: ev("2", `[{"op":"replace","path":"/a","value":2}]`)},
		{err: &client.ParseError{Reason: "not an event"}}, // may have been a patch
		{ev: ev("4", `[{"op":"replace","path":"/a","value":3}]`)},
		{ev: &client.Event{Type: client.EventError, EventID: "5", Error: json.RawMessage(`{"message":"x"}`)}},
		{ev: fallback},
		{ev: ev("7", `[{"op":"remove","path":"/b"}]`)},
	}
	var seq iter.Seq2[*client.Event, error] = func(yield func(*client.Event, error) bool) {
		for _, s := range steps {
			if !yield(s.ev, s.err) {
				return
			}
		}
	}
	var out, errOut bytes.Buffer
	if err := printDocuments(t.Context(), &out, &errOut, seq); err != nil {
		t.Fatal(err)
	}
	want := "{\"a\":1}\n{\"a\":2}\n{\"b\":2}\n{}\n"
	if out.String() != want {
		t.Errorf("printed\n%s\nwant\n%s", out.String(), want)
	}
	if !strings.Contains(errOut.String(), "event rejected") || !strings.Contains(errOut.String(), "no document until the next full one") {
		t.Errorf("standard error:\n%s", errOut.String())
	}
	// An error that ends the subscription ends the command with it.
	var end iter.Seq2[*client.Event, error] = func(yield func(*client.Event, error) bool) { yield(nil, errors.New("gone")) }
	if err := printDocuments(t.Context(), &out, &errOut, end); err == nil || !strings.Contains(err.Error(), "gone") {
		t.Errorf("printDocuments = %v", err)
	}
}

// TestStreamsTailMaterializeEmulator: `streams tail --materialize` on an
// emulator JSON_PATCH stream prints each document; a corrupted patch is
// reported and nothing is printed until the next full document.
func TestStreamsTailMaterializeEmulator(t *testing.T) {
	em := newTestEmulator(t)
	info, err := em.CreateStream(emulator.StreamSpec{URL: em.URL() + "/_emulator/demo/orders", Inactive: true, PayloadMode: client.PayloadJSONPatch})
	if err != nil {
		t.Fatal(err)
	}
	doc := func(n int) string {
		return fmt.Sprintf(`{"items":[%s],"n":%d}`, strings.TrimSuffix(strings.Repeat("1,", n), ","), n)
	}
	var ids []string
	for n := range 7 {
		id, err := em.Publish(info.ID, []byte(doc(n)))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	conn := []string{"--api-key", testAPIKey, "--base-url", em.URL(), "--stream-base-url", em.URL()}
	tail := func(faults emulator.Faults) (int, []string, string) {
		t.Helper()
		if err := em.SetFaults(info.ID, faults); err != nil {
			t.Fatal(err)
		}
		var out, errOut bytes.Buffer
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		code := Main(ctx, append([]string{"streams", "tail", info.ID, "--materialize", "--cursor", ids[0], "--no-reconnect"}, conn...), &out, &errOut)
		if ctx.Err() != nil {
			t.Fatal("tail did not end")
		}
		return code, strings.Fields(out.String()), errOut.String()
	}
	// The connection is closed when event 6 is ready, after events 1 to 5:
	// the first carries the whole document, the others patches.
	code, docs, errOut := tail(emulator.Faults{CloseAfter: 5})
	if want := []string{doc(1), doc(2), doc(3), doc(4), doc(5)}; code != 0 || !reflect.DeepEqual(docs, want) {
		t.Fatalf("exit %d, documents %q, want %q; stderr %q", code, docs, want, errOut)
	}
	code, docs, errOut = tail(emulator.Faults{CloseAfter: 5, CorruptPatchEvery: 2})
	if want := []string{doc(1), doc(2)}; code != 0 || !reflect.DeepEqual(docs, want) {
		t.Fatalf("with a corrupted patch: exit %d, documents %q, want %q; stderr %q", code, docs, want, errOut)
	}
	if strings.Count(errOut, "no document until the next full one") != 3 {
		t.Fatalf("stderr %q, want the corrupted patch and the two after it reported", errOut)
	}
}
