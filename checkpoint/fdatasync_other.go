//go:build !linux

package checkpoint

import "os"

// fdatasync is f.Sync where the system has no cheaper data-only flush.
func fdatasync(f *os.File) error { return f.Sync() }
