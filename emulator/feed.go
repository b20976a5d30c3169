package emulator

import (
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/restless-stream/ingest/emulator/jsonpatch"
)

// storedEvent is one event in a stream's replay buffer, encoded once and
// shared by every connection.
type storedEvent struct {
	seq    uint64
	id     int64
	idStr  string
	typ    string
	update bool
	// full is the event as a connection that needs the whole document gets it
	// (on FULL_DATA streams, and error events, the only form).
	full []byte
	// patch is, on JSON_PATCH streams, the update carrying the RFC 6902 patch
	// against the previous update's document; nil when there is none.
	patch []byte
}

// feed is a stream's event log: a bounded ring of encoded events that live
// connections follow and reconnecting ones replay from.
type feed struct {
	mu         sync.Mutex
	ring       []*storedEvent
	next       uint64 // seq of the next event; the first event has seq 1
	lastID     int64
	lastUpdate uint64 // seq of the latest update event; 0 = none
	doc        []byte // canonical document of the latest update
	wake       chan struct{}
	closed     bool
	// bytes is the size of the buffered events; once over maxBytes the
	// oldest are dropped (floor is the oldest seq kept), the newest always
	// kept: an upstream's large bodies cannot fill the emulator's memory.
	bytes    int64
	maxBytes int64
	floor    uint64
}

func newFeed(size int, maxBytes int64, lastID int64, doc []byte) *feed {
	return &feed{ring: make([]*storedEvent, size), next: 1, lastID: lastID, doc: doc, wake: make(chan struct{}), maxBytes: maxBytes}
}

// size is what ev holds in memory, roughly.
func (ev *storedEvent) size() int64 { return int64(len(ev.full) + len(ev.patch) + 64) }

// nextID returns the next event id: epoch milliseconds, made strictly increasing.
func (f *feed) nextID(now time.Time) int64 {
	id := now.UnixMilli()
	if id <= f.lastID {
		id = f.lastID + 1
	}
	f.lastID = id
	return id
}

// publishUpdate appends an update event carrying doc (canonical JSON). It
// returns false when doc equals the previous document (nothing to publish).
// force publishes even then.
func (f *feed) publishUpdate(m eventMeta, doc []byte, secret string, patchMode, force bool) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return false, nil
	}
	if !force && f.doc != nil && string(f.doc) == string(doc) {
		return false, nil
	}
	var patchData []byte
	if patchMode && f.doc != nil {
		p, err := jsonpatch.Diff(f.doc, doc)
		if err != nil {
			return false, fmt.Errorf("diff: %w", err)
		}
		if patchData, err = canonical(p); err != nil {
			return false, fmt.Errorf("diff: %w", err)
		}
	}
	id := f.nextID(m.Time)
	idStr := strconv.FormatInt(id, 10)
	ev := &storedEvent{id: id, idStr: idStr, typ: "update", update: true}
	fm := m
	if patchMode {
		fm.Fallback = fallbackFullData
	}
	ev.full = appendEvent(nil, "update", fm, doc, nil, sign(secret, doc), idStr)
	if patchData != nil {
		ev.patch = appendEvent(nil, "update", m, patchData, nil, sign(secret, patchData), idStr)
	}
	f.doc = doc
	f.appendLocked(ev)
	return true, nil
}

// publishError appends an error event (unsigned, no data).
func (f *feed) publishError(m eventMeta, errJSON []byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return
	}
	id := f.nextID(m.Time)
	idStr := strconv.FormatInt(id, 10)
	ev := &storedEvent{id: id, idStr: idStr, typ: "error"}
	ev.full = appendEvent(nil, "error", m, nil, errJSON, "", idStr)
	f.appendLocked(ev)
}

func (f *feed) appendLocked(ev *storedEvent) {
	ev.seq = f.next
	slot := ev.seq % uint64(len(f.ring))
	if old := f.ring[slot]; old != nil {
		f.bytes -= old.size()
	}
	f.ring[slot] = ev
	f.bytes += ev.size()
	f.next++
	for f.maxBytes > 0 && f.bytes > f.maxBytes {
		o := f.oldestLocked()
		if o >= ev.seq {
			break
		}
		if old := f.ring[o%uint64(len(f.ring))]; old != nil {
			f.bytes -= old.size()
			f.ring[o%uint64(len(f.ring))] = nil
		}
		f.floor = o + 1
	}
	if ev.update {
		f.lastUpdate = ev.seq
	}
	close(f.wake)
	f.wake = make(chan struct{})
}

func (f *feed) oldestLocked() uint64 {
	oldest := uint64(1)
	if n := uint64(len(f.ring)); f.next > n {
		oldest = f.next - n
	}
	return max(oldest, f.floor)
}

// close ends the feed: followers drain what they have and stop.
func (f *feed) close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.closed {
		f.closed = true
		close(f.wake)
	}
}

// state returns the last id and document, for the state file.
func (f *feed) state() (int64, []byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.lastID, f.doc
}

// position says where a connection starts reading.
type position struct {
	kind  int // posLatest, posAfter, posFrom
	value int64
}

const (
	posLatest = iota // no cursor: the latest update, then live events
	posAfter         // a cursor: events with a larger id
	posFrom          // a since timestamp: events with an id (epoch ms) at or after it
)

// start returns the seq a connection reading from p begins at. An unknown or
// too old cursor starts at the oldest buffered event.
func (f *feed) start(p position) uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	oldest := f.oldestLocked()
	if p.kind == posLatest {
		if f.lastUpdate >= oldest && f.lastUpdate > 0 {
			return f.lastUpdate
		}
		return f.next
	}
	// Ids increase with seq: binary search the buffered range.
	lo, hi := oldest, f.next
	for lo < hi {
		mid := lo + (hi-lo)/2
		id := f.ring[mid%uint64(len(f.ring))].id
		if (p.kind == posAfter && id > p.value) || (p.kind == posFrom && id >= p.value) {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	return lo
}

// read copies up to len(buf) events from seq on into buf. It returns how many,
// the seq to read next (skipping events that fell out of the buffer: gap is
// then true), and, when n is 0, a channel closed when more arrives. done is
// true once the feed is closed and everything was read.
func (f *feed) read(seq uint64, buf []*storedEvent) (n int, next uint64, gap bool, wake <-chan struct{}, done bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if oldest := f.oldestLocked(); seq < oldest {
		seq, gap = oldest, true
	}
	for n < len(buf) && seq < f.next {
		buf[n] = f.ring[seq%uint64(len(f.ring))]
		n++
		seq++
	}
	return n, seq, gap, f.wake, n == 0 && f.closed
}
