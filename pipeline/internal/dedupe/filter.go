// Package dedupe is a stream's memory of the event ids it published: a
// window of the fingerprints of acknowledged ids, bounded in count and age
// and kept off the Go heap, and the set of ids on their way to the broker.
//
// It knows fingerprints and times, not events or lanes: the pipeline
// fingerprints each event_id with Of, asks SeenOrClaim when it reads the
// event, and reports the fingerprints the broker acknowledged (Acknowledge)
// or refused for good (Release).
package dedupe

import (
	"sync"
	"time"
)

// Filter decides which event ids of one stream are duplicates: those whose
// publish was acknowledged within the window, and those claimed and not yet
// settled (in flight). It is safe for concurrent use: a lane's reader claims
// while its writer settles.
type Filter struct {
	mu       sync.Mutex
	win      *window
	inflight map[Fingerprint]struct{}
}

// New returns a Filter remembering at most size acknowledged ids (at most
// MaxSize), each for at least ttl after its acknowledgement. It holds no
// memory until the first Acknowledge.
func New(size int, ttl time.Duration) *Filter {
	return &Filter{win: newWindow(size, int64(ttl)), inflight: make(map[Fingerprint]struct{})}
}

// SeenOrClaim reports whether fp is a duplicate at now (unix nanoseconds):
// acknowledged within the window, or claimed and not yet settled. When it
// is not, it claims fp, so that a second copy read before the first is
// acknowledged is a duplicate too.
func (f *Filter) SeenOrClaim(fp Fingerprint, now int64) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.inflight[fp]; ok || f.win.Contains(fp, now) {
		return true
	}
	f.inflight[fp] = struct{}{}
	return false
}

// Acknowledge settles the claims of fps, whose records the broker
// acknowledged at now (unix nanoseconds): they enter the window.
func (f *Filter) Acknowledge(fps []Fingerprint, now int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, fp := range fps {
		delete(f.inflight, fp)
		f.win.Add(fp, now)
	}
}

// Release gives up the claims of fps, whose records the broker refused for
// good: they were not published, so a later copy is not a duplicate.
func (f *Filter) Release(fps []Fingerprint) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, fp := range fps {
		delete(f.inflight, fp)
	}
}

// Close gives the window's memory back. The Filter must not be used
// afterwards (a later use panics rather than touch freed memory); a second
// Close does nothing.
func (f *Filter) Close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.win.close()
	f.inflight = nil
}

// Freed reports whether the Filter was closed and holds no memory any more.
func (f *Filter) Freed() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	w := f.win
	return w.closed && w.mem.b == nil && w.fps == nil && w.ats == nil && w.table == nil
}

// Used reports whether the Filter ever remembered an id, and so held memory.
func (f *Filter) Used() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.win.used
}
