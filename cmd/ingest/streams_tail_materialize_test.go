package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"iter"
	"strings"
	"testing"

	"github.com/restless-stream/ingest/client"
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
