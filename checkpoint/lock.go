package checkpoint

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// ErrHeld is matched (errors.Is) by the error of [LockDir] and [AcquireLease]
// when another process already owns the checkpoints: two daemons reading the
// same streams would publish every event twice.
var ErrHeld = errors.New("checkpoint: held by another process")

// HeldError says which checkpoints are held, and by whom (as the holder wrote
// it: process id, host name, since when).
type HeldError struct {
	What   string // "directory /var/lib/ingest/checkpoints", "stream orders in nats_kv bucket b"
	Holder string // "pid 4242 on host ingest-0 since 2026-01-02T15:04:05Z"
}

func (e *HeldError) Error() string {
	return fmt.Sprintf("checkpoint: %s is held by another process (%s); stop it first, or point this one at other checkpoints", e.What, e.Holder)
}

// Is makes errors.Is(err, ErrHeld) true.
func (e *HeldError) Is(target error) bool { return target == ErrHeld }

// LockFileName is the lock file LockDir keeps in a checkpoint directory.
const LockFileName = ".lock"

// maxLockHolderLen bounds what is read back of a lock file or lease value.
const maxLockHolderLen = 512

// holderID is this process's description in lock files and leases; token tells
// two processes of one pid apart (containers on one host).
func holderID() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "unknown"
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("pid %d on host %s since %s (token %s)", os.Getpid(), host,
		time.Now().UTC().Format(time.RFC3339), hex.EncodeToString(b[:]))
}

// DirLock is an exclusive lock on a checkpoint directory, held by this process
// until Unlock (or its exit: the kernel releases it even after kill -9).
type DirLock struct {
	f    *os.File
	path string
}

// LockDir takes the exclusive lock of dir (creating dir when missing) without
// waiting: when another process holds it, the error is a *HeldError naming
// that process. The lock is an flock(2) on dir/.lock, which also holds the
// holder's description; on systems without flock it is not taken.
//
// Locks are per open file: a second LockDir of the same directory in the same
// process fails too.
func LockDir(dir string) (*DirLock, error) {
	if dir == "" {
		return nil, errors.New("checkpoint: lock: empty directory")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("checkpoint: lock: create directory: %w", err)
	}
	path := filepath.Join(dir, LockFileName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("checkpoint: lock: %w", err)
	}
	held, err := tryLock(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("checkpoint: lock %s: %w", path, err)
	}
	if held {
		holder := readHolder(f)
		f.Close()
		return nil, &HeldError{What: "directory " + dir, Holder: holder}
	}
	// The holder's description, for the error of the next one to try.
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(holderID()+"\n"), 0)
	}
	return &DirLock{f: f, path: path}, nil
}

// Path returns the lock file.
func (l *DirLock) Path() string { return l.path }

// Unlock releases the lock. The file stays: removing it would let a process
// that opened it before the removal lock a file nobody else sees.
func (l *DirLock) Unlock() error {
	if l == nil || l.f == nil {
		return nil
	}
	_ = l.f.Truncate(0)
	err := l.f.Close() // closing the last descriptor releases the flock
	l.f = nil
	return err
}

func readHolder(f *os.File) string {
	b, err := io.ReadAll(io.LimitReader(io.NewSectionReader(f, 0, maxLockHolderLen), maxLockHolderLen))
	if err != nil || len(strings.TrimSpace(string(b))) == 0 {
		return "a process that did not say which"
	}
	return sanitizeHolder(string(b))
}

// sanitizeHolder keeps a holder's description printable and short: it comes
// from a file or a bucket anyone may write.
func sanitizeHolder(s string) string {
	s = strings.TrimSpace(s)
	if len(s) > maxLockHolderLen {
		s = s[:maxLockHolderLen]
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
}
