package pipeline

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"strconv"
	"testing"
	"time"
)

func TestWindowCountBound(t *testing.T) {
	w := newWindow(3000, int64(time.Hour))
	for i := range 10000 {
		w.Add(fingerprintOf(strconv.Itoa(i)), 1)
		if w.Len() > 3000 {
			t.Fatalf("window holds %d ids, above its size", w.Len())
		}
	}
	for i := range 10000 {
		want := i >= 7000
		if got := w.Contains(fingerprintOf(strconv.Itoa(i)), 1); got != want {
			t.Fatalf("Contains(%d) = %v, want %v", i, got, want)
		}
	}
}

func TestWindowAgeBound(t *testing.T) {
	ttl := int64(time.Minute)
	w := newWindow(100, ttl)
	w.Add(fingerprintOf("old"), 0)
	w.Add(fingerprintOf("new"), int64(30*time.Second))
	if !w.Contains(fingerprintOf("old"), ttl) {
		t.Fatal("an id exactly ttl old was forgotten")
	}
	if w.Contains(fingerprintOf("old"), ttl+1) {
		t.Fatal("an id older than ttl is still remembered")
	}
	if !w.Contains(fingerprintOf("new"), ttl+1) {
		t.Fatal("a young id was forgotten")
	}
	if w.Len() != 1 {
		t.Fatalf("Len = %d after expiry, want 1", w.Len())
	}
}

// TestWindowModel checks the window against a simple model through random
// adds, lookups and expiries, across growth and wrap-around.
func TestWindowModel(t *testing.T) {
	for _, size := range []int{1, 2, 7, 1500, 5000} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			r := rand.New(rand.NewPCG(1, uint64(size)))
			ttl := int64(1000)
			w := newWindow(size, ttl)
			type rec struct {
				id string
				at int64
			}
			var model []rec // oldest first
			now := int64(0)
			for step := range 30000 {
				now += int64(r.IntN(3))
				id := strconv.Itoa(r.IntN(3 * size))
				if r.IntN(2) == 0 {
					w.Add(fingerprintOf(id), now)
					model = append(model, rec{id, now})
				}
				for len(model) > 0 && (len(model) > size || model[0].at < now-ttl) {
					model = model[1:]
				}
				want := false
				for _, m := range model {
					if m.id == id {
						want = true
					}
				}
				if got := w.Contains(fingerprintOf(id), now); got != want {
					t.Fatalf("step %d: Contains(%s) = %v, want %v", step, id, got, want)
				}
				if w.Len() != len(model) {
					t.Fatalf("step %d: Len = %d, want %d", step, w.Len(), len(model))
				}
			}
		})
	}
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
	w := newWindow(size, int64(24*time.Hour))
	for i, id := range ids[:size] {
		w.Add(fingerprintOf(id), int64(i))
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	bytesPerID := float64(after.HeapAlloc-before.HeapAlloc) / float64(size)
	b.ReportAllocs()
	// One op is the steady-state work per event: a lookup of a new id and
	// its add, which evicts the oldest.
	n := int64(size)
	for i := 0; b.Loop(); i++ {
		fp := fingerprintOf(ids[(size+i)%len(ids)])
		if w.Contains(fp, n) {
			b.Fatal("false duplicate")
		}
		w.Add(fp, n)
		n++
	}
	b.ReportMetric(bytesPerID, "bytes/id")
	runtime.KeepAlive(w)
}

func BenchmarkWindow100k(b *testing.B) { benchmarkWindow(b, 100_000) }
func BenchmarkWindow1M(b *testing.B)   { benchmarkWindow(b, 1_000_000) }
