// Package emulator is a local Restless Stream: the REST management API, the
// SSE and WebSocket runtime, pollers that turn real REST endpoints into
// events, HMAC signing, replay by cursor, direct streams and sessions, a demo
// API, a firehose for load tests and fault injection. It follows the contract
// of the project's PROTOCOL.md and serves everything from one HTTP server, so
// a client points both its REST base URL and its stream base URL at it.
//
//	e, err := emulator.New(emulator.Options{APIKeys: []string{key}, DemoAPI: true})
//	...
//	err = e.Start("127.0.0.1:0") // or mount e.Handler() in an httptest.Server
//	defer e.Close()
//
// # REST API (x-api-key; PROTOCOL.md §1)
//
// The emulator serves every route of package client's route table (the
// client.Route* constants: streams.go for REST, urls.go for the runtime) with
// client's models, so client's Streams service works against it unchanged. What the
// emulator adds to the contract: a list page is 1 to 100 streams
// (client.DefaultListLimit by default); create answers 201 and is the only
// answer with hmacSecret; update restarts the stream's poller, start and
// stop start and stop it, delete ends its connections; credit usage is one
// credit per upstream poll, per UTC day; validate-api-key answers {id: key,
// affected: whether the key is accepted}.
//
// A missing or unknown key answers 401, an unknown id 404, a bad body 400 with
// {statusCode, message: [..one message per problem, naming the field..],
// error}. Unknown body members are rejected ("property x should not exist").
// Defaults: method GET, status ACTIVE, payloadMode FULL_DATA,
// pollingInterval Options.DefaultPollingInterval. A polling strategy whose
// window contains the current time overrides pollingInterval. sseUrl and
// websocketUrl are built on Options.PublicURL or the request's Host.
//
// jqFilter is a jq program, run by gojq (github.com/itchyny/gojq) on each
// upstream body: a filter that does not compile is a 400 naming jqFilter. The
// program sees no environment and loads no modules; each run is stopped
// after a second, and its result may be no larger than
// Options.MaxUpstreamBytes. One result is the document; no result publishes
// nothing for that poll; several results (or a failing run) publish an error
// event with code JQ_FILTER_FAILED (collect results with [ … ] instead).
//
// # Runtime (Authorization: Bearer <key>, or apiKey=; PROTOCOL.md §2)
//
// The runtime routes are client.RouteSSE (?streamId= or ?sessionId=),
// client.RouteWebSocket (one text message per event), and client.RouteDirectSSE
// and client.RouteDirectWebSocket for direct streams, whose query
// client.ParseDirectQuery reads.
//
// SSE frames are exactly "id: <event_id>\nevent: <type>\ndata: <json>\n\n",
// flushed whenever no further event is ready; idle connections get ": keepalive"
// comments every Options.KeepAlive. WebSocket connections are pinged every
// Options.PingInterval. When a stream is deleted, a session expires or a
// finite firehose ends, SSE responses end and WebSockets close with 1000.
//
// Where a connection starts: the Last-Event-ID header
// (client.HeaderLastEventID), else cursor= (client.ParamCursor), else since=
// (client.ParamSince: a cursor, or an ISO-8601 timestamp: events with an id,
// in epoch milliseconds, at or after it). A cursor gets every later event still in the
// replay buffer (Options.ReplayBuffer per stream), then live events; a cursor
// that is older than the buffer or not an event id of this emulator gets
// everything buffered. Without any of them a connection starts with the
// stream's latest update (its current document), then live events.
//
// Direct streams with the same inputs share one poller and buffer, kept for
// Options.DirectIdle after their last connection. Direct sessions live
// Options.SessionTTL; creating one again with the same dedupeKey returns the
// same session, with the new inputs and a renewed expiry. Direct streams and
// sessions are signed with Options.DirectSecret (see Emulator.DirectSecret).
//
// # Events (PROTOCOL.md §3, §4)
//
// Events are written in snake_case with every envelope member present:
// {"type","meta":{"timestamp","attempt_id","status","latency_ms",
// "payload_mode_fallback"},"data","error","signature","event_id"}. event_id is
// epoch milliseconds made strictly increasing per stream. data is the
// upstream body in the canonical form of §4, so it is byte for byte what was
// signed: signature = hex HMAC-SHA256 of data with the stream's secret.
//
// A poller fetches the upstream (method, headers, body) every interval and
// publishes an update when the body changed. On JSON_PATCH streams the update
// carries an RFC 6902 patch against the previous update's document
// (package emulator/jsonpatch), except the first update each connection gets
// (and the first after it lost events to a full buffer), which carries the
// full document with payload_mode_fallback "FULL_DATA"; the signature covers
// whichever data is sent. A failing poll (transport error, non-2xx status, a
// body that is not JSON, a failing jqFilter) publishes an unsigned error event,
// {"message","status","code"} with the upstream status in meta.status, once
// per run of identical failures.
//
// # Emulator endpoints (x-api-key or Bearer, except the demo API)
//
//	GET    /_emulator/health                    {ok, connections}
//	GET    /_emulator/demo/orders               the demo upstream (no auth): a new order every second
//	POST   /_emulator/streams                   StreamSpec → StreamInfo (choose id and secret)
//	POST   /_emulator/firehose                  FirehoseConfig → StreamInfo
//	GET    /_emulator/streams/{id}              {id, kind, hmacSecret, subscribers, lastEventId, faults}
//	DELETE /_emulator/streams/{id}              any stream, firehose or session
//	GET|POST|PUT|DELETE /_emulator/streams/{id}/faults   Faults as JSON
//	POST   /_emulator/streams/{id}/events       {"data": …} or {"error": "msg", "status": n} → {eventId}
//
// With Options.DemoAPI the stream "demo" (DemoStreamID) polls the demo API
// every second, for `ingest demo` and the README examples.
//
// # State file
//
// With Options.StateFile, managed streams (configuration, secret, last
// event_id and document) and live sessions are written as JSON after every
// change and at Close, atomically, and loaded by New: ids stay increasing and
// a JSON_PATCH stream's next patch is against the document before the
// restart. Replay buffers, firehoses, faults and the demo stream are not kept.
package emulator
