package client_test

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/restless-stream/ingest/client"
)

// A JSON_PATCH stream's events materialised into its current document: the
// first event carries the full document, the next ones RFC 6902 patches. A
// patch that fails leaves the document unset until the next full document
// (which the first event after a reconnect carries).
func ExampleDocument() {
	events := []*client.Event{
		{Type: client.EventUpdate, EventID: "1", Data: json.RawMessage(`{"price":10,"tags":["new"]}`)},
		{Type: client.EventUpdate, EventID: "2", Data: json.RawMessage(`[{"op":"replace","path":"/price","value":12}]`)},
		{Type: client.EventUpdate, EventID: "3", Data: json.RawMessage(`[{"op":"remove","path":"/missing"}]`)},
		{Type: client.EventUpdate, EventID: "4", Data: json.RawMessage(`[{"op":"add","path":"/tags/-","value":"sale"}]`)},
		{Type: client.EventUpdate, EventID: "5", Data: json.RawMessage(`{"price":9,"tags":[]}`),
			Meta: client.EventMeta{PayloadModeFallback: json.RawMessage(`"FULL_DATA"`)}},
	}
	doc := client.NewDocument()
	for _, ev := range events {
		changed, err := doc.Apply(ev)
		switch {
		case errors.Is(err, client.ErrPatchFailed):
			fmt.Println(ev.EventID, "patch failed; waiting for a full document")
		case err != nil:
			fmt.Println(ev.EventID, err)
		case changed:
			fmt.Println(ev.EventID, string(doc.Bytes()))
		}
	}
	// Output:
	// 1 {"price":10,"tags":["new"]}
	// 2 {"price":12,"tags":["new"]}
	// 3 patch failed; waiting for a full document
	// 4 patch failed; waiting for a full document
	// 5 {"price":9,"tags":[]}
}
