package dedupe

import "unsafe"

// A region is a block of pointer-free memory holding one dedupe window: its
// ring of fingerprints and times, and its index.
//
// Where the operating system allows it (region_mmap.go), a region is an
// anonymous private mapping from mmap, outside the Go heap, the technique of
// off-heap caches such as VictoriaMetrics' fastcache. Two reasons:
//
//   - The garbage collector sets its heap target at twice the live heap
//     (GOGC=100). Full windows are most of a busy daemon's live heap (10
//     streams × 100000 ids), so on the heap they would double the memory
//     the process may grow to, while the garbage they are weighed against
//     is the churn of event buffers. Off the heap they count once.
//   - The kernel backs a mapping with memory only as its pages are first
//     touched, so a window that was given room and has not filled it costs
//     address space, not resident memory (MAP_NORESERVE: no swap is
//     reserved for it either).
//
// The memory holds no Go pointers, so the collector need not see it. It is
// given back with munmap when the window grows into a larger region and
// when the window is closed (its lane ended); nothing keeps a slice into it
// after that, the window drops its views first.
//
// Elsewhere, or when mmap fails, a region is an ordinary heap allocation
// (make) and freeing it only drops the reference.
type region struct {
	b      []byte
	mapped bool // from mmap: must be unmapped
}

// allocRegion returns a zeroed region of n bytes, 8-byte aligned, mapped
// outside the heap unless heap is set or mapping is not possible.
func allocRegion(n int, heap bool) region {
	if !heap {
		if b, err := mapRegion(n); err == nil {
			return region{b: b, mapped: true}
		}
	}
	words := make([]uint64, (n+7)/8)
	return region{b: unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(words))), n)}
}

// free gives the memory back. The region must not be used afterwards.
func (r *region) free() {
	if r.mapped && r.b != nil {
		// Unmapping an address range this process mapped cannot fail but
		// for a bug; the memory would only stay reserved.
		_ = unmapRegion(r.b)
	}
	*r = region{}
}

// view returns n values of type T stored from byte off of the region. T
// must hold no pointers and off must be aligned for T.
func view[T any](r region, off, n int) []T {
	if n == 0 {
		return nil
	}
	return unsafe.Slice((*T)(unsafe.Pointer(&r.b[off])), n)
}
