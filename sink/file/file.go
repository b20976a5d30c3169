// Package file writes records as JSON lines to a file or to any io.Writer
// (standard output).
//
// Each record becomes one line, in delivery order:
//
//	{"destination":"...","key":"...","headers":{"name":"value",...},"value":<the event JSON>}
//
// The value is embedded unchanged when it is valid JSON in valid UTF-8, except
// that whitespace outside strings is removed (nothing is re-escaped or
// reordered); other bytes are written as a JSON string, with invalid UTF-8
// replaced by U+FFFD. A value whose record sets ingest.Record.JSONValue (the
// pipeline does so for events its decoder validated) is not validated again
// when it holds no line break. A nil key is written as null. Header values are strings;
// when two headers share a name, the last one wins, since a JSON object holds
// one value per name.
//
// A batch is encoded in memory and written with one write call; the file sink
// then syncs the file before Write returns, so a nil error means the lines are
// on disk. The file is opened for appending, created with mode 0600 (an
// existing file keeps its mode). A batch whose write or sync fails (a full
// disk: ENOSPC in the middle of the batch) is cut off again: the file is
// truncated back to its size before the batch, so that the retry appends
// the batch once, with no torn line and no repeat. A crash can leave a torn
// last line: New ends such a line with a newline before appending, and
// [ReadFile] skips torn lines.
//
// Close follows the contract of ingest.ErrClosed: it stops taking Writes,
// waits for those in progress, then syncs and closes the file. When its
// context ends first it closes the file under them, so that they fail.
package file

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/restless-stream/ingest"
)

// Sink appends records as JSON lines. It is safe for concurrent use; each
// Write's lines stay together.
type Sink struct {
	w    io.Writer
	f    *os.File // nil for NewWriter
	name string

	mu       sync.Mutex // held while writing to w
	dirty    bool       // a failed write may have left a partial line
	encoders sync.Pool

	writes  ingest.WriteGate
	release sync.Once
}

// New opens path for appending, creating it (mode 0600) when missing. If the
// file ends in a torn line, New ends that line first so that the next record
// starts on a line of its own.
func New(path string) (*Sink, error) {
	if path == "" {
		return nil, errors.New("file sink: path is empty")
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("file sink: open: %w", err)
	}
	s := &Sink{w: f, f: f, name: path}
	torn, err := endsTorn(path)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("file sink: %w", err)
	}
	s.dirty = torn
	return s, nil
}

// NewWriter returns a sink that writes lines to w, such as os.Stdout. It
// never syncs: standard output gives no durability. If w has a
// Flush() error method (a *bufio.Writer), Write calls it. w stays the
// caller's: Close does not close it, and a Write blocked in w returns only
// when w does.
func NewWriter(w io.Writer) *Sink {
	return &Sink{w: w, name: "writer"}
}

// endsTorn reports whether the file at path is non-empty and does not end
// with a newline.
func endsTorn(path string) (bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return false, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return false, err
	}
	if st.Size() == 0 {
		return false, nil
	}
	var b [1]byte
	if _, err := f.ReadAt(b[:], st.Size()-1); err != nil {
		return false, err
	}
	return b[0] != '\n', nil
}

type flusher interface{ Flush() error }

// maxKeptBuffer is the largest encoding buffer the pool keeps: a batch of
// 512 events of 1 KiB encodes to about 800 KiB, but one of large events
// could reach gigabytes and must not stay pinned.
const maxKeptBuffer = 4 << 20

func (s *Sink) putEncoder(e *encoder) {
	if cap(e.buf) > maxKeptBuffer {
		e.buf = nil
	}
	s.encoders.Put(e)
}

// Write appends one line per record and, for a file, syncs it. It returns
// nil only when every line was written (and synced); otherwise every record
// of the batch is reported failed in an ingest.WriteErrors, since the lines
// are written together. After Close has begun, every record fails with
// ingest.ErrClosed.
func (s *Sink) Write(ctx context.Context, recs []ingest.Record) error {
	if len(recs) == 0 {
		return nil
	}
	// The context is not watched past this point: a write call cannot be
	// cancelled, and Close closes the file under it when it gives up.
	_, done, err := s.writes.Enter(ctx)
	if err != nil {
		return failAll(len(recs), fmt.Errorf("file sink: write %s: %w", s.name, err))
	}
	defer done()
	if err := ctx.Err(); err != nil {
		return failAll(len(recs), err)
	}
	e, _ := s.encoders.Get().(*encoder)
	if e == nil {
		e = new(encoder)
	}
	defer s.putEncoder(e)
	buf := e.buf[:0]
	for i := range recs {
		buf = e.appendLine(buf, &recs[i])
	}
	e.buf = buf

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.dirty {
		if _, err := s.w.Write([]byte{'\n'}); err != nil {
			return failAll(len(recs), fmt.Errorf("file sink: write %s: %w", s.name, err))
		}
		s.dirty = false
	}
	var before int64 = -1 // the file's size before the batch
	if s.f != nil {
		st, err := s.f.Stat()
		if err != nil {
			return failAll(len(recs), fmt.Errorf("file sink: stat %s: %w", s.name, err))
		}
		before = st.Size()
	}
	if _, err := s.w.Write(buf); err != nil {
		return failAll(len(recs), s.undo(before, fmt.Errorf("file sink: write %s: %w", s.name, err)))
	}
	if fl, ok := s.w.(flusher); ok {
		if err := fl.Flush(); err != nil {
			s.dirty = true
			return failAll(len(recs), fmt.Errorf("file sink: flush %s: %w", s.name, err))
		}
	}
	if s.f != nil {
		if err := s.f.Sync(); err != nil {
			return failAll(len(recs), s.undo(before, fmt.Errorf("file sink: sync %s: %w", s.name, err)))
		}
	}
	return nil
}

// undo takes back what a failed batch may have left in the file: it
// truncates the file to its size before the batch (before), so that the
// retry appends the whole batch once. When that is impossible (a writer
// that is not a file, a truncate that fails) the next batch starts on a
// line of its own, and the error says the file keeps part of the batch.
func (s *Sink) undo(before int64, err error) error {
	if s.f == nil || before < 0 {
		s.dirty = true
		return err
	}
	if terr := s.f.Truncate(before); terr != nil {
		s.dirty = true
		return fmt.Errorf("%w (and the partial batch could not be removed: %v)", err, terr)
	}
	s.dirty = false
	return err
}

// Connected reports whether the sink accepts writes: true until Close.
func (s *Sink) Connected() bool { return !s.writes.Closing() }

// Close closes the sink as ingest.ErrClosed describes: it stops taking
// Writes and waits for those in progress, then syncs and closes the file.
// When ctx ends first, it closes the file at once, so that the Writes in
// progress fail (a Write blocked in a NewWriter sink's writer returns when
// the writer does), and returns ctx's error. For a NewWriter sink it only
// stops taking Writes; the writer is the caller's to close.
func (s *Sink) Close(ctx context.Context) error {
	err := s.writes.Close(ctx)
	var rerr error
	s.release.Do(func() { rerr = s.closeFile(err == nil) })
	if err != nil {
		return fmt.Errorf("file sink: close %s: %w", s.name, err)
	}
	return rerr
}

// closeFile syncs (when no Write is in progress: idle) and closes the file.
func (s *Sink) closeFile(idle bool) error {
	if s.f == nil {
		return nil
	}
	var err error
	if idle {
		s.mu.Lock()
		defer s.mu.Unlock()
		err = s.f.Sync()
	}
	if cerr := s.f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("file sink: close %s: %w", s.name, err)
	}
	return nil
}

func failAll(n int, err error) ingest.WriteErrors {
	errs := make(ingest.WriteErrors, n)
	for i := range errs {
		errs[i] = err
	}
	return errs
}
