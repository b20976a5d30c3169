package testproc

import (
	"errors"
	"fmt"
	"regexp"
	"testing"
	"time"
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

func TestWaitMatch(t *testing.T) {
	a, b := NewOutput(), NewOutput()
	exited := make(chan struct{})
	go fmt.Fprint(b, "ready on port 4222\n")
	m, err := WaitMatch(regexp.MustCompile(`port (\d+)`), time.Minute, exited, a, b)
	if err != nil || m[1] != "4222" {
		t.Fatalf("WaitMatch = %v, %v", m, err)
	}
	close(exited)
	if _, err := WaitMatch(regexp.MustCompile(`never`), time.Minute, exited, a, b); !errors.Is(err, ErrExited) {
		t.Fatalf("after exit: %v, want ErrExited", err)
	}
	if _, err := WaitMatch(regexp.MustCompile(`never`), time.Millisecond, make(chan struct{}), a); !errors.Is(err, ErrTimeout) {
		t.Fatalf("no match: %v, want ErrTimeout", err)
	}
}
