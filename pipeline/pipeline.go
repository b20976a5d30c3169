package pipeline

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/restless-stream/ingest/checkpoint"
)

// Pipeline runs one lane per stream between the streams' sources and one
// shared sink. Build it with New, run it with Run, stop it with Shutdown.
type Pipeline struct {
	cfg   Config
	sink  Sink
	store checkpoint.Store
	obs   Observer

	mu       sync.Mutex
	started  bool
	stopping bool
	cancelR  context.CancelFunc // stops reading
	cancelW  context.CancelFunc // stops writing
	done     chan struct{}      // closed when Run returns

	// The lane set (dynamic.go): every lane started and not yet removed by
	// Stop, in order of start.
	lanes    []*laneRun
	running  int           // lanes whose goroutine has not returned
	holds    int           // Hold calls not yet released
	wake     chan struct{} // Run re-checks whether it is done
	finished bool          // Run has returned or is returning
	runCtx   context.Context
	readCtx  context.Context
	writeCtx context.Context
}

// New checks cfg (Config.Validate), fills in its defaults and builds a pipeline writing to
// sink and keeping checkpoints in store. obs may be nil. The pipeline does
// not close sink or store.
func New(cfg Config, sink Sink, store checkpoint.Store, obs Observer) (*Pipeline, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("pipeline: %w", err)
	}
	cfg = cfg.withDefaults()
	if sink == nil {
		return nil, errors.New("pipeline: no sink")
	}
	if store == nil {
		return nil, errors.New("pipeline: no checkpoint store")
	}
	if obs == nil {
		obs = NopObserver{}
	}
	p := &Pipeline{cfg: cfg, sink: sink, store: store, obs: obs, done: make(chan struct{}), wake: make(chan struct{}, 1)}
	for _, s := range cfg.Streams {
		p.lanes = append(p.lanes, &laneRun{lane: p.newLane(s), done: make(chan struct{})})
	}
	return p, nil
}

// Run runs every lane until each has ended, and returns then. A lane ends
// when its server ends the stream (ingest.ErrStreamEnded), when its source
// fails for good, when Stop ends it, or when the pipeline stops: Shutdown
// drains it, the end of ctx stops it at once. Either way its last
// checkpoint is saved (except after Stop with Abort).
//
// The lane set may change while Run runs (Start, Stop; dynamic.go). Run
// returns once no lane runs and no Hold is held; with
// [Config.KeepRunning] it returns only after Shutdown or the end of ctx,
// running no lane in between if need be.
//
// Run returns nil when every lane ended cleanly (ended by its server or
// stopped), else the errors of the failed lanes still in the set joined,
// each a *StreamError (a lane removed by Stop gives its error to Stop).
// Run may be called once; after Shutdown it returns nil at once.
func (p *Pipeline) Run(ctx context.Context) error {
	p.mu.Lock()
	if p.started {
		p.mu.Unlock()
		return errors.New("pipeline: Run called twice")
	}
	p.started = true
	if p.stopping {
		p.finished = true
		p.mu.Unlock()
		close(p.done)
		return nil
	}
	readCtx, cancelR := context.WithCancel(ctx)
	writeCtx, cancelW := context.WithCancel(ctx)
	p.cancelR, p.cancelW = cancelR, cancelW
	p.runCtx, p.readCtx, p.writeCtx = ctx, readCtx, writeCtx
	for _, r := range p.lanes {
		p.launch(r)
	}
	p.mu.Unlock()
	defer close(p.done)
	defer cancelW()
	defer cancelR()
	return p.wait()
}

// Shutdown stops reading from every source, lets the lanes write what they
// hold until ctx ends, saves the final checkpoints and returns once Run has
// returned. It returns ctx.Err() when ctx ended before everything was
// written (what was not acknowledged is not checkpointed and is read again
// on the next start), else nil.
func (p *Pipeline) Shutdown(ctx context.Context) error {
	p.mu.Lock()
	p.stopping = true
	started, cancelR, cancelW := p.started, p.cancelR, p.cancelW
	p.mu.Unlock()
	if !started {
		return nil
	}
	if cancelR != nil {
		cancelR()
	}
	select {
	case <-p.done:
		return nil
	case <-ctx.Done():
	}
	if cancelW != nil {
		cancelW()
	}
	<-p.done
	return ctx.Err()
}

// Status returns the state of every lane in the set, in order of start
// (the configured streams first, in configuration order). A lane removed
// by Stop is no longer listed; one that ended on its own is, until Stop
// removes it or Start replaces it.
func (p *Pipeline) Status() []StreamStatus {
	p.mu.Lock()
	lanes := append([]*laneRun(nil), p.lanes...)
	p.mu.Unlock()
	out := make([]StreamStatus, len(lanes))
	for i, r := range lanes {
		out[i] = r.lane.status()
	}
	return out
}

// StreamStatus is a snapshot of one stream's lane.
type StreamStatus struct {
	Name  string
	State LaneState
	// Err is why the lane failed (LaneFailed only).
	Err error
	// Acknowledged is the cursor of the last event handled with every
	// event before it (published and acknowledged, rejected or duplicate).
	Acknowledged string
	// Checkpoint is the cursor last saved to the store.
	Checkpoint string
	// Received is the cursor of the last frame read from the source, a
	// duplicate aside (ahead of Acknowledged by what the lane holds); ""
	// before the first.
	Received string
	// ReceivedAt is when that frame was received; zero before the first.
	ReceivedAt time.Time
}

// LaneState is where a stream's lane stands.
type LaneState int32

// Lane states.
const (
	// LaneIdle: Run has not started the lane.
	LaneIdle LaneState = iota
	// LaneStarting: loading the checkpoint and opening the source.
	LaneStarting
	// LaneRunning: reading and writing.
	LaneRunning
	// LaneEnded: the server ended the stream and everything read was handled.
	LaneEnded
	// LaneStopped: the pipeline stopped the lane.
	LaneStopped
	// LaneFailed: the lane stopped for good on an error (StreamStatus.Err).
	LaneFailed
)

func (s LaneState) String() string {
	switch s {
	case LaneIdle:
		return "idle"
	case LaneStarting:
		return "starting"
	case LaneRunning:
		return "running"
	case LaneEnded:
		return "ended"
	case LaneStopped:
		return "stopped"
	case LaneFailed:
		return "failed"
	}
	return "LaneState(" + strconv.Itoa(int(s)) + ")"
}

// StreamError is the error of one failed lane, as joined into Run's result.
type StreamError struct {
	Stream string
	Err    error
}

func (e *StreamError) Error() string {
	return "pipeline: stream " + strconv.Quote(e.Stream) + ": " + e.Err.Error()
}

// Unwrap returns the lane's error.
func (e *StreamError) Unwrap() error { return e.Err }
