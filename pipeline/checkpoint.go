package pipeline

import (
	"context"
	"fmt"
	"strconv"
	"time"
)

// checkpointSaveTimeout bounds one Save of a checkpoint: its context ends
// then, and the lane stops waiting for it then even when the store does not
// return (a store stuck in a system call, one that ignores its context).
const checkpointSaveTimeout = 10 * time.Second

// lastSaveTimeout bounds a lane's last save, its retries and the wait for a
// save still under way included: a lane that stops, or whose server ended
// its stream, does not wait for a broken store for ever, it fails with the
// store's error.
const lastSaveTimeout = 10 * time.Second

// errSaveHung is the error of a Save that did not return in time.
var errSaveHung = fmt.Errorf("the checkpoint store did not answer within %v: %w", checkpointSaveTimeout, context.DeadlineExceeded)

// CheckpointError is the error of a lane whose last checkpoint could not be
// saved: the stream is read again from Saved, the older checkpoint, on the
// next start (what was published since is published again, and
// deduplicated where the sink does that).
type CheckpointError struct {
	// Saved is the cursor the store holds ("" when none was saved).
	Saved string
	// Unsaved is the cursor the lane had reached.
	Unsaved string
	// Err is the store's error.
	Err error
}

func (e *CheckpointError) Error() string {
	from := "the older checkpoint " + strconv.Quote(e.Saved)
	if e.Saved == "" {
		from = "the start (no checkpoint was saved)"
	}
	return "the last checkpoint was not saved: the stream will be read again from " + from + ": " + e.Err.Error()
}

// Unwrap returns the store's error.
func (e *CheckpointError) Unwrap() error { return e.Err }

// cursorOf decides the checkpoint position an event stands for once it is
// handled; it is the one place that does (the package doc, "Who decides
// the cursor"). The position is the event's event_id when one could be
// read, else the cursor its source gave with the frame; "" (the checkpoint
// stays where it is) for a duplicate, which repeats an older position.
func cursorOf(eventID, frameCursor string, duplicate bool) string {
	switch {
	case duplicate:
		return ""
	case eventID != "":
		return eventID
	}
	return frameCursor
}

// setAcked records the cursor of the last contiguous handled event, and
// wakes the checkpointer when there is one.
func (l *lane) setAcked(cursor string, at time.Time, doc []byte) {
	l.ckMu.Lock()
	l.acked, l.ackedAt, l.ackedDoc = cursor, at, doc
	l.ckMu.Unlock()
	if l.pcfg.CheckpointInterval == 0 {
		return // the writer saves after each batch
	}
	select {
	case l.ckNotify <- struct{}{}:
	default:
	}
}

// checkpointer saves the acknowledged cursor beside the writer when it
// moves, at most once per CheckpointInterval, until ctx ends. It runs only
// with a positive CheckpointInterval.
func (l *lane) checkpointer(ctx context.Context) {
	var last time.Time
	for {
		select {
		case <-l.ckNotify:
		case <-ctx.Done():
			return
		}
		if wait := l.pcfg.CheckpointInterval - time.Since(last); wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return
			}
		}
		// A save still failing when ctx ends is the last save's to retry.
		_ = l.saveCheckpoint(ctx)
		last = time.Now()
	}
}

// saveBetweenBatches is the writer's save after each batch (with a
// CheckpointInterval of 0): retried until it succeeds, so that the lane
// waits for its storage as it waits for a broker, until ctx ends or the
// lane stops reading. A stopping lane makes one attempt per batch while the
// store works and none once it failed: its last save, bounded, retries.
func (l *lane) saveBetweenBatches(ctx context.Context) {
	if l.stopping.Err() != nil && l.ckFailing.Load() {
		return
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(l.stopping, cancel)()
	_ = l.saveCheckpoint(ctx)
}

// saveLast is the lane's last save, once its reader, writer and
// checkpointer are done: retried until the pipeline stops writing (ctx
// ends: Shutdown's deadline, or Run's context) or lastSaveTimeout passes,
// and never longer than lastSaveTimeout whatever the store does. A failure
// is a *CheckpointError.
func (l *lane) saveLast(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, lastSaveTimeout)
	defer cancel()
	err := l.saveCheckpoint(ctx)
	if err == nil {
		return nil
	}
	l.ckMu.Lock()
	defer l.ckMu.Unlock()
	return &CheckpointError{Saved: l.saved, Unsaved: l.acked, Err: err}
}

// saveCheckpoint is the lane's one way to save its checkpoint, whoever
// saves (the writer after a batch, the checkpointer, the last save): it
// stores the acknowledged cursor if it moved since the last save. A failed
// Save is reported and tried again after the lane's Retry backoff until
// one succeeds or ctx ends; then the last error is returned. One attempt is
// made even when ctx has ended (the last save of a stopped lane), and ctx
// never cuts an attempt short: a save under way finishes, within
// checkpointSaveTimeout (or ctx's deadline, when that comes first).
//
// Saves never overlap, so an older cursor never overwrites a newer one:
// the writer saves when CheckpointInterval is 0, else the checkpointer,
// and the last save comes after both are done; a Save that did not return
// in time is waited for before the next one starts.
func (l *lane) saveCheckpoint(ctx context.Context) error {
	for attempt := 1; ; attempt++ {
		err := l.save(ctx)
		if err == nil {
			return nil
		}
		l.ckFailing.Store(true)
		l.obs.CheckpointFailed(err)
		t := time.NewTimer(l.pcfg.Retry.Delay(attempt))
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return err
		}
	}
}

// save makes one attempt at storing the acknowledged cursor, if it moved.
// It waits for the store until checkpointSaveTimeout passes, or ctx's
// deadline when that comes first (and has not passed yet): a Save still
// under way then is left to finish on its own, and the next save waits for
// it first.
// None is made once the lane was aborted (Stop with Abort: the stream may
// have another owner now, whose checkpoint must not be moved back).
func (l *lane) save(ctx context.Context) error {
	if l.aborted.Load() {
		return nil
	}
	l.ckMu.Lock()
	cursor, at, saved, pending, doc := l.acked, l.ackedAt, l.saved, l.ckPending, l.ackedDoc
	l.ckMu.Unlock()
	if cursor == "" || cursor == saved {
		if cursor != "" {
			l.ckFailing.Store(false)
		}
		return nil
	}
	wait := checkpointSaveTimeout
	if d, ok := ctx.Deadline(); ok && time.Until(d) > 0 && time.Until(d) < wait {
		wait = time.Until(d)
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	if pending != nil {
		select {
		case <-pending:
			l.ckMu.Lock()
			l.ckPending = nil
			l.ckMu.Unlock()
		case <-timer.C:
			return errSaveHung
		}
	}

	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), wait)
	done := make(chan error, 1)
	if l.docs != nil {
		go func() { done <- l.docs.SaveDocument(sctx, l.cfg.Name, cursor, doc) }()
	} else {
		go func() { done <- l.store.Save(sctx, l.cfg.Name, cursor) }()
	}
	var err error
	select {
	case err = <-done:
		cancel()
	case <-timer.C:
		// The store ignores its context: stop waiting, and keep the next
		// save from overlapping this one.
		pending := make(chan struct{})
		l.ckMu.Lock()
		l.ckPending = pending
		l.ckMu.Unlock()
		go func() { <-done; cancel(); close(pending) }()
		return errSaveHung
	}
	if err != nil {
		return err
	}
	l.ckMu.Lock()
	l.saved = cursor
	l.ckMu.Unlock()
	l.ckFailing.Store(false)
	l.obs.Checkpointed(cursor, at)
	return nil
}
