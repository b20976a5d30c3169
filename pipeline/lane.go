package pipeline

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/restless-stream/ingest"
	"github.com/restless-stream/ingest/checkpoint"
)

// checkpointSaveTimeout bounds one Save of a checkpoint.
const checkpointSaveTimeout = 10 * time.Second

// lane is one stream's ordered path: a reader goroutine (Next → process)
// feeding a writer (batch → Write → acknowledge), and a checkpointer saving
// the acknowledged position beside them.
type lane struct {
	cfg   StreamConfig
	pcfg  *Config
	sink  Sink
	store checkpoint.Store
	obs   StreamObserver
	dd    *dedupe
	proc  *processor
	items chan *item // from itemPool; the writer puts them back

	state atomic.Int32 // a LaneState
	err   atomic.Pointer[error]

	saveMu   sync.Mutex // serialises saves, so an older cursor never overwrites a newer one
	ckMu     sync.Mutex
	acked    string    // cursor of the last contiguous handled event
	ackedAt  time.Time // when that event was received
	saved    string    // last cursor saved
	ckNotify chan struct{}
}

func newLane(cfg StreamConfig, pcfg *Config, sink Sink, store checkpoint.Store, obs StreamObserver) *lane {
	dd := &dedupe{
		win:      newWindow(pcfg.Dedupe.Size, int64(pcfg.Dedupe.TTL)),
		inflight: make(map[fingerprint]struct{}),
	}
	return &lane{
		cfg:      cfg,
		pcfg:     pcfg,
		sink:     sink,
		store:    store,
		obs:      obs,
		dd:       dd,
		proc:     newProcessor(cfg, pcfg.DeadLetter, obs, dd),
		items:    make(chan *item, pcfg.Buffer),
		ckNotify: make(chan struct{}, 1),
	}
}

// run runs the lane until its source ends, readCtx ends (stop reading, then
// drain) or writeCtx ends (stop at once). It saves the final checkpoint
// before it returns.
func (l *lane) run(runCtx, readCtx, writeCtx context.Context) (err error) {
	l.state.Store(int32(LaneStarting))
	// Every path out of run has its reader and writer done: the window's
	// memory (off the Go heap) is given back here.
	defer l.dd.close()
	defer func() {
		switch {
		case err != nil:
			l.err.Store(&err)
			l.state.Store(int32(LaneFailed))
		case l.state.Load() != int32(LaneEnded):
			l.state.Store(int32(LaneStopped))
		}
	}()

	cursor, ok, err := l.store.Load(runCtx, l.cfg.Name)
	if err != nil {
		if runCtx.Err() != nil {
			return nil
		}
		return err
	}
	if ok {
		l.ckMu.Lock()
		l.acked, l.saved = cursor, cursor
		l.ckMu.Unlock()
	}
	src, err := l.cfg.Open(readCtx, cursor)
	if err == nil && src == nil {
		err = errors.New("the Open function returned no source")
	}
	if err != nil {
		if readCtx.Err() != nil {
			return nil
		}
		return err
	}
	l.state.Store(int32(LaneRunning))

	stopCk := make(chan struct{})
	ckDone := make(chan error, 1)
	go func() { ckDone <- l.checkpointer(runCtx, stopCk) }()

	// The reader stops when the writer is gone, too.
	readCtx, cancelRead := context.WithCancel(readCtx)
	readDone := make(chan error, 1)
	go func() { readDone <- l.read(readCtx, src) }()

	writeErr := l.write(writeCtx)
	cancelRead()
	readErr := <-readDone
	_ = src.Close()

	close(stopCk)
	ckErr := <-ckDone

	if errors.Is(readErr, ingest.ErrStreamEnded) {
		if writeErr == nil {
			l.state.Store(int32(LaneEnded))
		}
		readErr = nil
	}
	// writeErr only says the pipeline stopped before everything was
	// written: what was not acknowledged is not checkpointed and is read
	// again on the next start.
	return errors.Join(readErr, ckErr)
}

// read feeds processed frames to the writer until the source ends (its
// error is returned) or ctx ends (nil).
func (l *lane) read(ctx context.Context, src Source) error {
	defer close(l.items)
	// An accepted event is the source's progress (reconnect.max_attempts).
	prog, _ := src.(interface{ Progress() })
	for {
		f, err := src.Next(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		it := getItem()
		l.proc.process(f, it)
		if prog != nil && it.kind == kindPublish {
			prog.Progress()
		}
		select {
		case l.items <- it:
		case <-ctx.Done():
			putItem(it)
			return nil
		}
	}
}

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
			// Save before the next batch goes out, so a crash repeats at most
			// one batch. A failed save is reported and retried with the
			// lane's backoff until it succeeds or the pipeline stops: the
			// lane waits for its storage as it waits for a broker.
			for attempt := 1; l.save(context.WithoutCancel(ctx)) != nil; attempt++ {
				t := time.NewTimer(l.pcfg.Retry.Delay(attempt))
				select {
				case <-t.C:
					continue
				case <-ctx.Done():
					t.Stop()
				}
				break
			}
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
	recs    []ingest.Record // records still to write
	idx     []int           // recs[i] is batch[idx[i]]
	handled int             // batch[:handled] is done
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
			nRefused := 0
			for i, j := range w.idx {
				if refused(i) {
					w.batch[j].done = true
					nRefused++
					id, _ := w.recs[i].Header(ingest.HeaderEventID)
					l.obs.Rejected(Rejection{Reason: ingest.ReasonPublishRejected, Err: werrs[i].Error(), EventID: id})
				}
			}
			if nRefused > 0 {
				l.dd.release(w.batch, w.idx, refused)
			}
		}

		published := 0
		for i, j := range w.idx {
			if acked(i) {
				w.batch[j].done = true
				if w.batch[j].kind == kindPublish {
					published++
				}
			}
		}
		ackedAny := err == nil || (perRecord && werrs.Count() < len(werrs))
		if ackedAny {
			l.dd.acknowledge(w.batch, w.idx, acked, time.Now().UnixNano())
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
	for w.handled < len(w.batch) && w.batch[w.handled].done {
		if c := w.batch[w.handled].cursor; c != "" {
			cursor, at = c, w.batch[w.handled].received
		}
		w.handled++
	}
	if cursor != "" {
		w.lane.setAcked(cursor, at)
	}
}

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

// checkpointer saves the acknowledged cursor when it changes, at most once
// per CheckpointInterval (when that is positive; otherwise the writer saves
// after each batch), and a last time when stop is closed. It returns the
// error of that last save.
func (l *lane) checkpointer(ctx context.Context, stop <-chan struct{}) error {
	ctx = context.WithoutCancel(ctx) // the final save happens after a stop
	var last time.Time
	for {
		select {
		case <-l.ckNotify:
		case <-stop:
			return l.save(ctx)
		}
		if wait := l.pcfg.CheckpointInterval - time.Since(last); wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-t.C:
			case <-stop:
				t.Stop()
				return l.save(ctx)
			}
		}
		if l.save(ctx) != nil {
			// Try again after the interval.
			select {
			case l.ckNotify <- struct{}{}:
			default:
			}
		}
		last = time.Now()
	}
}

// save stores the acknowledged cursor if it moved since the last save.
func (l *lane) save(ctx context.Context) error {
	l.saveMu.Lock()
	defer l.saveMu.Unlock()
	l.ckMu.Lock()
	cursor, at, saved := l.acked, l.ackedAt, l.saved
	l.ckMu.Unlock()
	if cursor == "" || cursor == saved {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, checkpointSaveTimeout)
	defer cancel()
	if err := l.store.Save(ctx, l.cfg.Name, cursor); err != nil {
		l.obs.CheckpointFailed(err)
		return err
	}
	l.ckMu.Lock()
	l.saved = cursor
	l.ckMu.Unlock()
	l.obs.Checkpointed(cursor, at)
	return nil
}

// status returns a snapshot of the lane.
func (l *lane) status() StreamStatus {
	s := StreamStatus{Name: l.cfg.Name, State: LaneState(l.state.Load())}
	if e := l.err.Load(); e != nil {
		s.Err = *e
	}
	l.ckMu.Lock()
	s.Acknowledged, s.Checkpoint = l.acked, l.saved
	l.ckMu.Unlock()
	return s
}
