//go:build !(darwin || dragonfly || freebsd || linux || netbsd || openbsd || solaris)

package dedupe

import "errors"

// mapRegion is not available here: regions come from the Go heap.
func mapRegion(int) ([]byte, error) { return nil, errors.ErrUnsupported }

func unmapRegion([]byte) error { return errors.ErrUnsupported }
