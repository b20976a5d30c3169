// Package client is the Go SDK of Restless Stream: the REST management API
// (Client and its Streams service), the typed models, the runtime URL
// builders, the runtime event and its decoder, and HMAC signing and
// verification. It speaks the wire contract of the project's PROTOCOL.md and
// mirrors the official Python SDK operation for operation.
//
// It imports only the standard library.
//
// Values the hosted service does not document (REST paths, the direct-URL
// encoding, the HMAC canonical form) are each fixed in one place: the route
// table in streams.go, the runtime routes, query parameters and header
// names in urls.go and the Canonicalizer in canonical.go. Servers (the
// emulator) take the contract from the same names. The defaults the rest of
// the module shares (DefaultMaxEventBytes, DefaultDestination) are in
// defaults.go.
package client
