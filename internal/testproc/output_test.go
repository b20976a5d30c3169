package testproc

import (
	"fmt"
	"testing"
)

func TestOutputWakesWaiters(t *testing.T) {
	o := NewOutput()
	s, changed := o.Snapshot()
	if s != "" {
		t.Fatalf("new output holds %q", s)
	}
	select {
	case <-changed:
		t.Fatal("woken before any write")
	default:
	}
	fmt.Fprint(o, "hello ")
	<-changed // closed by the write; blocks for ever otherwise
	fmt.Fprint(o, "world")
	if got := o.String(); got != "hello world" {
		t.Fatalf("String() = %q", got)
	}
}
