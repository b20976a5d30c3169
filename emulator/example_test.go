package emulator_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/restless-stream/ingest/emulator"
)

// A stream created through the Go API, one published update, and the SSE
// event a subscriber reads.
func Example() {
	e, err := emulator.New(emulator.Options{APIKeys: []string{"rs_example"}})
	if err != nil {
		panic(err)
	}
	defer e.Close()
	if err := e.Start("127.0.0.1:0"); err != nil {
		panic(err)
	}
	info, err := e.CreateStream(emulator.StreamSpec{ID: "orders", URL: "https://api.example.com/orders", Inactive: true, Secret: "secret"})
	if err != nil {
		panic(err)
	}
	if _, err := e.Publish(info.ID, []byte(`{"total": 42, "id": "order_123"}`)); err != nil {
		panic(err)
	}

	req, _ := http.NewRequest("GET", info.SSEURL, nil)
	req.Header.Set("Authorization", "Bearer rs_example")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		panic(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	for {
		line, _ := br.ReadString('\n')
		if strings.HasPrefix(line, "event: ") {
			fmt.Print(line)
		}
		if data, ok := strings.CutPrefix(line, "data: "); ok {
			var ev struct {
				Data      json.RawMessage `json:"data"`
				Signature string          `json:"signature"`
			}
			json.Unmarshal([]byte(data), &ev)
			fmt.Printf("data: %s\nsignature: %s\n", ev.Data, ev.Signature)
			return
		}
	}
	// Output:
	// event: update
	// data: {"id":"order_123","total":42}
	// signature: 0e8d5075fec7809ec154d186f8b561bfd9f984bb8f9732c2784425d2f4987f8b
}
