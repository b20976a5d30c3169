package emulator

import (
	"context"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/restless-stream/ingest/client"
)

// The client package's twelve operations, end to end against the emulator.
func TestClientOperations(t *testing.T) {
	up := &upstream{}
	up.set(200, `{"orders":[1]}`)
	srv := httptest.NewServer(up)
	defer srv.Close()
	e := startEmu(t, Options{})
	ctx := context.Background()
	c, err := client.New(testKey, client.WithBaseURL(e.URL()), client.WithStreamBaseURL(e.URL()))
	if err != nil {
		t.Fatal(err)
	}

	st, err := c.Streams.Create(ctx, client.CreateStreamRequest{
		Name: "Orders", Description: "Live order feed", Status: client.StatusActive, Method: client.MethodPost,
		URL: srv.URL, Headers: map[string]string{"Accept": "application/json"}, Body: map[string]any{"status": "open"},
		PayloadMode: client.PayloadJSONPatch, PollingInterval: 0.01,
	})
	if err != nil {
		t.Fatal(err)
	}
	if st.ID == "" || st.HMACSecret == "" || st.SSEURL == "" || st.WebSocketURL == "" || st.Status != client.StatusActive || st.CreatedAt.IsZero() {
		t.Fatalf("created %+v", st)
	}
	got, err := c.Streams.Get(ctx, st.ID)
	if err != nil || got.Name != "Orders" || got.HMACSecret != "" || string(got.Body) != `{"status":"open"}` {
		t.Fatalf("get: %+v %v", got, err)
	}
	upd, err := c.Streams.Update(ctx, st.ID, client.UpdateStreamRequest{Name: client.Ptr("Orders v2"), PollingInterval: client.Ptr(0.02)})
	if err != nil || upd.Name != "Orders v2" || upd.PollingInterval != 0.02 {
		t.Fatalf("update: %+v %v", upd, err)
	}
	list, err := c.Streams.List(ctx, 20, 0)
	if err != nil || len(list.Streams) != 1 || list.PaginationInfo.HasNextPage {
		t.Fatalf("list: %+v %v", list, err)
	}
	n := 0
	for s, err := range c.Streams.All(ctx, 1) {
		if err != nil {
			t.Fatal(err)
		}
		n++
		_ = s
	}
	if n != 1 {
		t.Fatalf("All gave %d streams", n)
	}
	if r, err := c.Streams.Stop(ctx, st.ID); err != nil || !r.Affected || r.ID != st.ID {
		t.Fatalf("stop: %+v %v", r, err)
	}
	if r, err := c.Streams.Start(ctx, st.ID); err != nil || !r.Affected {
		t.Fatalf("start: %+v %v", r, err)
	}
	// The runtime URL handed out works, and the events verify with the secret.
	sub := subscribeSSE(t, st.SSEURL, nil)
	r := sub.next(t)
	verify(t, st.HMACSecret, r)
	if string(r.ev.Data) != `{"orders":[1]}` {
		t.Fatalf("event %s", r.raw)
	}
	if _, err := c.Streams.CreditUsageStats(ctx, st.ID); err != nil {
		t.Fatal(err)
	}
	if r, err := c.Streams.ValidateAPIKey(ctx, ""); err != nil || !r.Affected || r.ID != testKey {
		t.Fatalf("validate: %+v %v", r, err)
	}
	snip, err := c.Streams.ConnectionSnippets(ctx, client.ConnectionSnippetsRequest{StreamID: st.ID, Language: "go"})
	if err != nil || snip.SSEURL != st.SSEURL || snip.Snippets["go"] == "" {
		t.Fatalf("snippets: %+v %v", snip, err)
	}
	in := client.DirectInput{URL: srv.URL, PollingInterval: 0.01, Headers: map[string]string{"X-A": "1"}}
	setup, err := c.Streams.DirectSetup(ctx, client.DirectSetupRequest{DirectInput: in, Language: "curl"})
	if err != nil || !strings.HasPrefix(setup.Runtime.DirectSSEURL, e.URL()+"/direct?") || setup.Commands.Header.Curl == "" {
		t.Fatalf("direct setup: %+v %v", setup, err)
	}
	sess, err := c.Streams.DirectSession(ctx, client.DirectSessionRequest{DirectInput: in, DedupeKey: "d1"})
	if err != nil || sess.SessionID == "" || sess.ExpiresAt.IsZero() || sess.SSEURL == "" {
		t.Fatalf("direct session: %+v %v", sess, err)
	}
	// The client's own URL builders reach the same streams.
	for _, build := range []func() (string, error){
		func() (string, error) { return client.BuildDirectSSEURL(c.StreamBaseURL(), in) },
		func() (string, error) {
			return client.BuildSSEURL(c.StreamBaseURL(), client.RuntimeTarget{SessionID: sess.SessionID})
		},
	} {
		u, err := build()
		if err != nil {
			t.Fatal(err)
		}
		r := subscribeSSE(t, u, nil).next(t)
		verify(t, e.DirectSecret(), r)
	}
	wsu, err := client.BuildWebSocketURL(c.StreamBaseURL(), client.RuntimeTarget{StreamID: st.ID})
	if err != nil {
		t.Fatal(err)
	}
	verify(t, st.HMACSecret, subscribeWS(t, wsu).next(t))

	if r, err := c.Streams.Delete(ctx, st.ID); err != nil || !r.Affected {
		t.Fatalf("delete: %+v %v", r, err)
	}
	if _, err := c.Streams.Get(ctx, st.ID); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("get after delete: %v", err)
	}
	var apiErr *client.APIError
	_, err = c.Streams.Create(ctx, client.CreateStreamRequest{Name: "x", URL: "ftp://nope", Extra: map[string]any{"colour": 1}})
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 400 || !strings.Contains(apiErr.Message, "url") {
		t.Fatalf("invalid create: %v", err)
	}
	bad, _ := client.New("rs_wrong", client.WithBaseURL(e.URL()))
	if _, err := bad.Streams.List(ctx, 20, 0); !errors.Is(err, client.ErrUnauthorized) {
		t.Fatalf("wrong key: %v", err)
	}
}
