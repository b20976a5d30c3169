package checkpoint

import (
	"os"
	"syscall"
)

// fdatasync flushes f's data, and of its metadata only what reading the data
// back needs: a save overwrites bytes inside the file, so its size and
// blocks never change and the inode need not be written.
func fdatasync(f *os.File) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		for {
			serr = syscall.Fdatasync(int(fd))
			if serr != syscall.EINTR {
				return
			}
		}
	}); err != nil {
		return err
	}
	if serr != nil {
		return &os.PathError{Op: "fdatasync", Path: f.Name(), Err: serr}
	}
	return nil
}
