package dedupe

import "hash/maphash"

// Fingerprint is the 128-bit hash under which an event_id is remembered.
//
// 128 bits rather than 64: a collision would drop a real event as a false
// duplicate. With 64 bits and a full window of W ids, each new id collides
// with probability W/2^64 (5e-14 at W = 1M), which over 3e10 events (a year at
// 1000 events/s) adds up to about 1 in 600. With 128 bits the same figure is
// below 1e-22, for 8 more bytes per id.
type Fingerprint struct{ lo, hi uint64 }

// The seeds are random per process: the window lives in memory only, and an
// unpredictable seed keeps crafted ids from colliding on purpose.
var seedLo, seedHi = maphash.MakeSeed(), maphash.MakeSeed()

// Of returns the fingerprint of event id id.
func Of(id string) Fingerprint {
	return Fingerprint{maphash.String(seedLo, id), maphash.String(seedHi, id)}
}
