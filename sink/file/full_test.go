package file

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/restless-stream/ingest"
)

// shortWriter writes the first allow bytes it is given to f, then fails
// with ENOSPC, as a file system that fills up in the middle of a write.
type shortWriter struct {
	f     *os.File
	allow int
}

func (w *shortWriter) Write(b []byte) (int, error) {
	n := min(len(b), w.allow)
	n, err := w.f.Write(b[:n])
	w.allow -= n
	if err != nil {
		return n, err
	}
	if n < len(b) {
		return n, syscall.ENOSPC
	}
	return n, nil
}

func batchOf(from, n int) []ingest.Record {
	recs := make([]ingest.Record, n)
	for i := range recs {
		id := strconv.Itoa(from + i)
		recs[i] = rec("restless.orders", "orders", `{"event_id":"`+id+`","data":"`+strings.Repeat("x", 200)+`"}`, "restless-event-id", id)
	}
	return recs
}

// checkLines reads path and checks it holds records 1..n, once each, in
// order, with no torn line.
func checkLines(t *testing.T, path string, n int) {
	t.Helper()
	lines, torn, err := ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if torn != 0 {
		t.Errorf("%d torn lines", torn)
	}
	if len(lines) != n {
		t.Errorf("%d lines, want %d (each record once)", len(lines), n)
	}
	for i, l := range lines {
		if got, want := l.Headers["restless-event-id"], strconv.Itoa(i+1); got != want {
			t.Fatalf("line %d: event %s, want %s", i, got, want)
		}
	}
}

// TestFailedBatchLeavesNoTrace: a batch whose write fails in the middle
// (ENOSPC) is taken back: the file is as it was before the batch, and the
// retry appends it once, with no torn line and no repeat.
func TestFailedBatchLeavesNoTrace(t *testing.T) {
	for _, allow := range []int{0, 1, 100, 1000, 2500} {
		t.Run(fmt.Sprint("after ", allow, " bytes"), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "events.jsonl")
			s, err := New(path)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close(context.Background())
			ctx := context.Background()
			if err := s.Write(ctx, batchOf(1, 5)); err != nil {
				t.Fatal(err)
			}
			st, _ := os.Stat(path)
			s.w = &shortWriter{f: s.f, allow: allow}
			err = s.Write(ctx, batchOf(6, 10))
			var werrs ingest.WriteErrors
			if !errors.As(err, &werrs) || !errors.Is(werrs[0], syscall.ENOSPC) {
				t.Fatalf("Write = %v, want ENOSPC for every record", err)
			}
			if st2, _ := os.Stat(path); st2.Size() != st.Size() {
				t.Errorf("after the failed batch the file is %d bytes, want %d as before it", st2.Size(), st.Size())
			}
			s.w = s.f // space again: the retry
			if err := s.Write(ctx, batchOf(6, 10)); err != nil {
				t.Fatal(err)
			}
			checkLines(t, path, 15)
		})
	}
}

// TestFullDiskTmpfs fills a real, small file system (a 64 KiB tmpfs) until
// a batch fails with ENOSPC, frees space and retries: every record is in
// the file once. It needs the right to mount; without it, it is skipped
// (the injected failure of TestFailedBatchLeavesNoTrace covers the same
// path everywhere).
func TestFullDiskTmpfs(t *testing.T) {
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size=64k"); err != nil {
		t.Skipf("cannot mount a tmpfs here (%v)", err)
	}
	t.Cleanup(func() { _ = syscall.Unmount(dir, syscall.MNT_DETACH) })
	// Space taken by something else, given back once the disk is full.
	filler := filepath.Join(dir, "filler")
	if err := os.WriteFile(filler, make([]byte, 32<<10), 0o600); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "events.jsonl")
	s, err := New(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(context.Background())
	ctx := context.Background()
	next, failed := 1, false
	for range 1000 {
		err := s.Write(ctx, batchOf(next, 7))
		if err == nil {
			next += 7
			continue
		}
		var werrs ingest.WriteErrors
		if !errors.As(err, &werrs) || !errors.Is(werrs[0], syscall.ENOSPC) {
			t.Fatalf("Write = %v, want ENOSPC", err)
		}
		failed = true
		break
	}
	if !failed {
		t.Fatal("the 64 KiB file system never filled up")
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	if err := s.Write(ctx, batchOf(next, 7)); err != nil {
		t.Fatalf("retry after space was freed: %v", err)
	}
	checkLines(t, path, next+6)
}

// TestFileMode: a new file is created 0600.
func TestFileMode(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.jsonl")
	s, err := New(path)
	if err != nil {
		t.Fatal(err)
	}
	s.Close(context.Background())
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", st.Mode().Perm())
	}
}
