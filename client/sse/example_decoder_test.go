package sse_test

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/restless-stream/ingest/client/sse"
)

func ExampleDecoder() {
	stream := "\uFEFF: keepalive\r\n" +
		"retry: 5000\r\n" +
		"id: 1780793376562\r\n" +
		"event: update\r\n" +
		"data: {\"type\":\"update\",\r\n" +
		"data:  \"event_id\":\"1780793376562\"}\r\n" +
		"\r\n" +
		"data: no id or type of its own\n" +
		"\n" +
		"data: unterminated, discarded\n"

	d := sse.NewDecoder(strings.NewReader(stream))
	for {
		ev, err := d.Decode()
		if err == io.EOF {
			break
		}
		if err != nil {
			fmt.Println("error:", err)
			return
		}
		fmt.Printf("type=%s id=%s data=%q\n", ev.Type, ev.ID, ev.Data)
	}
	retry, ok := d.Retry()
	fmt.Println("retry:", retry, ok)
	// Output:
	// type=update id=1780793376562 data="{\"type\":\"update\",\n \"event_id\":\"1780793376562\"}"
	// type=message id=1780793376562 data="no id or type of its own"
	// retry: 5s true
}

func ExampleDecoder_DecodeLimited() {
	stream := "id: 1\ndata: " + strings.Repeat("x", 100) + "\n\n" +
		"id: 2\ndata: small\n\n"

	d := sse.NewDecoder(strings.NewReader(stream))
	d.SetMaxEventBytes(8)
	for {
		ev, tooLarge, err := d.DecodeLimited()
		if err != nil {
			break // io.EOF here
		}
		// A too-large event keeps its first 8 bytes of data.
		fmt.Printf("id=%s tooLarge=%v data=%q\n", ev.ID, tooLarge, ev.Data)
	}
	// Output:
	// id=1 tooLarge=true data="xxxxxxxx"
	// id=2 tooLarge=false data="small"
}

func ExampleErrEventTooLarge() {
	d := sse.NewDecoder(strings.NewReader("data: 0123456789\n\ndata: ok\n\n"))
	d.SetMaxEventBytes(4)
	ev, err := d.Decode()
	fmt.Println(errors.Is(err, sse.ErrEventTooLarge), err, ev.Data)
	ev, err = d.Decode() // the decoder carries on with the next event
	fmt.Println(ev.Data, err)
	// Output:
	// true sse: event too large: data longer than 4 bytes 0123
	// ok <nil>
}
