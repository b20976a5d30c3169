package pipeline

import (
	"context"
	"errors"
	"time"

	"github.com/restless-stream/ingest"
	"github.com/restless-stream/ingest/pipeline/internal/dedupe"
)

// write batches items and writes them until the reader is done and every
// item is handled, or ctx ends.
func (l *lane) write(ctx context.Context) error {
	maxEvents := l.pcfg.Batch.MaxEvents
	// The batch, record and index slices start empty and grow with the
	// batches that come, then are kept: a lane that reads nothing holds
	// none of them.
	w := &batchWriter{lane: l}
	defer w.recycle()
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		var first *item
		var ok bool
		select {
		case first, ok = <-l.items:
			if !ok {
				return nil
			}
		case <-ctx.Done():
			return ctx.Err()
		}
		w.batch = append(w.batch[:0], first)
		closed := false
		timer.Reset(l.pcfg.Batch.MaxWait)
	fill:
		for len(w.batch) < maxEvents {
			var it *item
			var ok bool
			// An item that is ready is taken at once: the three-way wait
			// below costs several times a plain receive, and the batch is
			// bounded by maxEvents anyway.
			select {
			case it, ok = <-l.items:
			default:
				select {
				case it, ok = <-l.items:
				case <-timer.C:
					break fill
				case <-ctx.Done():
					break fill
				}
			}
			if !ok {
				closed = true
				break fill
			}
			w.batch = append(w.batch, it)
		}
		timer.Stop()
		err := w.flush(ctx)
		w.recycle()
		if err != nil {
			return err
		}
		if l.pcfg.CheckpointInterval == 0 {
			// Save before the next batch goes out, so that a crash repeats
			// at most one batch: the lane waits for its storage as it waits
			// for a broker. A save that fails until ctx ends, or the lane
			// stops reading, is left to the lane's last save.
			l.saveBetweenBatches(ctx)
		}
		if closed {
			return nil
		}
	}
}

// recycle hands the batch's items back to the pool, letting their event
// bytes go.
func (w *batchWriter) recycle() {
	for _, it := range w.batch {
		putItem(it)
	}
	clear(w.batch)
	w.batch = w.batch[:0]
}

// batchWriter writes one batch at a time, retrying what failed.
type batchWriter struct {
	lane    *lane
	batch   []*item
	recs    []ingest.Record      // records still to write
	idx     []int                // recs[i] is batch[idx[i]]
	fps     []dedupe.Fingerprint // the claims one Write settles
	handled int                  // batch[:handled] is done
}

func (w *batchWriter) flush(ctx context.Context) error {
	l := w.lane
	w.recs, w.idx, w.handled = w.recs[:0], w.idx[:0], 0
	for i := range w.batch {
		if w.batch[i].kind == kindDrop {
			w.batch[i].done = true
			continue
		}
		w.recs = append(w.recs, w.batch[i].rec)
		w.idx = append(w.idx, i)
	}
	w.advance()
	attempt := 0
	for len(w.recs) > 0 {
		if err := ctx.Err(); err != nil {
			return err
		}
		start := time.Now()
		err := l.sink.Write(ctx, w.recs)
		elapsed := time.Since(start)

		var werrs ingest.WriteErrors
		perRecord := err != nil && errors.As(err, &werrs) && len(werrs) == len(w.recs)
		acked := func(i int) bool { return err == nil || (perRecord && werrs[i] == nil) }
		// A record the sink refuses for good (ingest.PermanentError: an
		// unusable destination, a record larger than the broker takes) would
		// stall the stream forever if retried; it is rejected instead.
		refused := func(i int) bool { return perRecord && werrs[i] != nil && ingest.IsPermanent(werrs[i]) }
		if perRecord {
			w.fps = w.fps[:0]
			for i, j := range w.idx {
				if refused(i) {
					it := w.batch[j]
					it.done = true
					id, _ := w.recs[i].Header(HeaderEventID)
					l.obs.Rejected(Rejection{Reason: ReasonPublishRejected, Err: werrs[i].Error(), EventID: id})
					w.settle(it)
				}
			}
			if len(w.fps) > 0 {
				l.dd.Release(w.fps)
			}
		}

		published := 0
		w.fps = w.fps[:0]
		for i, j := range w.idx {
			if acked(i) {
				it := w.batch[j]
				it.done = true
				if it.kind == kindPublish {
					published++
				}
				w.settle(it)
			}
		}
		ackedAny := err == nil || (perRecord && werrs.Count() < len(werrs))
		if ackedAny {
			if len(w.fps) > 0 {
				l.dd.Acknowledge(w.fps, time.Now().UnixNano())
			}
			l.obs.PublishLatency(elapsed)
			if published > 0 {
				l.obs.Published(published)
			}
			attempt = 0
		}
		// Keep only what failed and may succeed later, in order.
		n := 0
		for i := range w.recs {
			if !acked(i) && !refused(i) {
				w.recs[n], w.idx[n] = w.recs[i], w.idx[i]
				n++
			}
		}
		clear(w.recs[n:])
		w.recs, w.idx = w.recs[:n], w.idx[:n]
		w.advance()
		if n == 0 {
			return nil
		}

		if perRecord {
			err = firstError(werrs, refused)
		}
		l.obs.WriteFailed(n, err)
		attempt++
		t := time.NewTimer(l.pcfg.Retry.Delay(attempt))
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		}
	}
	return nil
}

// settle collects the dedupe claim of it, settled by this Write, into w.fps
// (a claim is settled once: a second copy is a duplicate).
func (w *batchWriter) settle(it *item) {
	if it.hasFP {
		w.fps = append(w.fps, it.fp)
		it.hasFP = false
	}
}

// firstError returns the first error of werrs that is not refused, so the
// retry is reported with its own cause.
func firstError(werrs ingest.WriteErrors, refused func(i int) bool) error {
	for i, e := range werrs {
		if e != nil && !refused(i) {
			return e
		}
	}
	return werrs
}

// advance moves the lane's acknowledged cursor over the handled prefix of
// the batch.
func (w *batchWriter) advance() {
	var cursor string
	var at time.Time
	var doc []byte
	for w.handled < len(w.batch) && w.batch[w.handled].done {
		if it := w.batch[w.handled]; it.cursor != "" {
			cursor, at, doc = it.cursor, it.received, it.doc
		}
		w.handled++
	}
	if cursor != "" {
		w.lane.setAcked(cursor, at, doc)
	}
}
