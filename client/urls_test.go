package client

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"testing"
)

func TestBuildSSEAndWebSocketURL(t *testing.T) {
	tests := []struct {
		name, base string
		t          RuntimeTarget
		sse, ws    string
	}{
		{"default base", "", RuntimeTarget{StreamID: "stream_123"},
			"https://stream.restlessapi.stream?streamId=stream_123", "wss://stream.restlessapi.stream/ws?streamId=stream_123"},
		{"session and since", "", RuntimeTarget{SessionID: "session_1", Since: "2026-01-01T00:00:00Z"},
			"https://stream.restlessapi.stream?sessionId=session_1&since=2026-01-01T00%3A00%3A00Z",
			"wss://stream.restlessapi.stream/ws?sessionId=session_1&since=2026-01-01T00%3A00%3A00Z"},
		{"http base with port", "http://127.0.0.1:8080", RuntimeTarget{StreamID: "a b&c"},
			"http://127.0.0.1:8080?streamId=a+b%26c", "ws://127.0.0.1:8080/ws?streamId=a+b%26c"},
		{"trailing slash", "http://h/", RuntimeTarget{StreamID: "s"}, "http://h/?streamId=s", "ws://h/ws?streamId=s"},
		{"base path", "https://h/restless", RuntimeTarget{StreamID: "s"}, "https://h/restless?streamId=s", "wss://h/ws/restless?streamId=s"},
		{"base query kept", "https://h?region=eu", RuntimeTarget{StreamID: "s"}, "https://h?region=eu&streamId=s", "wss://h/ws?region=eu&streamId=s"},
		{"ws base", "wss://h/ws", RuntimeTarget{StreamID: "s"}, "https://h?streamId=s", "wss://h/ws?streamId=s"},
		{"ws base without path", "ws://h", RuntimeTarget{StreamID: "s"}, "http://h?streamId=s", "ws://h/ws?streamId=s"},
		{"uppercase scheme", "HTTPS://h", RuntimeTarget{StreamID: "s"}, "https://h?streamId=s", "wss://h/ws?streamId=s"},
		{"fragment dropped", "https://h#x", RuntimeTarget{StreamID: "s"}, "https://h?streamId=s", "wss://h/ws?streamId=s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sse, err := BuildSSEURL(tt.base, tt.t)
			if err != nil || sse != tt.sse {
				t.Errorf("BuildSSEURL = %q, %v; want %q", sse, err, tt.sse)
			}
			ws, err := BuildWebSocketURL(tt.base, tt.t)
			if err != nil || ws != tt.ws {
				t.Errorf("BuildWebSocketURL = %q, %v; want %q", ws, err, tt.ws)
			}
		})
	}
}

func TestBuildURLErrors(t *testing.T) {
	tests := []struct {
		name, base string
		t          RuntimeTarget
		msg        string
	}{
		{"no id", "", RuntimeTarget{}, "is required"},
		{"both ids", "", RuntimeTarget{StreamID: "a", SessionID: "b"}, "not both"},
		{"ftp base", "ftp://h", RuntimeTarget{StreamID: "a"}, `scheme "ftp"`},
		{"relative base", "/stream", RuntimeTarget{StreamID: "a"}, `scheme ""`},
		{"no host", "https:///x", RuntimeTarget{StreamID: "a"}, "with a host"},
		{"unparsable", "https://h:bad\x7f", RuntimeTarget{StreamID: "a"}, "stream base URL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, build := range []func(string, RuntimeTarget) (string, error){BuildSSEURL, BuildWebSocketURL} {
				u, err := build(tt.base, tt.t)
				if err == nil || !strings.Contains(err.Error(), tt.msg) {
					t.Errorf("got %q, %v; want an error containing %q", u, err, tt.msg)
				}
			}
		})
	}
}

func TestToWebSocketURL(t *testing.T) {
	tests := []struct{ in, want, err string }{
		{"https://stream.restlessapi.stream?streamId=stream_123", "wss://stream.restlessapi.stream/ws?streamId=stream_123", ""},
		{"http://127.0.0.1:9/direct?url=x", "ws://127.0.0.1:9/ws/direct?url=x", ""},
		{"https://h/a%2Fb?x=1", "wss://h/ws/a%2Fb?x=1", ""},
		{"wss://h/ws?streamId=1", "wss://h/ws?streamId=1", ""},
		{"ws://h/anything", "ws://h/anything", ""},
		{"ftp://h", "", `scheme "ftp"`},
		{"/relative", "", "absolute"},
		{"http://h:bad\x7f", "", "websocket URL"},
	}
	for _, tt := range tests {
		got, err := ToWebSocketURL(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("ToWebSocketURL(%q) = %q, %v; want error %q", tt.in, got, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ToWebSocketURL(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

func TestBuildDirectURL(t *testing.T) {
	full := DirectInput{
		URL:               "https://api.example.com/orders?x=1&y=2",
		Method:            MethodPost,
		Headers:           map[string]string{"B": "2", "Accept": "application/json"},
		Body:              map[string]any{"status": "open", "q": "<a&b>"},
		JQFilter:          ".items[]",
		PayloadMode:       PayloadJSONPatch,
		PollingInterval:   2.5,
		PollingStrategies: []PollingStrategy{{Start: "09:00", End: "17:00", Days: []string{"MON"}, Timezone: "Europe/Paris", PollingInterval: 5}},
		APIKey:            "rs_key",
	}
	tests := []struct {
		name, base string
		in         DirectInput
		sse, ws    string
	}{
		{"url only", "", DirectInput{URL: "https://api.example.com/orders"},
			"https://stream.restlessapi.stream/direct?url=https%3A%2F%2Fapi.example.com%2Forders",
			"wss://stream.restlessapi.stream/ws/direct?url=https%3A%2F%2Fapi.example.com%2Forders"},
		{"everything", "http://127.0.0.1:1/", full,
			"http://127.0.0.1:1/direct?url=https%3A%2F%2Fapi.example.com%2Forders%3Fx%3D1%26y%3D2&method=POST" +
				"&headers=%7B%22Accept%22%3A%22application%2Fjson%22%2C%22B%22%3A%222%22%7D" +
				"&body=%7B%22q%22%3A%22%3Ca%26b%3E%22%2C%22status%22%3A%22open%22%7D" +
				"&jqFilter=.items%5B%5D&payloadMode=JSON_PATCH&pollingInterval=2.5" +
				"&pollingStrategies=%5B%7B%22start%22%3A%2209%3A00%22%2C%22end%22%3A%2217%3A00%22%2C%22days%22%3A%5B%22MON%22%5D%2C%22timezone%22%3A%22Europe%2FParis%22%2C%22pollingInterval%22%3A5%7D%5D" +
				"&apiKey=rs_key",
			""},
		{"raw body and empty headers", "wss://h/ws", DirectInput{URL: "http://x", Headers: map[string]string{}, Body: json.RawMessage(`[1, 2]`), PollingInterval: 30},
			"https://h/direct?url=http%3A%2F%2Fx&body=%5B1%2C2%5D&pollingInterval=30",
			"wss://h/ws/direct?url=http%3A%2F%2Fx&body=%5B1%2C2%5D&pollingInterval=30"},
		{"false body is present", "http://h", DirectInput{URL: "http://x", Body: false},
			"http://h/direct?url=http%3A%2F%2Fx&body=false", "ws://h/ws/direct?url=http%3A%2F%2Fx&body=false"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sse, err := BuildDirectSSEURL(tt.base, tt.in)
			if err != nil || sse != tt.sse {
				t.Errorf("BuildDirectSSEURL =\n %q, %v; want\n %q", sse, err, tt.sse)
			}
			ws, err := BuildDirectWebSocketURL(tt.base, tt.in)
			if tt.ws != "" && (err != nil || ws != tt.ws) {
				t.Errorf("BuildDirectWebSocketURL = %q, %v; want %q", ws, err, tt.ws)
			}
			// Round trip through the server side.
			u, _ := url.Parse(sse)
			back, err := ParseDirectQuery(u.Query())
			if err != nil {
				t.Fatalf("ParseDirectQuery: %v", err)
			}
			want := tt.in
			if len(want.Headers) == 0 {
				want.Headers = nil
			}
			if want.Body != nil {
				b, _ := compactJSON(want.Body)
				want.Body = json.RawMessage(b)
			}
			if !reflect.DeepEqual(back, want) {
				t.Errorf("ParseDirectQuery = %+v, want %+v", back, want)
			}
		})
	}
}

func TestBuildDirectURLErrors(t *testing.T) {
	tests := []struct {
		name string
		in   DirectInput
		msg  string
	}{
		{"no url", DirectInput{}, "url is required"},
		{"relative url", DirectInput{URL: "/orders"}, "absolute http or https"},
		{"ftp url", DirectInput{URL: "ftp://h/x"}, "absolute http or https"},
		{"no host", DirectInput{URL: "https:///x"}, "absolute http or https"},
		{"bad method", DirectInput{URL: "http://h", Method: "get"}, `method "get"`},
		{"bad payload mode", DirectInput{URL: "http://h", PayloadMode: "PATCH"}, `payload mode "PATCH"`},
		{"negative interval", DirectInput{URL: "http://h", PollingInterval: -1}, "polling interval -1"},
		{"bad strategy interval", DirectInput{URL: "http://h", PollingStrategies: []PollingStrategy{{PollingInterval: -2}}}, "polling strategy 0"},
		{"body not JSON", DirectInput{URL: "http://h", Body: make(chan int)}, "body"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.in.APIKey = "rs_secretkey"
			_, err := BuildDirectSSEURL("", tt.in)
			if err == nil || !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("error = %v, want one containing %q", err, tt.msg)
			}
			if strings.Contains(err.Error(), "rs_secretkey") {
				t.Errorf("error %q reveals the API key", err)
			}
		})
	}
	if _, err := BuildDirectSSEURL("mailto:x", DirectInput{URL: "http://h"}); err == nil {
		t.Error("BuildDirectSSEURL accepted a mailto base")
	}
	if _, err := BuildDirectWebSocketURL("", DirectInput{}); err == nil {
		t.Error("BuildDirectWebSocketURL accepted an empty input")
	}
}

func TestParseDirectQueryErrors(t *testing.T) {
	for _, q := range []string{
		"", "url=http://h&headers=[1]", "url=http://h&body={", "url=http://h&pollingInterval=x",
		"url=http://h&pollingStrategies={}", "url=http://h&method=FETCH",
	} {
		v, _ := url.ParseQuery(q)
		if _, err := ParseDirectQuery(v); err == nil {
			t.Errorf("ParseDirectQuery(%q) succeeded", q)
		}
	}
}

// TestRuntimeRoutes checks that the runtime route patterns match the URLs
// the builders produce, so a server registering them serves what clients
// ask for.
func TestRuntimeRoutes(t *testing.T) {
	mux := http.NewServeMux()
	for _, route := range []string{RouteSSE, RouteWebSocket, RouteDirectSSE, RouteDirectWebSocket} {
		mux.HandleFunc(route, func(http.ResponseWriter, *http.Request) {})
	}
	base := "http://127.0.0.1:8787"
	target := RuntimeTarget{StreamID: "s", Since: "1"}
	direct := DirectInput{URL: "http://x"}
	tests := []struct {
		route string
		build func() (string, error)
	}{
		{RouteSSE, func() (string, error) { return BuildSSEURL(base, target) }},
		{RouteWebSocket, func() (string, error) { return BuildWebSocketURL(base, target) }},
		{RouteDirectSSE, func() (string, error) { return BuildDirectSSEURL(base, direct) }},
		{RouteDirectWebSocket, func() (string, error) { return BuildDirectWebSocketURL(base, direct) }},
	}
	for _, tt := range tests {
		t.Run(tt.route, func(t *testing.T) {
			raw, err := tt.build()
			if err != nil {
				t.Fatal(err)
			}
			u, _ := url.Parse(raw)
			u.Scheme = strings.Replace(u.Scheme, "ws", "http", 1)
			req := httptest.NewRequest(http.MethodGet, u.String(), nil)
			if _, pattern := mux.Handler(req); pattern != tt.route {
				t.Errorf("%s is served by %q, want %q", raw, pattern, tt.route)
			}
		})
	}
}

func TestRuntimeParamNames(t *testing.T) {
	s, _ := BuildSSEURL("http://h", RuntimeTarget{StreamID: "a", Since: "2026-01-01"})
	u, _ := url.Parse(s)
	if q := u.Query(); q.Get(ParamStreamID) != "a" || q.Get(ParamSince) != "2026-01-01" {
		t.Errorf("%s does not carry %s and %s", s, ParamStreamID, ParamSince)
	}
	s, _ = BuildSSEURL("http://h", RuntimeTarget{SessionID: "b"})
	if u, _ = url.Parse(s); u.Query().Get(ParamSessionID) != "b" {
		t.Errorf("%s does not carry %s", s, ParamSessionID)
	}
	s, _ = BuildDirectSSEURL("http://h", DirectInput{URL: "http://x", APIKey: "k"})
	if u, _ = url.Parse(s); u.Query().Get(ParamAPIKey) != "k" {
		t.Errorf("%s does not carry %s", s, ParamAPIKey)
	}
}

func TestParseDirectQueryMethodCase(t *testing.T) {
	v, _ := url.ParseQuery("url=http://h&method=post")
	in, err := ParseDirectQuery(v)
	if err != nil || in.Method != MethodPost {
		t.Fatalf("ParseDirectQuery = %+v, %v; want method POST", in, err)
	}
}
