package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"
)

const testKey = "rs_0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

// setup starts a server whose mux the test fills, and a client for it.
func setup(t *testing.T, opts ...Option) (*Client, *http.ServeMux) {
	t.Helper()
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	c, err := New(testKey, append([]Option{WithBaseURL(srv.URL + "/v1/")}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return c, mux
}

// jsonEqual reports whether two JSON documents mean the same.
func jsonEqual(t *testing.T, got []byte, want string) bool {
	t.Helper()
	a, err1 := decodeNumbers(got)
	b, err2 := decodeNumbers([]byte(want))
	if err1 != nil || err2 != nil {
		t.Fatalf("bad JSON: %q (%v) or %q (%v)", got, err1, want, err2)
	}
	return reflect.DeepEqual(a, b)
}

func TestOperations(t *testing.T) {
	sample := `{"id":"s1","name":"Orders","description":"d","status":"ACTIVE","method":"GET","url":"https://api.example.com/orders",
		"headers":{"Accept":"application/json"},"body":{"q":1},"payloadMode":"FULL_DATA","pollingInterval":30,
		"sseUrl":"https://stream.restlessapi.stream?streamId=s1","websocketUrl":"wss://stream.restlessapi.stream/ws?streamId=s1",
		"hmacSecret":"whsec","createdAt":"2026-01-02T03:04:05Z","updatedAt":1767323045000,"extra":true}`
	tests := []struct {
		name, method, path, query string
		body                      string // "" = no request body
		resp                      string
		call                      func(context.Context, *StreamsService) (any, error)
		check                     func(t *testing.T, got any)
	}{
		{"list defaults", "GET", "/v1/streams", "limit=20&offset=0", "",
			`{"streams":[` + sample + `],"paginationInfo":{"hasNextPage":true}}`,
			func(ctx context.Context, s *StreamsService) (any, error) { return s.List(ctx, 0, 0) },
			func(t *testing.T, got any) {
				r := got.(*StreamsResponse)
				if len(r.Streams) != 1 || r.Streams[0].ID != "s1" || !r.PaginationInfo.HasNextPage || len(r.Raw) == 0 {
					t.Errorf("got %+v", r)
				}
			}},
		{"list page", "GET", "/v1/streams", "limit=5&offset=10", "",
			`{"streams":[],"pagination_info":{"has_next_page":true}}`,
			func(ctx context.Context, s *StreamsService) (any, error) { return s.List(ctx, 5, 10) },
			func(t *testing.T, got any) {
				if r := got.(*StreamsResponse); !r.PaginationInfo.HasNextPage {
					t.Errorf("snake_case pagination not read: %+v", r)
				}
			}},
		{"get", "GET", "/v1/streams/s1", "", "", sample,
			func(ctx context.Context, s *StreamsService) (any, error) { return s.Get(ctx, "s1") },
			func(t *testing.T, got any) {
				s := got.(*Stream)
				want := Stream{ID: "s1", Name: "Orders", Description: "d", Status: StatusActive, Method: MethodGet,
					URL: "https://api.example.com/orders", Headers: map[string]string{"Accept": "application/json"},
					Body: json.RawMessage(`{"q":1}`), PayloadMode: PayloadFullData, PollingInterval: 30,
					SSEURL: "https://stream.restlessapi.stream?streamId=s1", WebSocketURL: "wss://stream.restlessapi.stream/ws?streamId=s1",
					HMACSecret: "whsec", CreatedAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
					UpdatedAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
				want.Raw = s.Raw
				if !reflect.DeepEqual(*s, want) {
					t.Errorf("got  %+v\nwant %+v", *s, want)
				}
			}},
		{"get escapes the id", "GET", "/v1/streams/a%2Fb%20c", "", "", `{"id":"a/b c"}`,
			func(ctx context.Context, s *StreamsService) (any, error) { return s.Get(ctx, "a/b c") },
			func(t *testing.T, got any) {
				if got.(*Stream).ID != "a/b c" {
					t.Errorf("got %+v", got)
				}
			}},
		{"create", "POST", "/v1/streams", "",
			`{"name":"Orders","description":"","status":"ACTIVE","method":"POST","url":"https://api.example.com/search",
			  "headers":{"Accept":"application/json"},"body":{"status":"open"},"payloadMode":"JSON_PATCH","pollingInterval":30,
			  "jqFilter":".items","pollingStrategies":[{"start":"09:00","end":"17:00","days":["MON","TUE"],"timezone":"UTC","pollingInterval":5}],
			  "apiKey":"` + testKey + `","customField":1,"anotherField":"x"}`,
			sample,
			func(ctx context.Context, s *StreamsService) (any, error) {
				return s.Create(ctx, CreateStreamRequest{Name: "Orders", Status: StatusActive, Method: MethodPost,
					URL: "https://api.example.com/search", Headers: map[string]string{"Accept": "application/json"},
					Body: map[string]any{"status": "open"}, PayloadMode: PayloadJSONPatch, PollingInterval: 30, JQFilter: ".items",
					PollingStrategies: []PollingStrategy{{Start: "09:00", End: "17:00", Days: []string{"MON", "TUE"}, Timezone: "UTC", PollingInterval: 5}},
					Extra:             map[string]any{"customField": 1, "another_field": "x"}})
			},
			func(t *testing.T, got any) {
				if s := got.(*Stream); s.HMACSecret != "whsec" {
					t.Errorf("got %+v", s)
				}
			}},
		{"update sends only set fields", "PATCH", "/v1/streams/s1", "",
			`{"name":"Orders v2","pollingInterval":60,"status":"INACTIVE","apiKey":"` + testKey + `","body":null}`, sample,
			func(ctx context.Context, s *StreamsService) (any, error) {
				return s.Update(ctx, "s1", UpdateStreamRequest{Name: Ptr("Orders v2"), PollingInterval: Ptr(60.0),
					Status: Ptr(StatusInactive), Extra: map[string]any{"body": nil}})
			},
			func(t *testing.T, got any) {}},
		{"start", "POST", "/v1/streams/s1/start", "", "", `{"id":"s1","affected":true}`,
			func(ctx context.Context, s *StreamsService) (any, error) { return s.Start(ctx, "s1") },
			func(t *testing.T, got any) {
				if r := got.(*BaseActionResponse); r.ID != "s1" || !r.Affected {
					t.Errorf("got %+v", r)
				}
			}},
		{"stop", "POST", "/v1/streams/s1/stop", "", "", `{"id":"s1","affected":true}`,
			func(ctx context.Context, s *StreamsService) (any, error) { return s.Stop(ctx, "s1") },
			func(t *testing.T, got any) {}},
		{"delete", "DELETE", "/v1/streams/s1", "", "", `{"id":17,"affected":false}`,
			func(ctx context.Context, s *StreamsService) (any, error) { return s.Delete(ctx, "s1") },
			func(t *testing.T, got any) {
				if r := got.(*BaseActionResponse); r.ID != "17" || r.Affected {
					t.Errorf("got %+v", r)
				}
			}},
		{"validate own key", "POST", "/v1/streams/validate-api-key", "", `{"apiKey":"` + testKey + `"}`,
			`{"id":"` + testKey + `","affected":true}`,
			func(ctx context.Context, s *StreamsService) (any, error) { return s.ValidateAPIKey(ctx, "") },
			func(t *testing.T, got any) {
				if r := got.(*BaseActionResponse); r.ID != testKey || !r.Affected {
					t.Errorf("got %+v", r)
				}
			}},
		{"validate other key", "POST", "/v1/streams/validate-api-key", "", `{"apiKey":"rs_other"}`,
			`{"id":"rs_other","affected":true}`,
			func(ctx context.Context, s *StreamsService) (any, error) { return s.ValidateAPIKey(ctx, "rs_other") },
			func(t *testing.T, got any) {}},
		{"credit usage", "GET", "/v1/streams/s1/credit-usage-stats", "", "",
			`{"streamId":"s1","totalCredits":12.5,"daily":[{"date":"2026-01-01","credits":12.5,"by_charge_type":[{"chargeType":"poll","credits":12.5,"count":25}]}]}`,
			func(ctx context.Context, s *StreamsService) (any, error) { return s.CreditUsageStats(ctx, "s1") },
			func(t *testing.T, got any) {
				r := got.(*StreamCreditUsageStats)
				want := StreamCreditUsageStats{StreamID: "s1", TotalCredits: 12.5, Daily: []DailyCreditUsage{{Date: "2026-01-01", Credits: 12.5,
					ByChargeType: []CreditUsageChargeTypeBreakdown{{ChargeType: "poll", Credits: 12.5, Count: 25}}}}, Raw: r.Raw}
				if !reflect.DeepEqual(*r, want) {
					t.Errorf("got %+v", *r)
				}
			}},
		{"connection snippets", "POST", "/v1/streams/connection-snippets", "", `{"streamId":"s1","language":"python"}`,
			`{"sseUrl":"https://s?streamId=s1","websocketUrl":"wss://s/ws?streamId=s1","snippets":{"python":"print(1)"}}`,
			func(ctx context.Context, s *StreamsService) (any, error) {
				return s.ConnectionSnippets(ctx, ConnectionSnippetsRequest{StreamID: "s1", Language: "python"})
			},
			func(t *testing.T, got any) {
				if r := got.(*ConnectionSnippetsResponse); r.SSEURL != "https://s?streamId=s1" || r.WebSocketURL == "" || r.Snippets["python"] != "print(1)" {
					t.Errorf("got %+v", r)
				}
			}},
		{"direct setup", "POST", "/v1/streams/direct/setup", "",
			`{"url":"https://api.example.com/search","method":"POST","body":{"query":"restless"},"language":"python"}`,
			`{"commands":{"header":{"curl":"curl -H x"},"query":{"curl":"curl q"}},"runtime":{"direct_sse_url":"https://s/direct?url=x","directWebsocketUrl":"wss://s/ws/direct?url=x"},"snippets":{"python":"p"},"config":{"url":"https://api.example.com/search"}}`,
			func(ctx context.Context, s *StreamsService) (any, error) {
				return s.DirectSetup(ctx, DirectSetupRequest{DirectInput: DirectInput{URL: "https://api.example.com/search",
					Method: MethodPost, Body: map[string]any{"query": "restless"}}, Language: "python"})
			},
			func(t *testing.T, got any) {
				r := got.(*DirectSetupResponse)
				if r.Commands.Header.Curl != "curl -H x" || r.Commands.Query.Curl != "curl q" || r.Runtime.DirectSSEURL != "https://s/direct?url=x" ||
					r.Runtime.DirectWebSocketURL == "" || r.Snippets["python"] != "p" || !jsonEqual(t, r.Config, `{"url":"https://api.example.com/search"}`) {
					t.Errorf("got %+v", r)
				}
			}},
		{"direct session", "POST", "/v1/streams/direct/session", "",
			`{"url":"https://api.example.com/orders","method":"GET","pollingInterval":30,"dedupeKey":"orders-feed-v1","apiKey":"rs_runtime"}`,
			`{"sessionId":"sess_1","sseUrl":"https://s?sessionId=sess_1","websocketUrl":"wss://s/ws?sessionId=sess_1","expiresAt":"2026-06-07T00:49:36.562Z"}`,
			func(ctx context.Context, s *StreamsService) (any, error) {
				return s.DirectSession(ctx, DirectSessionRequest{DirectInput: DirectInput{URL: "https://api.example.com/orders",
					Method: MethodGet, PollingInterval: 30, APIKey: "rs_runtime"}, DedupeKey: "orders-feed-v1"})
			},
			func(t *testing.T, got any) {
				r := got.(*DirectSessionResponse)
				if r.SessionID != "sess_1" || r.SSEURL != "https://s?sessionId=sess_1" || r.WebSocketURL != "wss://s/ws?sessionId=sess_1" ||
					!r.ExpiresAt.Equal(time.Date(2026, 6, 7, 0, 49, 36, 562e6, time.UTC)) || len(r.Raw) == 0 {
					t.Errorf("got %+v", r)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, mux := setup(t)
			called := false
			mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
				called = true
				if r.Method != tt.method || r.URL.EscapedPath() != tt.path || r.URL.RawQuery != tt.query {
					t.Errorf("request %s %s?%s, want %s %s?%s", r.Method, r.URL.EscapedPath(), r.URL.RawQuery, tt.method, tt.path, tt.query)
				}
				if got := r.Header.Get("x-api-key"); got != testKey {
					t.Errorf("x-api-key = %q", got)
				}
				if got := r.Header.Get("User-Agent"); got != DefaultUserAgent {
					t.Errorf("User-Agent = %q", got)
				}
				if got := r.Header.Get("Accept"); got != "application/json" {
					t.Errorf("Accept = %q", got)
				}
				body, _ := io.ReadAll(r.Body)
				if tt.body == "" {
					if len(body) != 0 || r.Header.Get("Content-Type") != "" {
						t.Errorf("unexpected body %q (Content-Type %q)", body, r.Header.Get("Content-Type"))
					}
				} else {
					if ct := r.Header.Get("Content-Type"); ct != "application/json" {
						t.Errorf("Content-Type = %q", ct)
					}
					if !jsonEqual(t, body, tt.body) {
						t.Errorf("body\n got %s\nwant %s", body, tt.body)
					}
				}
				w.Header().Set("Content-Type", "application/json")
				io.WriteString(w, tt.resp)
			})
			got, err := tt.call(context.Background(), c.Streams)
			if err != nil {
				t.Fatal(err)
			}
			if !called {
				t.Fatal("server not called")
			}
			tt.check(t, got)
		})
	}
}

// TestRoutesServeMux checks that the route table works as ServeMux patterns
// and that the client hits each route.
func TestRoutesServeMux(t *testing.T) {
	c, mux := setup(t)
	hit := map[string]bool{}
	for _, route := range []string{RouteListStreams, RouteGetStream, RouteCreateStream, RouteUpdateStream, RouteStartStream,
		RouteStopStream, RouteDeleteStream, RouteValidateAPIKey, RouteCreditUsageStats, RouteConnectionSnippets,
		RouteDirectSetup, RouteDirectSession} {
		method, path, _ := strings.Cut(route, " ")
		mux.HandleFunc(method+" /v1"+path, func(w http.ResponseWriter, r *http.Request) {
			hit[route] = true
			io.WriteString(w, `{}`)
		})
	}
	ctx := context.Background()
	s := c.Streams
	direct := DirectInput{URL: "http://x"}
	calls := []error{
		second(s.List(ctx, 0, 0)), second(s.Get(ctx, "a")), second(s.Create(ctx, CreateStreamRequest{Name: "n", URL: "http://x"})),
		second(s.Update(ctx, "a", UpdateStreamRequest{})), second(s.Start(ctx, "a")), second(s.Stop(ctx, "a")),
		second(s.Delete(ctx, "a")), second(s.ValidateAPIKey(ctx, "")), second(s.CreditUsageStats(ctx, "a")),
		second(s.ConnectionSnippets(ctx, ConnectionSnippetsRequest{StreamID: "a"})),
		second(s.DirectSetup(ctx, DirectSetupRequest{DirectInput: direct})),
		second(s.DirectSession(ctx, DirectSessionRequest{DirectInput: direct})),
	}
	for i, err := range calls {
		if err != nil {
			t.Errorf("call %d: %v", i, err)
		}
	}
	if len(hit) != 12 {
		t.Errorf("hit %d routes, want 12: %v", len(hit), hit)
	}
}

func second[T any](_ T, err error) error { return err }

func TestAPIKeyRule(t *testing.T) {
	tests := []struct {
		name    string
		key     string
		req     CreateStreamRequest
		wantKey any // nil = no apiKey in the body
		wantRaw string
	}{
		{"added", testKey, CreateStreamRequest{}, testKey, ""},
		{"explicit field kept", testKey, CreateStreamRequest{APIKey: "rs_mine"}, "rs_mine", ""},
		{"extra apiKey kept", testKey, CreateStreamRequest{Extra: map[string]any{"apiKey": "rs_x"}}, "rs_x", ""},
		{"extra api_key kept as apiKey", testKey, CreateStreamRequest{Extra: map[string]any{"api_key": "rs_y"}}, "rs_y", ""},
		{"extra null apiKey kept", testKey, CreateStreamRequest{Extra: map[string]any{"apiKey": nil}}, nil, "null"},
		{"client without key", "", CreateStreamRequest{}, nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, op := range []string{"create", "update"} {
				var body map[string]any
				srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					json.NewDecoder(r.Body).Decode(&body)
					if _, ok := r.Header["X-Api-Key"]; ok != (tt.key != "") {
						t.Errorf("x-api-key sent = %v with client key %q", ok, tt.key)
					}
					io.WriteString(w, `{}`)
				}))
				c, err := New(tt.key, WithBaseURL(srv.URL))
				if err != nil {
					t.Fatal(err)
				}
				req := tt.req
				req.Name, req.URL = "n", "http://x"
				if op == "create" {
					_, err = c.Streams.Create(context.Background(), req)
				} else {
					_, err = c.Streams.Update(context.Background(), "s", UpdateStreamRequest{APIKey: req.APIKey, Extra: req.Extra})
				}
				srv.Close()
				if err != nil {
					t.Fatal(err)
				}
				v, ok := body["apiKey"]
				if tt.wantRaw == "null" {
					if !ok || v != nil {
						t.Errorf("%s: apiKey = %v, %v; want an explicit null", op, v, ok)
					}
				} else if v != tt.wantKey || (tt.wantKey == nil && ok) {
					t.Errorf("%s: apiKey = %v (present %v), want %v", op, v, ok, tt.wantKey)
				}
				if _, ok := body["api_key"]; ok {
					t.Errorf("%s: api_key sent in snake_case", op)
				}
			}
		})
	}
}

func TestAPIErrors(t *testing.T) {
	tests := []struct {
		name     string
		status   int
		body     string
		message  string
		sentinel error
	}{
		{"message string", 404, `{"statusCode":404,"message":"Stream not found","error":"Not Found"}`, "Stream not found", ErrNotFound},
		{"message array", 400, `{"statusCode":400,"message":["name must be a string","url must be a URL"],"error":"Bad Request"}`,
			"name must be a string; url must be a URL", nil},
		{"error only", 401, `{"statusCode":401,"error":"Unauthorized"}`, "Unauthorized", ErrUnauthorized},
		{"message not text", 403, `{"message":{"x":1},"error":"Forbidden"}`, "Forbidden", ErrForbidden},
		{"plain text body", 429, "slow down\n", "slow down", ErrRateLimited},
		{"empty body", 500, ``, "Internal Server Error", nil},
		{"key echoed is redacted", 401, `{"message":"invalid key ` + testKey + `"}`, "invalid key [REDACTED]", ErrUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, mux := setup(t)
			mux.HandleFunc("GET /v1/streams/{id}", func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(tt.status)
				io.WriteString(w, tt.body)
			})
			_, err := c.Streams.Get(context.Background(), "s1")
			var ae *APIError
			if !errors.As(err, &ae) {
				t.Fatalf("err = %v, want *APIError", err)
			}
			if ae.StatusCode != tt.status || ae.Message != tt.message || string(ae.Body) != tt.body {
				t.Errorf("got %+v", ae)
			}
			if ae.Method != "GET" || ae.Path != "/streams/s1" {
				t.Errorf("request = %s %s", ae.Method, ae.Path)
			}
			if !errors.Is(err, ErrRestless) {
				t.Error("not ErrRestless")
			}
			for _, s := range []error{ErrNotFound, ErrUnauthorized, ErrForbidden, ErrRateLimited} {
				if errors.Is(err, s) != (s == tt.sentinel) {
					t.Errorf("errors.Is(err, %v) = %v", s, !(s == tt.sentinel))
				}
			}
			if strings.Contains(err.Error(), testKey) || !strings.Contains(err.Error(), tt.message) {
				t.Errorf("Error() = %q", err)
			}
		})
	}
}

func TestValidateOtherKeyRedacted(t *testing.T) {
	c, mux := setup(t)
	mux.HandleFunc("POST /v1/streams/validate-api-key", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(401)
		io.WriteString(w, `{"message":"key rs_badkey123 is not valid"}`)
	})
	_, err := c.Streams.ValidateAPIKey(context.Background(), "rs_badkey123")
	if !errors.Is(err, ErrUnauthorized) || strings.Contains(err.Error(), "rs_badkey123") {
		t.Errorf("err = %v", err)
	}
}

func TestAll(t *testing.T) {
	c, mux := setup(t)
	var offsets []string
	mux.HandleFunc("GET /v1/streams", func(w http.ResponseWriter, r *http.Request) {
		off := r.URL.Query().Get("offset")
		offsets = append(offsets, r.URL.Query().Get("limit")+"/"+off)
		switch off {
		case "0":
			io.WriteString(w, `{"streams":[{"id":"a"},{"id":"b"}],"pagination_info":{"has_next_page":true}}`)
		case "2":
			io.WriteString(w, `{"streams":[{"id":"c"}],"paginationInfo":{"hasNextPage":false}}`)
		default:
			t.Errorf("unexpected offset %s", off)
		}
	})
	var ids []string
	for s, err := range c.Streams.All(context.Background(), 2) {
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, s.ID)
	}
	if strings.Join(ids, ",") != "a,b,c" || strings.Join(offsets, " ") != "2/0 2/2" {
		t.Errorf("ids %v, pages %v", ids, offsets)
	}
	// Stopping early fetches no more pages.
	offsets = nil
	for range c.Streams.All(context.Background(), 2) {
		break
	}
	if len(offsets) != 1 {
		t.Errorf("pages fetched after break: %v", offsets)
	}
}

func TestAllError(t *testing.T) {
	c, mux := setup(t)
	mux.HandleFunc("GET /v1/streams", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(500)
	})
	n := 0
	for _, err := range c.Streams.All(context.Background(), 0) {
		n++
		if err == nil {
			t.Error("want an error")
		}
	}
	if n != 1 {
		t.Errorf("yielded %d times, want 1", n)
	}
}

func TestClientInputErrors(t *testing.T) {
	c, _ := setup(t)
	ctx := context.Background()
	s := c.Streams
	tests := []struct {
		name string
		err  error
		msg  string
	}{
		{"get without id", second(s.Get(ctx, "")), "stream ID is required"},
		{"start without id", second(s.Start(ctx, "")), "stream ID is required"},
		{"list negative", second(s.List(ctx, -1, 0)), "must not be negative"},
		{"create without name", second(s.Create(ctx, CreateStreamRequest{URL: "http://x"})), "name and url are required"},
		{"create bad method", second(s.Create(ctx, CreateStreamRequest{Name: "n", URL: "http://x", Method: "FETCH"})), `method "FETCH"`},
		{"create bad status", second(s.Create(ctx, CreateStreamRequest{Name: "n", URL: "http://x", Status: "ON"})), `status "ON"`},
		{"create bad mode", second(s.Create(ctx, CreateStreamRequest{Name: "n", URL: "http://x", PayloadMode: "DIFF"})), `payload mode "DIFF"`},
		{"create unmarshalable body", second(s.Create(ctx, CreateStreamRequest{Name: "n", URL: "http://x", Body: func() {}})), "create stream"},
		{"update empty method", second(s.Update(ctx, "s", UpdateStreamRequest{Method: Ptr(HTTPMethod(""))})), "is not a method"},
		{"update negative interval", second(s.Update(ctx, "s", UpdateStreamRequest{PollingInterval: Ptr(-1.0)})), "polling interval -1"},
		{"snippets without stream", second(s.ConnectionSnippets(ctx, ConnectionSnippetsRequest{})), "stream ID is required"},
		{"direct setup without url", second(s.DirectSetup(ctx, DirectSetupRequest{})), "url is required"},
		{"direct session bad url", second(s.DirectSession(ctx, DirectSessionRequest{DirectInput: DirectInput{URL: "x"}})), "absolute http"},
	}
	for _, tt := range tests {
		if tt.err == nil || !strings.Contains(tt.err.Error(), tt.msg) {
			t.Errorf("%s: err = %v, want %q", tt.name, tt.err, tt.msg)
		}
	}
	noKey, _ := New("")
	if _, err := noKey.Streams.ValidateAPIKey(ctx, ""); err == nil || !strings.Contains(err.Error(), "no key") {
		t.Errorf("ValidateAPIKey without any key: %v", err)
	}
}

func TestNew(t *testing.T) {
	c, err := New(testKey)
	if err != nil {
		t.Fatal(err)
	}
	if c.BaseURL() != DefaultBaseURL || c.StreamBaseURL() != DefaultStreamBaseURL || !c.HasAPIKey() {
		t.Errorf("defaults: %s %s", c.BaseURL(), c.StreamBaseURL())
	}
	if c.http.Timeout != DefaultTimeout {
		t.Errorf("timeout = %v", c.http.Timeout)
	}
	c, _ = New(testKey, WithTimeout(time.Second), WithStreamBaseURL("http://127.0.0.1:1"))
	if c.http.Timeout != time.Second || c.StreamBaseURL() != "http://127.0.0.1:1" {
		t.Errorf("options not applied")
	}
	tr := &http.Transport{}
	h := &http.Client{Transport: tr}
	c, _ = New(testKey, WithHTTPClient(h), WithTimeout(time.Second))
	// A copy whose only change is the redirect rule for credentials; the
	// caller's client is left as it was.
	if c.http.Transport != tr || c.http.Timeout != 0 || c.http.CheckRedirect == nil || h.Timeout != 0 || h.CheckRedirect != nil {
		t.Error("given http.Client not used as is")
	}
	for _, tt := range []struct {
		name string
		key  string
		opts []Option
		msg  string
	}{
		{"ws REST base", testKey, []Option{WithBaseURL("wss://h")}, `scheme "wss"`},
		{"relative base", testKey, []Option{WithBaseURL("/api")}, `scheme ""`},
		{"no host", testKey, []Option{WithBaseURL("http://")}, "with a host"},
		{"bad stream base", testKey, []Option{WithStreamBaseURL("ftp://h")}, "stream base URL"},
		{"key with newline", "rs_a\nb", nil, "line break"},
		{"agent with newline", testKey, []Option{WithUserAgent("a\r\nb")}, "line break"},
		{"negative timeout", testKey, []Option{WithTimeout(-1)}, "negative"},
		{"unparsable", testKey, []Option{WithBaseURL("http://h:x\x7f")}, "base URL"},
	} {
		_, err := New(tt.key, tt.opts...)
		if err == nil || !strings.Contains(err.Error(), tt.msg) || strings.Contains(err.Error(), "rs_a") {
			t.Errorf("%s: err = %v, want %q", tt.name, err, tt.msg)
		}
	}
}

func TestUserAgentAndHTTPClient(t *testing.T) {
	var agent string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		agent = r.Header.Get("User-Agent")
		io.WriteString(w, `{"streams":[]}`)
	}))
	defer srv.Close()
	n := 0
	h := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		n++
		return http.DefaultTransport.RoundTrip(r)
	})}
	c, _ := New("", WithBaseURL(srv.URL), WithUserAgent("ingest/1"), WithHTTPClient(h))
	if _, err := c.Streams.List(context.Background(), 0, 0); err != nil {
		t.Fatal(err)
	}
	if agent != "ingest/1" || n != 1 {
		t.Errorf("agent %q, transport calls %d", agent, n)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestTransportErrors(t *testing.T) {
	fail := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		return nil, errors.New("connection refused")
	})}
	c, _ := New(testKey, WithHTTPClient(fail))
	_, err := c.Streams.Get(context.Background(), "s1")
	if err == nil || !strings.Contains(err.Error(), "GET /streams/s1: connection refused") || strings.Contains(err.Error(), testKey) {
		t.Errorf("err = %v", err)
	}

	c, mux := setup(t)
	mux.HandleFunc("GET /v1/streams/{id}", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, `{"id":`) })
	if _, err := c.Streams.Get(context.Background(), "s1"); err == nil || !strings.Contains(err.Error(), "decode response") {
		t.Errorf("truncated JSON: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.Streams.Get(ctx, "s1"); !errors.Is(err, context.Canceled) {
		t.Errorf("canceled context: %v", err)
	}
}

func TestLenientModels(t *testing.T) {
	var s Stream
	in := `{"id":"s1","sse_url":"u","polling_interval":"soon","headers":{"a_b":"c"},"created_at":"not a time","name":5,"status":"ACTIVE"}`
	if err := json.Unmarshal([]byte(in), &s); err != nil {
		t.Fatal(err)
	}
	if s.ID != "s1" || s.SSEURL != "u" || s.PollingInterval != 0 || s.Headers["a_b"] != "c" || !s.CreatedAt.IsZero() ||
		s.Name != "" || s.Status != StatusActive || string(s.Raw) != in {
		t.Errorf("got %+v", s)
	}
	var r DirectSessionResponse
	if err := json.Unmarshal([]byte(`{"session_id":"x","expires_at":1767323045000}`), &r); err != nil || r.SessionID != "x" ||
		!r.ExpiresAt.Equal(time.UnixMilli(1767323045000)) {
		t.Errorf("got %+v, %v", r, err)
	}
	if err := json.Unmarshal([]byte(`[`), &s); err == nil {
		t.Error("malformed JSON accepted")
	}
	ev := Event{Type: EventError, Error: json.RawMessage(`{"message":"boom","code":1}`)}
	if d := ev.ErrorDetail(); d.Message != "boom" || !bytes.Equal(d.Raw, ev.Error) {
		t.Errorf("ErrorDetail = %+v", d)
	}
	if d := (&Event{}).ErrorDetail(); d.Message != "" || d.Raw != nil {
		t.Errorf("ErrorDetail of no error = %+v", d)
	}
}
