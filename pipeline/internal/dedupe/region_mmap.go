//go:build darwin || dragonfly || freebsd || linux || netbsd || openbsd || solaris

package dedupe

import "syscall"

// mapRegion maps n bytes of anonymous private memory, zeroed, paid for in
// resident memory only as pages are touched.
func mapRegion(n int) ([]byte, error) {
	return syscall.Mmap(-1, 0, n, syscall.PROT_READ|syscall.PROT_WRITE,
		syscall.MAP_ANON|syscall.MAP_PRIVATE|syscall.MAP_NORESERVE)
}

func unmapRegion(b []byte) error { return syscall.Munmap(b) }
