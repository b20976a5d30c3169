package stream

import (
	"errors"
	"fmt"
	"io"
	"sync/atomic"
	"time"
)

// ErrIdle is wrapped by the error of a connection the idle watchdog ended.
var ErrIdle = errors.New("idle timeout")

// Watchdog ends a connection when the server sends nothing for a while. It
// runs only while armed, that is while the reader waits on the server: time
// spent waiting for a slow consumer never counts as server idleness.
type Watchdog struct {
	d     time.Duration
	t     *time.Timer
	fired atomic.Bool
}

// NewWatchdog returns a disarmed watchdog that calls fire (from its own
// goroutine) once it stays armed for d. d <= 0 disables it.
func NewWatchdog(d time.Duration, fire func()) *Watchdog {
	w := &Watchdog{d: d}
	if d > 0 {
		w.t = time.AfterFunc(d, func() {
			w.fired.Store(true)
			fire()
		})
		w.t.Stop()
	}
	return w
}

// Arm starts (or restarts) the countdown.
func (w *Watchdog) Arm() {
	if w.t != nil {
		w.t.Reset(w.d)
	}
}

// Disarm stops the countdown.
func (w *Watchdog) Disarm() {
	if w.t != nil {
		w.t.Stop()
	}
}

// Fired reports whether the watchdog has fired.
func (w *Watchdog) Fired() bool { return w.fired.Load() }

// Err returns the error to report for a connection the watchdog ended.
func (w *Watchdog) Err() error {
	return fmt.Errorf("%w: no data from the server for %v", ErrIdle, w.d)
}

// Reader returns r with every Read watched: armed while it blocks, disarmed
// when bytes (or an error) arrive.
func (w *Watchdog) Reader(r io.Reader) io.Reader {
	if w.t == nil {
		return r
	}
	return &watchedReader{r: r, w: w}
}

type watchedReader struct {
	r io.Reader
	w *Watchdog
}

func (wr *watchedReader) Read(p []byte) (int, error) {
	wr.w.Arm()
	n, err := wr.r.Read(p)
	wr.w.Disarm()
	return n, err
}
