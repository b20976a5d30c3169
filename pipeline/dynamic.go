package pipeline

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
)

// StopMode says how Stop ends a lane.
type StopMode int

const (
	// Drain stops reading, writes what the lane holds, saves its checkpoint
	// at the last handled event and then ends the lane: nothing read is
	// lost, and the next owner of the stream (a later Start, or another
	// process) resumes exactly where this one stopped. The clean removal
	// and handover.
	Drain StopMode = iota
	// Abort ends the lane at once: once Stop is called the lane starts no
	// write and saves no checkpoint, and when Stop returns none is under
	// way. What was read and not yet checkpointed is read again by the
	// stream's next owner. This is the fencing case: a stream this process
	// learnt it no longer owns.
	Abort
)

func (m StopMode) String() string {
	switch m {
	case Drain:
		return "drain"
	case Abort:
		return "abort"
	}
	return "StopMode(" + strconv.Itoa(int(m)) + ")"
}

// Errors of Start and Stop.
var (
	// ErrStopped: the pipeline is stopping or has stopped; no lane starts.
	ErrStopped = errors.New("pipeline: stopped")
	// ErrUnknownStream: no lane of that name is in the set.
	ErrUnknownStream = errors.New("pipeline: no such stream")
	// ErrStreamRunning: a lane of that name is in the set and has not
	// ended; Stop it first.
	ErrStreamRunning = errors.New("pipeline: stream already running")
)

// laneRun is one lane of the set and the means to end it.
type laneRun struct {
	lane     *lane
	launched bool               // its goroutine was started (Run runs)
	removing bool               // Stop was called on it
	cancelR  context.CancelFunc // stops its reading: drain
	cancelW  context.CancelFunc // stops its writing: at once
	done     chan struct{}      // closed when its goroutine returned
	err      error              // a *StreamError, or nil; set before done closes
}

// ended reports whether the lane's goroutine has returned. p.mu held.
func (r *laneRun) ended() bool {
	if !r.launched {
		return false
	}
	select {
	case <-r.done:
		return true
	default:
		return false
	}
}

// newLane builds the lane of s, which has its defaults.
func (p *Pipeline) newLane(s StreamConfig) *lane {
	so := p.obs.Stream(s.Name)
	if so == nil {
		so = NopObserver{}
	}
	return newLane(s, &p.cfg, p.sink, p.store, so)
}

// launch starts r's goroutine under the pipeline's contexts. p.mu held,
// Run running.
func (p *Pipeline) launch(r *laneRun) {
	readCtx, cancelR := context.WithCancel(p.readCtx)
	writeCtx, cancelW := context.WithCancel(p.writeCtx)
	r.cancelR, r.cancelW, r.launched = cancelR, cancelW, true
	p.running++
	go func() {
		// The checkpoint is loaded under the write context: Abort and the
		// end of Run's context stop the load, a drain lets it finish.
		err := r.lane.run(writeCtx, readCtx, writeCtx)
		cancelR()
		cancelW()
		if err != nil {
			err = &StreamError{Stream: r.lane.cfg.Name, Err: err}
		}
		p.mu.Lock()
		r.err = err
		p.running--
		p.mu.Unlock()
		close(r.done)
		p.signal()
	}()
}

// signal wakes Run to check whether it is done.
func (p *Pipeline) signal() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// wait is Run's loop: it returns once no lane runs and Run may return
// (the package's stopping rules, on Run), with the errors of the failed
// lanes still in the set.
func (p *Pipeline) wait() error {
	stopped := p.readCtx.Done()
	for {
		p.mu.Lock()
		if p.running == 0 && (p.stopping || p.readCtx.Err() != nil || (!p.cfg.KeepRunning && p.holds == 0)) {
			p.finished = true
			var errs []error
			for _, r := range p.lanes {
				if r.err != nil && !r.removing {
					errs = append(errs, r.err)
				}
			}
			p.mu.Unlock()
			return errors.Join(errs...)
		}
		p.mu.Unlock()
		select {
		case <-p.wake:
		case <-stopped:
			stopped = nil // the lanes end now; each wakes Run as it does
		}
	}
}

// Start adds a lane for s to the set and starts it at once when Run runs
// (else Run starts it). s is checked as New checks each stream
// (StreamConfig.Validate) and gets the same defaults; the observer's
// Stream is called for it.
//
// A lane of the same name that ended on its own (its server ended the
// stream, or it failed) is replaced, at its place in the set. Start
// returns ErrStreamRunning while a lane of that name has not ended (Stop
// it first: the two would share a checkpoint), and ErrStopped once
// Shutdown was called or Run has returned.
func (p *Pipeline) Start(s StreamConfig) error {
	if err := s.Validate(); err != nil {
		return fmt.Errorf("pipeline: stream %q: %w", s.Name, err)
	}
	r := &laneRun{lane: p.newLane(s.withDefaults()), done: make(chan struct{})}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopping || p.finished {
		r.lane.dd.Close()
		return ErrStopped
	}
	if i := p.index(s.Name); i >= 0 {
		if !p.lanes[i].ended() {
			r.lane.dd.Close()
			return fmt.Errorf("%w: %q", ErrStreamRunning, s.Name)
		}
		p.lanes[i] = r
	} else {
		p.lanes = append(p.lanes, r)
	}
	if p.started {
		p.launch(r)
	}
	return nil
}

// Stop ends the lane of the named stream as how says and removes it from
// the set; it returns once the lane's goroutines are done. With Drain,
// when ctx ends before everything the lane holds is written, the lane is
// stopped at once as by Shutdown's deadline (what was not acknowledged is
// not checkpointed) and ctx.Err() is returned. The lane's own error, a
// *StreamError, is returned too (joined), and is not reported by Run.
//
// Stop returns ErrUnknownStream when no lane of that name is in the set.
// A lane that already ended is just removed.
func (p *Pipeline) Stop(ctx context.Context, name string, how StopMode) error {
	p.mu.Lock()
	i := p.index(name)
	if i < 0 {
		p.mu.Unlock()
		return fmt.Errorf("%w: %q", ErrUnknownStream, name)
	}
	r := p.lanes[i]
	r.removing = true
	if !r.launched {
		// Run has not started it: it never ran.
		p.lanes = slices.Delete(p.lanes, i, i+1)
		p.mu.Unlock()
		r.lane.dd.Close()
		p.signal()
		return nil
	}
	if how == Abort {
		r.lane.aborted.Store(true)
		r.cancelW()
	}
	r.cancelR()
	p.mu.Unlock()

	var err error
	select {
	case <-r.done:
	case <-ctx.Done():
		r.cancelW()
		<-r.done
		err = ctx.Err()
	}
	p.mu.Lock()
	if j := slices.Index(p.lanes, r); j >= 0 {
		p.lanes = slices.Delete(p.lanes, j, j+1)
	}
	p.mu.Unlock()
	p.signal()
	return errors.Join(err, r.err)
}

// Hold keeps Run from returning because no lane runs, until release is
// called: a caller that replaces lanes (Stop then Start) holds the
// pipeline across the change, so that Run does not end between the two.
// release may be called more than once.
func (p *Pipeline) Hold() (release func()) {
	p.mu.Lock()
	p.holds++
	p.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			p.mu.Lock()
			p.holds--
			p.mu.Unlock()
			p.signal()
		})
	}
}

// index returns the position of the named lane in the set, or -1. p.mu
// held.
func (p *Pipeline) index(name string) int {
	return slices.IndexFunc(p.lanes, func(r *laneRun) bool { return r.lane.cfg.Name == name })
}
