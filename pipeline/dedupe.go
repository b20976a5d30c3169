package pipeline

import (
	"hash/maphash"
	"math/bits"
)

// fingerprint is the 128-bit hash under which an event_id is remembered.
//
// 128 bits rather than 64: a collision would drop a real event as a false
// duplicate. With 64 bits and a full window of W ids, each new id collides
// with probability W/2^64 (5e-14 at W = 1M), which over 3e10 events (a year at
// 1000 events/s) adds up to about 1 in 600. With 128 bits the same figure is
// below 1e-22, for 8 more bytes per id.
type fingerprint struct{ lo, hi uint64 }

// The seeds are random per process: the window lives in memory only, and an
// unpredictable seed keeps crafted ids from colliding on purpose.
var seedLo, seedHi = maphash.MakeSeed(), maphash.MakeSeed()

func fingerprintOf(id string) fingerprint {
	return fingerprint{maphash.String(seedLo, id), maphash.String(seedHi, id)}
}

// maxWindow bounds the window so that table slots fit in a uint32.
const maxWindow = 1 << 30

// window remembers the fingerprints of acknowledged event ids, bounded in
// count (a ring of size entries, the oldest overwritten first) and in age
// (entries older than ttl are dropped before each use).
//
// Memory: each entry is 24 bytes in the ring (fingerprint + time) plus 2–4
// uint32 slots of an open-addressing index (linear probing, load ≤ 1/2,
// backward-shift deletion): about 33–40 bytes per id. The ring grows by
// doubling up to size, so a quiet stream costs little.
//
// A window is not safe for concurrent use; the lane guards it.
type window struct {
	size int
	ttl  int64 // nanoseconds

	ring  []entry // ring[(head+i)%len(ring)] for i < n, oldest first
	head  int
	n     int
	table []uint32 // ring index + 1; 0 = empty
	mask  uint64
}

type entry struct {
	fp fingerprint
	at int64 // unix nanoseconds of the acknowledgement
}

const initialWindow = 1024

func newWindow(size int, ttlNanos int64) *window {
	w := &window{size: size, ttl: ttlNanos}
	w.resize(min(size, initialWindow))
	return w
}

// Len returns the number of remembered ids.
func (w *window) Len() int { return w.n }

// resize moves the entries, oldest first, into a ring of capacity c and
// rebuilds the index.
func (w *window) resize(c int) {
	ring := make([]entry, c)
	for i := 0; i < w.n; i++ {
		ring[i] = w.ring[(w.head+i)%len(w.ring)]
	}
	slots := 1 << bits.Len(uint(2*c-1)) // power of two ≥ 2c
	w.ring, w.head = ring, 0
	w.table = make([]uint32, slots)
	w.mask = uint64(slots - 1)
	for i := 0; i < w.n; i++ {
		w.insertIndex(ring[i].fp, uint32(i))
	}
}

func (w *window) insertIndex(fp fingerprint, idx uint32) {
	p := fp.lo & w.mask
	for w.table[p] != 0 {
		p = (p + 1) & w.mask
	}
	w.table[p] = idx + 1
}

// expire drops entries acknowledged before now − ttl.
func (w *window) expire(now int64) {
	limit := now - w.ttl
	for w.n > 0 && w.ring[w.head].at < limit {
		w.evictOldest()
	}
}

func (w *window) evictOldest() {
	idx := uint32(w.head)
	w.deleteIndex(w.ring[idx].fp, idx)
	w.ring[idx] = entry{}
	w.head = (w.head + 1) % len(w.ring)
	w.n--
}

// deleteIndex removes the slot pointing at ring index idx, shifting later
// slots of the probe run back so that lookups never stop early.
func (w *window) deleteIndex(fp fingerprint, idx uint32) {
	p := fp.lo & w.mask
	for w.table[p] != idx+1 {
		p = (p + 1) & w.mask
	}
	i := p
	for {
		j := (i + 1) & w.mask
		for {
			s := w.table[j]
			if s == 0 {
				w.table[i] = 0
				return
			}
			home := w.ring[s-1].fp.lo & w.mask
			// The entry at j may move to i only if its home is not in (i, j].
			var stays bool
			if i <= j {
				stays = i < home && home <= j
			} else {
				stays = i < home || home <= j
			}
			if !stays {
				w.table[i] = s
				i = j
				break
			}
			j = (j + 1) & w.mask
		}
	}
}

// Contains reports whether fp was added and is neither evicted nor older
// than ttl at now.
func (w *window) Contains(fp fingerprint, now int64) bool {
	w.expire(now)
	p := fp.lo & w.mask
	for {
		s := w.table[p]
		if s == 0 {
			return false
		}
		if w.ring[s-1].fp == fp {
			return true
		}
		p = (p + 1) & w.mask
	}
}

// Add remembers fp as acknowledged at now, evicting the oldest id when the
// window is full.
func (w *window) Add(fp fingerprint, now int64) {
	w.expire(now)
	if w.n == len(w.ring) {
		if len(w.ring) < w.size {
			w.resize(min(2*len(w.ring), w.size))
		} else {
			w.evictOldest()
		}
	}
	idx := (w.head + w.n) % len(w.ring)
	w.ring[idx] = entry{fp: fp, at: now}
	w.n++
	w.insertIndex(fp, uint32(idx))
}
