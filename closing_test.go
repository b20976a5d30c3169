package ingest

import (
	"context"
	"errors"
	"runtime"
	"testing"
)

// TestWriteGate: Close waits for the Write in progress and refuses new
// ones; a second Close is harmless.
func TestWriteGate(t *testing.T) {
	var g WriteGate
	ctx, done, err := g.Enter(context.Background())
	if err != nil || g.InProgress() != 1 {
		t.Fatalf("Enter = %v, %d in progress", err, g.InProgress())
	}
	closed := make(chan error, 1)
	go func() { closed <- g.Close(context.Background()) }()
	for !g.Closing() {
		runtime.Gosched()
	}
	if _, _, err := g.Enter(context.Background()); !errors.Is(err, ErrClosed) {
		t.Fatalf("Enter while closing = %v", err)
	}
	select {
	case err := <-closed:
		t.Fatalf("Close returned %v with a Write in progress", err)
	default:
	}
	if ctx.Err() != nil {
		t.Fatal("the Write's context ended while Close waits")
	}
	done()
	if err := <-closed; err != nil {
		t.Fatalf("Close = %v", err)
	}
	if err := g.Close(context.Background()); err != nil {
		t.Fatalf("second Close = %v", err)
	}
}

// TestWriteGateGivesUp: when Close's context ends first, the Writes in
// progress see their contexts cancelled, and Close says why it stopped.
func TestWriteGateGivesUp(t *testing.T) {
	var g WriteGate
	parent, cancelParent := context.WithCancel(context.Background())
	defer cancelParent()
	ctx, done, err := g.Enter(parent)
	if err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := g.Close(cctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Close = %v, want context.Canceled", err)
	}
	<-ctx.Done()
	if parent.Err() != nil {
		t.Fatal("the caller's context was cancelled, not only the Write's")
	}
	// Once the Write returns, another Close finds the gate idle.
	done()
	if err := g.Close(context.Background()); err != nil {
		t.Fatalf("Close after the Write returned = %v", err)
	}
}

func TestWriteGateEmpty(t *testing.T) {
	var g WriteGate
	if err := g.Close(context.Background()); err != nil || !g.Closing() {
		t.Fatalf("Close of an unused gate = %v", err)
	}
}
