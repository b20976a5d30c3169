// Package sse decodes Server-Sent Events streams ("text/event-stream").
//
// [Decoder] turns an event stream into events exactly as the WHATWG HTML
// "Server-sent events" parsing and interpretation algorithm does, byte
// stream to dispatched event. It has no dependency beyond the standard
// library and can be used on its own; package client reads its SSE
// subscriptions with it.
//
// # Decoding
//
// The decoder is conformant to the letter, including the corners that many
// SSE libraries get wrong: a leading byte order mark, also split across
// reads; CR, LF and CR LF line ends, a CR LF split across reads counting as
// one; invalid UTF-8 replaced as a browser does (one U+FFFD per maximal
// subpart); "data:" alone dispatching an empty event while a block without
// data dispatches nothing yet still sets the last event ID; an id containing
// NULL ignored; retry only for ASCII digits; an unterminated last event
// discarded at the end of the stream.
//
// Its conformance table is rebuilt from the web-platform-tests eventsource
// format cases plus one case per rule, and a fuzz target checks that any
// split of the input into reads gives the same events as one read and as a
// string-based reference written like the specification.
//
// # Limits
//
// What a single event keeps is limited ([Decoder.SetMaxEventBytes], default
// [DefaultMaxEventBytes], 4 MiB); the rest of a larger event is read and
// dropped, never held in memory. [Decoder.Decode] reports such an event with
// an error wrapping [ErrEventTooLarge]; [Decoder.DecodeLimited] returns its
// first bytes marked too large, so that a caller can dead-letter it. Either
// way decoding continues with the next event.
package sse
