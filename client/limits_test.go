package client

import (
	"io"
	"testing"
	"testing/synctest"
	"time"
)

// endless is a reader that never ends and never blocks.
type endless struct{}

func (endless) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// TestBudgetReaderPaces: past the size limit plus MaxNonEventBytes without
// an event, a connection is read at NonEventRate; an event resets the
// budget, and the end of the connection ends a wait.
func TestBudgetReaderPaces(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const maxEvent = 4096
		done := make(chan struct{})
		b := newBudgetReader(endless{}, maxEvent, done)
		free := int64(maxEvent + MaxNonEventBytes)
		start := time.Now()
		if _, err := io.CopyN(io.Discard, b, free); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d != 0 {
			t.Fatalf("the budget took %v, want no wait", d)
		}
		start = time.Now()
		if _, err := io.CopyN(io.Discard, b, 4*NonEventRate); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d < 4*time.Second {
			t.Fatalf("4 s worth of bytes past the budget read in %v", d)
		}
		b.reset()
		start = time.Now()
		if _, err := io.CopyN(io.Discard, b, free/2); err != nil || time.Since(start) != 0 {
			t.Fatalf("after an event: %v, waited %v", err, time.Since(start))
		}
		if _, err := io.CopyN(io.Discard, b, free); err != nil {
			t.Fatal(err)
		}
		close(done)
		if _, err := io.CopyN(io.Discard, b, NonEventRate); err == nil {
			t.Fatal("a closed connection kept reading")
		}
	})
}
