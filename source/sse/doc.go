// Package sse is the daemon's SSE source: it reads a runtime SSE URL
// through package client's subscription ([client.StreamsService.OpenSSE])
// and hands the pipeline raw frames ([ingest.Frame]: the event's bytes and
// its cursor, no decoding) and state changes in package ingest's terms.
//
// Connecting, the WHATWG decoding (package client/sse), resuming from the
// cursor (Last-Event-ID and cursor=), reconnecting with backoff, Retry-After
// and retry:, the idle watchdog and the size limit are client's; the
// answers to each HTTP status are listed on [client.StreamsService.OpenSSE]'s
// side, in package client.
package sse
