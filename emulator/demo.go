package emulator

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"
)

// DemoStreamID is the id of the built-in demo stream (Options.DemoAPI).
const DemoStreamID = "demo"

// DemoPath is where the demo upstream is served.
const DemoPath = "/_emulator/demo/orders"

var demoCustomers = []string{"Ada", "Grace", "Linus", "Barbara", "Ken", "Margaret", "Dennis", "Frances"}

// demoDocument returns the demo API's document at t. It is a pure function of
// the second: a new order arrives every second, the five latest are listed,
// and each moves from placed to paid to shipped as it ages.
func demoDocument(t time.Time) []byte {
	sec := t.Unix()
	type order struct {
		ID       string  `json:"id"`
		Customer string  `json:"customer"`
		Items    int64   `json:"items"`
		Total    float64 `json:"total"`
		Status   string  `json:"status"`
	}
	orders := make([]order, 0, 5)
	for age := int64(0); age < 5; age++ {
		n := sec - age
		status := "placed"
		switch {
		case age >= 4:
			status = "shipped"
		case age >= 2:
			status = "paid"
		}
		orders = append(orders, order{
			ID:       fmt.Sprintf("ord_%d", n),
			Customer: demoCustomers[uint64(n)%uint64(len(demoCustomers))],
			Items:    1 + n%4,
			Total:    float64(500+(n*7919)%20000) / 100,
			Status:   status,
		})
	}
	doc := map[string]any{
		"generatedAt": t.UTC().Truncate(time.Second).Format(time.RFC3339),
		"orders":      orders,
		"stats":       map[string]any{"ordersToday": sec%86400 + 1, "open": 4},
	}
	b, _ := json.Marshal(doc) // maps of plain values cannot fail
	return b
}

func (e *Emulator) handleDemo(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Write(demoDocument(time.Now()))
}

// addDemoStream creates the "demo" stream polling the demo API every second.
func (e *Emulator) addDemoStream() {
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, ok := e.streams[DemoStreamID]; ok {
		return
	}
	secret := e.opts.DemoSecret
	if secret == "" {
		secret = randomHex(32)
	}
	cfg := streamConfig{Name: "Demo orders", Description: "The emulator's built-in demo API: a new order every second",
		URL: DemoPath, PollingInterval: 1}
	cfg.withDefaults(&e.opts)
	st := e.newStreamLocked(DemoStreamID, kindDemo, cfg, secret, time.Now().UTC())
	e.streams[st.id] = st
}
