package pipeline

import (
	"context"
	"time"
)

// checkpointSaveTimeout bounds one Save of a checkpoint.
const checkpointSaveTimeout = 10 * time.Second

// lastSaveTimeout bounds the retries of a lane's last save when nothing
// else does: a lane whose server ended its stream does not wait for a
// broken store for ever, it fails with the store's error.
const lastSaveTimeout = 10 * time.Second

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
func (l *lane) setAcked(cursor string, at time.Time) {
	l.ckMu.Lock()
	l.acked, l.ackedAt = cursor, at
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

// saveLast is the lane's last save, once its reader, writer and
// checkpointer are done: retried until the pipeline stops writing (ctx
// ends: Shutdown's deadline, or Run's context) or lastSaveTimeout passes.
func (l *lane) saveLast(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, lastSaveTimeout)
	defer cancel()
	return l.saveCheckpoint(ctx)
}

// saveCheckpoint is the lane's one way to save its checkpoint, whoever
// saves (the writer after a batch, the checkpointer, the last save): it
// stores the acknowledged cursor if it moved since the last save. A failed
// Save is reported and tried again after the lane's Retry backoff until
// one succeeds or ctx ends; then the last error is returned. One attempt is
// made even when ctx has ended (the last save of a stopped lane), and ctx
// never cuts an attempt short: a save under way finishes, within
// checkpointSaveTimeout.
//
// Saves never overlap, so an older cursor never overwrites a newer one:
// the writer saves when CheckpointInterval is 0, else the checkpointer,
// and the last save comes after both are done.
func (l *lane) saveCheckpoint(ctx context.Context) error {
	for attempt := 1; ; attempt++ {
		err := l.save(ctx)
		if err == nil {
			return nil
		}
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

// save makes one attempt at storing the acknowledged cursor, if it moved,
// and none once the lane was aborted (Stop with Abort: the stream may have
// another owner now, whose checkpoint must not be moved back).
func (l *lane) save(ctx context.Context) error {
	if l.aborted.Load() {
		return nil
	}
	l.ckMu.Lock()
	cursor, at, saved := l.acked, l.ackedAt, l.saved
	l.ckMu.Unlock()
	if cursor == "" || cursor == saved {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), checkpointSaveTimeout)
	defer cancel()
	if err := l.store.Save(ctx, l.cfg.Name, cursor); err != nil {
		return err
	}
	l.ckMu.Lock()
	l.saved = cursor
	l.ckMu.Unlock()
	l.obs.Checkpointed(cursor, at)
	return nil
}
