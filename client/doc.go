// Package client is the Go SDK of Restless Stream: the REST management API
// (Client and its Streams service), the typed models, the runtime URL
// builders, the runtime event and its decoder, HMAC signing and
// verification, and subscribing to the runtime streams over SSE and
// WebSocket. It speaks the wire contract of the project's PROTOCOL.md.
//
// # The Python SDK, operation for operation
//
// It offers what the official Python SDK's client.streams offers: the
// twelve REST operations on StreamsService, and the four subscribe
// functions, each an iterator of decoded events:
//
//	subscribe_sse               StreamsService.SubscribeSSE
//	subscribe_direct_sse        StreamsService.SubscribeDirectSSE
//	subscribe_websocket         StreamsService.SubscribeWebSocket
//	subscribe_direct_websocket  StreamsService.SubscribeDirectWebSocket
//
// with every option of theirs: cursor (WithCursor, then followed from the
// events), since (WithSince), reconnect (WithReconnect, on by default),
// max_reconnects (WithMaxReconnects, counted as the Python SDK counts
// them; unbounded without it), retry_seconds (WithRetryDelay), the
// WebSocket's open timeout (WithOpenTimeout) and extra headers
// (WithHeader; the API key owns Authorization). The API key is sent as
// "Authorization: Bearer" on runtime requests and x-api-key on REST ones.
//
// Where it differs, on purpose: the operations live on Client.Streams only,
// not also as top-level methods; there is one client, not a sync and an
// async one, and WebSocket subscriptions are not reserved to either;
// reconnects are paced by default by a jittered exponential Backoff (1s,
// 2s, … up to 30s) rather than a fixed second, which WithRetryDelay(time.Second)
// restores; and the Go SDK adds what a long-lived Go consumer needs:
// WithVerifier (events that fail verification come as errors), an idle
// timeout, an event size limit, state reports (WithStateFunc), direct
// sessions that renew themselves (WithDirectSession), and the lower level
// under the iterators, Subscription, whose Next returns raw events without
// decoding them (the ingest daemon reads its streams through it).
//
// # Dependencies and layout
//
// It imports the standard library and github.com/coder/websocket, nothing
// else. The WHATWG SSE decoder is package client/sse; the reconnect loop,
// the idle watchdog and the retry hints are an internal package shared by
// every subscription.
//
// Values the hosted service does not document (REST paths, the direct-URL
// encoding, the HMAC canonical form) are each fixed in one place: the route
// table in streams.go, the runtime routes, query parameters and header
// names in urls.go and the Canonicalizer in canonical.go. Servers (the
// emulator) take the contract from the same names. The defaults the rest of
// the module shares (DefaultMaxEventBytes, DefaultDestination) are in
// defaults.go.
package client
