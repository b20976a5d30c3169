package dedupe

import (
	"math"
	"math/bits"
)

// MaxSize bounds a window so that ring positions fit in a uint32 index.
const MaxSize = 1 << 30

// window remembers the fingerprints of acknowledged event ids, bounded in
// count (a ring of size entries, the oldest overwritten first) and in age
// (entries older than ttl are dropped before each use).
//
// Memory: an entry is 20 bytes in the ring (the 16-byte Fingerprint and a
// 4-byte time) plus 2 uint32 slots of an open-addressing index (linear
// probing, load ≤ 1/2, backward-shift deletion, a slot count of exactly
// twice the ring's): 28 bytes per id. Ring and index live in one region
// (region.go), off the Go heap where the system allows, and are allocated at
// the first Add, so a lane that never publishes costs nothing.
//
// The ring and index grow by doubling up to size, each growth moving the
// entries into a new region and freeing the old one at once. Reserving the
// whole ring up front would not be enough to skip that: ids hash to slots
// all over the index, so a quiet stream would soon touch every page of an
// index sized for a full window (800 KB at 100000 ids), where a grown one
// stays as small as its ids. Growth is also what keeps quiet streams cheap
// where regions come from the heap.
//
// Time is kept in whole seconds from the window's epoch (the second of its
// first Add), as a uint32: an id is remembered at least ttl after its
// acknowledgement, and forgotten once its second is more than ttl, rounded
// up to whole seconds, older than the current second, so at the latest when
// it is ttl rounded up plus one second old. A ttl under one second thus
// acts as one second. Times before the epoch count as the epoch; uint32
// seconds last 136 years.
//
// A window is not safe for concurrent use; its Filter guards it.
type window struct {
	size  int
	ttl   int64 // whole seconds, rounded up
	epoch int64 // unix second of the first Add
	heap  bool  // regions from the heap even where mmap works (tests)
	used  bool  // an id was added: the window has had memory

	mem    region
	closed bool
	fps    []Fingerprint // ring: fps[(head+i)%len(fps)] for i < n, oldest first
	ats    []uint32      // seconds since epoch of each ring entry
	table  []uint32      // ring index + 1; 0 = empty
	slots  uint64        // len(table)
	head   int
	n      int
}

const initialWindow = 1024

func newWindow(size int, ttlNanos int64) *window {
	return &window{size: size, ttl: (ttlNanos + 1e9 - 1) / 1e9}
}

// Len returns the number of remembered ids.
func (w *window) Len() int { return w.n }

// bytes returns the size of the window's region.
func (w *window) bytes() int { return len(w.mem.b) }

// seconds returns the whole unix seconds of unix nanoseconds now.
func seconds(now int64) int64 {
	s := now / 1e9
	if now%1e9 < 0 {
		s--
	}
	return s
}

// resize moves the entries, oldest first, into a new region with a ring of
// capacity c and an index of 2c slots, and frees the old region.
func (w *window) resize(c int) {
	slots := 2 * c
	fpsOff, atsOff, tableOff := 0, 16*c, 20*c
	mem := allocRegion(tableOff+4*slots, w.heap)
	fps := view[Fingerprint](mem, fpsOff, c)
	ats := view[uint32](mem, atsOff, c)
	for i := 0; i < w.n; i++ {
		j := (w.head + i) % len(w.fps)
		fps[i], ats[i] = w.fps[j], w.ats[j]
	}
	w.mem.free()
	w.mem, w.fps, w.ats, w.head = mem, fps, ats, 0
	w.table = view[uint32](mem, tableOff, slots)
	w.slots = uint64(slots)
	for i := 0; i < w.n; i++ {
		w.insertIndex(fps[i], uint32(i))
	}
}

// close frees the window's memory. The window must not be used afterwards:
// its views are dropped first, and a later use panics.
func (w *window) close() {
	w.fps, w.ats, w.table, w.slots, w.head, w.n = nil, nil, nil, 0, 0, 0
	w.mem.free()
	w.closed = true
}

// home is the index slot where the probe for fp starts: fp.lo scaled to
// [0, slots) by a multiply (no power-of-two slot count needed).
func (w *window) home(fp Fingerprint) uint64 {
	hi, _ := bits.Mul64(fp.lo, w.slots)
	return hi
}

func (w *window) next(p uint64) uint64 {
	if p++; p == w.slots {
		return 0
	}
	return p
}

func (w *window) insertIndex(fp Fingerprint, idx uint32) {
	p := w.home(fp)
	for w.table[p] != 0 {
		p = w.next(p)
	}
	w.table[p] = idx + 1
}

// expire drops entries whose second is more than ttl before now's.
func (w *window) expire(now int64) {
	t := seconds(now) - w.epoch
	for w.n > 0 && t-int64(w.ats[w.head]) > w.ttl {
		w.evictOldest()
	}
}

func (w *window) evictOldest() {
	idx := uint32(w.head)
	w.deleteIndex(w.fps[idx], idx)
	if w.head++; w.head == len(w.fps) {
		w.head = 0
	}
	w.n--
}

// deleteIndex removes the slot pointing at ring index idx, shifting later
// slots of the probe run back so that lookups never stop early.
func (w *window) deleteIndex(fp Fingerprint, idx uint32) {
	p := w.home(fp)
	for w.table[p] != idx+1 {
		p = w.next(p)
	}
	i := p
	for {
		j := w.next(i)
		for {
			s := w.table[j]
			if s == 0 {
				w.table[i] = 0
				return
			}
			home := w.home(w.fps[s-1])
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
			j = w.next(j)
		}
	}
}

func (w *window) mustBeOpen() {
	if w.closed {
		panic("dedupe: window used after close")
	}
}

// Contains reports whether fp was added and is neither evicted nor expired
// at now (unix nanoseconds).
func (w *window) Contains(fp Fingerprint, now int64) bool {
	w.mustBeOpen()
	w.expire(now)
	if w.n == 0 {
		return false
	}
	p := w.home(fp)
	for {
		s := w.table[p]
		if s == 0 {
			return false
		}
		if w.fps[s-1] == fp {
			return true
		}
		p = w.next(p)
	}
}

// Add remembers fp as acknowledged at now (unix nanoseconds), evicting the
// oldest id when the window is full.
func (w *window) Add(fp Fingerprint, now int64) {
	w.mustBeOpen()
	if w.fps == nil {
		w.epoch, w.used = seconds(now), true
		w.resize(min(w.size, initialWindow))
	}
	w.expire(now)
	if w.n == len(w.fps) {
		if len(w.fps) < w.size {
			w.resize(min(2*len(w.fps), w.size))
		} else {
			w.evictOldest()
		}
	}
	idx := w.head + w.n
	if idx >= len(w.fps) {
		idx -= len(w.fps)
	}
	t := seconds(now) - w.epoch
	w.fps[idx], w.ats[idx] = fp, uint32(min(max(t, 0), math.MaxUint32))
	w.n++
	w.insertIndex(fp, uint32(idx))
}
