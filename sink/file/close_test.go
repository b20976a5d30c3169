//go:build unix

package file

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"

	"github.com/restless-stream/ingest"
)

// blockingWriter blocks every Write until release is closed; entered is
// closed at the first Write.
type blockingWriter struct {
	entered, release chan struct{}
	out              strings.Builder
}

func newBlockingWriter() *blockingWriter {
	return &blockingWriter{entered: make(chan struct{}), release: make(chan struct{})}
}

func (w *blockingWriter) Write(p []byte) (int, error) {
	select {
	case <-w.entered:
	default:
		close(w.entered)
	}
	<-w.release
	return w.out.Write(p)
}

// waitClosing waits until Close has begun: the sink stops taking Writes.
func waitClosing(s *Sink) {
	for s.Connected() {
		runtime.Gosched()
	}
}

// TestCloseWaitsForWrites: Close refuses new Writes at once, returns only
// after the Write in progress finished, and a second Close is harmless.
func TestCloseWaitsForWrites(t *testing.T) {
	w := newBlockingWriter()
	s := NewWriter(w)
	written := make(chan error, 1)
	go func() { written <- s.Write(context.Background(), []ingest.Record{rec("d", "k", "1")}) }()
	<-w.entered

	closed := make(chan error, 1)
	go func() { closed <- s.Close(context.Background()) }()
	waitClosing(s)
	err := s.Write(context.Background(), []ingest.Record{rec("d", "", "x")})
	var werr ingest.WriteErrors
	if !errors.As(err, &werr) || !errors.Is(werr[0], ingest.ErrClosed) {
		t.Fatalf("Write while closing = %v", err)
	}
	select {
	case err := <-closed:
		t.Fatalf("Close returned %v while a Write was in progress", err)
	default:
	}
	close(w.release)
	if err := <-written; err != nil {
		t.Fatalf("the Write in progress: %v", err)
	}
	if err := <-closed; err != nil {
		t.Fatalf("Close = %v", err)
	}
	if !strings.Contains(w.out.String(), `"value":1`) {
		t.Fatalf("the Write in progress wrote %q", w.out.String())
	}
	if err := s.Close(context.Background()); err != nil {
		t.Fatalf("second Close = %v", err)
	}
}

// TestCloseClosesTheFileWhenContextEnds: a Write blocked in the file (a
// FIFO nobody reads) fails once Close's context ends, since Close closes
// the file under it; Close returns the context's error.
func TestCloseClosesTheFileWhenContextEnds(t *testing.T) {
	path := filepath.Join(t.TempDir(), "fifo")
	if err := syscall.Mkfifo(path, 0o600); err != nil {
		t.Fatal(err)
	}
	r, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0) // a reader that never reads
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	s, err := New(path)
	if err != nil {
		t.Fatal(err)
	}
	big := rec("d", "", strings.Repeat("x", 1<<20)) // more than the pipe holds
	written := make(chan error, 1)
	go func() { written <- s.Write(context.Background(), []ingest.Record{big}) }()
	for s.writes.InProgress() == 0 {
		runtime.Gosched()
	}

	ctx, cancel := context.WithCancel(context.Background())
	closed := make(chan error, 1)
	go func() { closed <- s.Close(ctx) }()
	waitClosing(s)
	cancel()
	if err := <-closed; !errors.Is(err, context.Canceled) {
		t.Fatalf("Close = %v, want context.Canceled", err)
	}
	err = <-written
	var werr ingest.WriteErrors
	if !errors.As(err, &werr) || werr.Count() != 1 {
		t.Fatalf("the Write under a closed file = %v", err)
	}
	if !errors.Is(werr[0], os.ErrClosed) && !errors.Is(werr[0], ingest.ErrClosed) {
		t.Fatalf("the Write under a closed file failed with %v", werr[0])
	}
	_, _ = io.Copy(io.Discard, r)
}
