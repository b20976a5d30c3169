package dedupe

import (
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestWindowCountBound(t *testing.T) {
	w := newWindow(3000, int64(time.Hour))
	for i := range 10000 {
		w.Add(Of(strconv.Itoa(i)), 1)
		if w.Len() > 3000 {
			t.Fatalf("window holds %d ids, above its size", w.Len())
		}
	}
	for i := range 10000 {
		want := i >= 7000
		if got := w.Contains(Of(strconv.Itoa(i)), 1); got != want {
			t.Fatalf("Contains(%d) = %v, want %v", i, got, want)
		}
	}
}

// TestWindowAgeBound checks the documented second granularity of the ttl:
// an id is remembered at least ttl, and forgotten once its second is more
// than ttl (rounded up to whole seconds) before the current one.
func TestWindowAgeBound(t *testing.T) {
	const s = int64(time.Second)
	cases := []struct {
		name     string
		ttl      int64
		at, now  int64 // unix nanoseconds of the Add and of the lookup
		remember bool
	}{
		{"younger than ttl", 60 * s, 0, 30 * s, true},
		{"exactly ttl old", 60 * s, 0, 60 * s, true},
		{"ttl old, same seconds as ttl", 60 * s, 0, 60*s + 999_999_999, true},
		{"a second past ttl", 60 * s, 0, 61 * s, false},
		{"just over ttl across a second boundary", 60 * s, s - 1, 61 * s, false},
		{"nearly ttl + 1s old within the seconds", 60 * s, s, 61*s + 999_999_999, true},
		{"ttl + 1s old", 60 * s, s / 2, 61*s + s/2, false},
		{"ttl with a fraction rounds up", 60*s + 1, 0, 61 * s, true},
		{"ttl with a fraction, a second later", 60*s + 1, 0, 62 * s, false},
		{"sub-second ttl acts as one second", 300 * int64(time.Millisecond), 0, s + s/2, true},
		{"sub-second ttl forgotten after two seconds", 300 * int64(time.Millisecond), 0, 2 * s, false},
		{"epoch far from zero", 60 * s, 1_780_000_000*s + 7, 1_780_000_060*s + 999, true},
		{"epoch far from zero, expired", 60 * s, 1_780_000_000*s + 7, 1_780_000_061 * s, false},
		{"clock before the epoch", 60 * s, 100 * s, 10 * s, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := newWindow(100, c.ttl)
			defer w.close()
			w.Add(Of("id"), c.at)
			if got := w.Contains(Of("id"), c.now); got != c.remember {
				t.Fatalf("Contains after %v = %v, want %v", time.Duration(c.now-c.at), got, c.remember)
			}
			if c.remember != (w.Len() == 1) {
				t.Fatalf("Len = %d", w.Len())
			}
		})
	}
}

// modelForgets is the documented expiry rule: the id's second is more than
// ttl, rounded up to whole seconds, before now's.
func modelForgets(at, now, ttl int64) bool {
	ttlSec := (ttl + 1e9 - 1) / 1e9
	return seconds(now)-seconds(at) > ttlSec
}

// TestWindowModel checks the window against a simple model through random
// adds, lookups and expiries, across growth and wrap-around, with regions
// from mmap and from the heap.
func TestWindowModel(t *testing.T) {
	for _, heap := range []bool{false, true} {
		for _, size := range []int{1, 2, 7, 1500, 5000} {
			for _, ttl := range []time.Duration{300 * time.Millisecond, 1000 * time.Second} {
				t.Run(fmt.Sprintf("heap=%v/size=%d/ttl=%v", heap, size, ttl), func(t *testing.T) {
					r := rand.New(rand.NewPCG(1, uint64(size)))
					w := newWindow(size, int64(ttl))
					w.heap = heap
					defer w.close()
					type rec struct {
						id string
						at int64
					}
					var model []rec // oldest first
					now := int64(1_780_000_000e9)
					for step := range 30000 {
						now += r.Int64N(int64(700 * time.Millisecond))
						id := strconv.Itoa(r.IntN(3 * size))
						if r.IntN(2) == 0 {
							w.Add(Of(id), now)
							model = append(model, rec{id, now})
						}
						for len(model) > 0 && (len(model) > size || modelForgets(model[0].at, now, int64(ttl))) {
							model = model[1:]
						}
						want := false
						for _, m := range model {
							if m.id == id {
								want = true
							}
						}
						if got := w.Contains(Of(id), now); got != want {
							t.Fatalf("step %d: Contains(%s) = %v, want %v", step, id, got, want)
						}
						if w.Len() != len(model) {
							t.Fatalf("step %d: Len = %d, want %d", step, w.Len(), len(model))
						}
					}
					if w.mem.mapped == heap {
						t.Fatalf("region mapped = %v with heap = %v", w.mem.mapped, heap)
					}
				})
			}
		}
	}
}

// TestWindowGrowth checks that the region grows by doubling up to the size,
// holds every id it was given through each move, and costs nothing before
// the first Add.
func TestWindowGrowth(t *testing.T) {
	for _, heap := range []bool{false, true} {
		t.Run(fmt.Sprintf("heap=%v", heap), func(t *testing.T) {
			const size = 5000
			w := newWindow(size, int64(time.Hour))
			w.heap = heap
			defer w.close()
			if w.Contains(Of("x"), 0) || w.bytes() != 0 {
				t.Fatalf("an empty window holds %d bytes", w.bytes())
			}
			for i := range size {
				w.Add(Of(strconv.Itoa(i)), int64(i))
			}
			if got, want := w.bytes(), 28*size; got != want {
				t.Fatalf("full window of %d holds %d bytes, want %d", size, got, want)
			}
			for i := range size {
				if !w.Contains(Of(strconv.Itoa(i)), size) {
					t.Fatalf("id %d lost while growing", i)
				}
			}
		})
	}
}

// TestWindowClose checks that a closed window has given its memory back,
// keeps no view into it, and refuses any later use instead of touching it.
func TestWindowClose(t *testing.T) {
	for _, heap := range []bool{false, true} {
		t.Run(fmt.Sprintf("heap=%v", heap), func(t *testing.T) {
			w := newWindow(100, int64(time.Hour))
			w.heap = heap
			for i := range 50 {
				w.Add(Of(strconv.Itoa(i)), 0)
			}
			if w.mem.mapped == heap {
				t.Fatalf("region mapped = %v with heap = %v", w.mem.mapped, heap)
			}
			w.close()
			if w.mem.b != nil || w.fps != nil || w.ats != nil || w.table != nil || w.Len() != 0 || w.bytes() != 0 {
				t.Fatal("closed window still refers to its memory")
			}
			w.close() // a second close is harmless
			for name, use := range map[string]func(){
				"Contains": func() { w.Contains(Of("1"), 0) },
				"Add":      func() { w.Add(Of("1"), 0) },
			} {
				func() {
					defer func() {
						if recover() == nil {
							t.Errorf("%s after close did not panic", name)
						}
					}()
					use()
				}()
			}
		})
	}
}

// TestWindowNeverAdded checks that closing a window that never allocated is
// fine.
func TestWindowNeverAdded(t *testing.T) {
	w := newWindow(100, int64(time.Hour))
	if w.bytes() != 0 {
		t.Fatal("a window that was never added to holds memory")
	}
	w.close()
	w.close() // a second close is harmless too
}

// residentBytes returns the process's resident set from /proc/self/statm,
// or false where there is none.
func residentBytes() (int64, bool) {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0, false
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0, false
	}
	pages, err := strconv.ParseInt(f[1], 10, 64)
	if err != nil {
		return 0, false
	}
	return pages * int64(os.Getpagesize()), true
}

func benchmarkWindow(b *testing.B, size int) {
	// Twice the window: an id comes back only after it was evicted.
	ids := make([]string, 2*size)
	for i := range ids {
		ids[i] = strconv.Itoa(1780793376562 + i)
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	rss0, rssOK := residentBytes()
	w := newWindow(size, int64(24*time.Hour))
	defer w.close()
	for i, id := range ids[:size] {
		w.Add(Of(id), int64(i))
	}
	rss1, _ := residentBytes()
	runtime.GC()
	runtime.ReadMemStats(&after)
	heapPerID := (float64(after.HeapAlloc) - float64(before.HeapAlloc)) / float64(size)
	b.ReportAllocs()
	// One op is the steady-state work per event: a lookup of a new id and
	// its add, which evicts the oldest.
	n := int64(size)
	for i := 0; b.Loop(); i++ {
		fp := Of(ids[(size+i)%len(ids)])
		if w.Contains(fp, n) {
			b.Fatal("false duplicate")
		}
		w.Add(fp, n)
		n++
	}
	// bytes/id: the window's own memory, wherever it lives; heap-B/id: what
	// the Go heap grew by; rss-B/id: what the resident set grew by while
	// the window filled (Linux).
	b.ReportMetric(float64(w.bytes())/float64(size), "bytes/id")
	b.ReportMetric(heapPerID, "heap-B/id")
	if rssOK {
		b.ReportMetric(float64(rss1-rss0)/float64(size), "rss-B/id")
	}
	runtime.KeepAlive(w)
}

func BenchmarkWindow100k(b *testing.B) { benchmarkWindow(b, 100_000) }
func BenchmarkWindow1M(b *testing.B)   { benchmarkWindow(b, 1_000_000) }
