package pipeline

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/restless-stream/ingest"
	"github.com/restless-stream/ingest/checkpoint"
	"github.com/restless-stream/ingest/pipeline/internal/dedupe"
)

// lane is one stream's ordered path: a reader goroutine (Next → process)
// feeding a writer (batch → Write → acknowledge), which saves the
// acknowledged position after each batch, or leaves that to a checkpointer
// beside it when CheckpointInterval is positive.
type lane struct {
	cfg   StreamConfig
	pcfg  *Config
	sink  Sink
	store checkpoint.Store
	obs   StreamObserver
	dd    *dedupe.Filter
	proc  *processor
	items chan *item // from itemPool; the writer puts them back

	state   atomic.Int32 // a LaneState
	aborted atomic.Bool  // Stop with Abort: save nothing more
	err     atomic.Pointer[error]

	ckMu     sync.Mutex
	acked    string    // cursor of the last contiguous handled event
	ackedAt  time.Time // when that event was received
	ackedDoc []byte    // the materialised document as of acked (nil: unset)
	// docs is the store as a DocumentStore on a materialised stream; nil
	// otherwise.
	docs     checkpoint.DocumentStore
	saved    string // last cursor saved
	ckNotify chan struct{}
	// ckPending is closed when a Save that outlived its wait returns; nil
	// when none is under way.
	ckPending chan struct{}
	// ckFailing is set while the last save attempt failed.
	ckFailing atomic.Bool
	// stopping ends when the lane stops reading (Shutdown or Run's end).
	stopping context.Context

	rxMu sync.Mutex // the reader's last frame, for status; apart from ckMu so the writer never waits on it
	rx   string     // cursor of the last frame read
	rxAt time.Time  // when it was received
}

func newLane(cfg StreamConfig, pcfg *Config, sink Sink, store checkpoint.Store, obs StreamObserver) *lane {
	dd := dedupe.New(pcfg.Dedupe.Size, pcfg.Dedupe.TTL)
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
		stopping: context.Background(),
	}
}

// run runs the lane until its source ends, readCtx ends (stop reading, then
// drain) or writeCtx ends (stop at once). It saves the final checkpoint
// before it returns.
func (l *lane) run(runCtx, readCtx, writeCtx context.Context) (err error) {
	l.state.Store(int32(LaneStarting))
	// Every path out of run has its reader and writer done: the window's
	// memory (off the Go heap) is given back here.
	defer l.dd.Close()
	defer func() {
		switch {
		case err != nil:
			l.err.Store(&err)
			l.state.Store(int32(LaneFailed))
		case l.state.Load() != int32(LaneEnded):
			l.state.Store(int32(LaneStopped))
		}
	}()

	var (
		cursor string
		doc    []byte
		ok     bool
	)
	if l.proc.doc != nil {
		ds, isDS := l.store.(checkpoint.DocumentStore)
		if !isDS {
			return fmt.Errorf("stream %q: materialize needs a checkpoint store that saves documents; %T does not", l.cfg.Name, l.store)
		}
		l.docs = ds
		cursor, doc, ok, err = ds.LoadDocument(runCtx, l.cfg.Name)
	} else {
		cursor, ok, err = l.store.Load(runCtx, l.cfg.Name)
	}
	if err != nil {
		if runCtx.Err() != nil {
			return nil
		}
		return err
	}
	if ok {
		if l.proc.doc != nil {
			// A saved document that does not fit (the limit shrank) is
			// dropped: the stream waits for its next full document.
			if rerr := l.proc.doc.Restore(doc); rerr != nil {
				l.obs.Rejected(Rejection{Reason: ReasonPatchFailed, Err: "the saved document: " + rerr.Error()})
			}
		}
		l.ckMu.Lock()
		l.acked, l.saved = cursor, cursor
		if l.proc.doc != nil {
			l.ackedDoc = l.proc.doc.Bytes()
		}
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
	l.stopping = readCtx

	ckCtx, stopCk := context.WithCancel(writeCtx)
	ckDone := make(chan struct{})
	if l.pcfg.CheckpointInterval > 0 {
		go func() { defer close(ckDone); l.checkpointer(ckCtx) }()
	} else {
		close(ckDone) // the writer saves after each batch
	}

	// The reader stops when the writer is gone, too.
	readCtx, cancelRead := context.WithCancel(readCtx)
	readDone := make(chan error, 1)
	go func() { readDone <- l.read(readCtx, src) }()

	writeErr := l.write(writeCtx)
	cancelRead()
	readErr := <-readDone
	_ = src.Close()
	stopCk()
	<-ckDone

	ckErr := l.saveLast(writeCtx)

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
		if len(l.proc.pre) > 0 {
			if !l.sendPre(ctx) {
				putItem(it)
				return nil
			}
		}
		if it.cursor != "" {
			l.rxMu.Lock()
			l.rx, l.rxAt = it.cursor, it.received
			l.rxMu.Unlock()
		}
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

// sendPre sends the items process made before its own, in order; false
// when ctx ended first (the rest are put back).
func (l *lane) sendPre(ctx context.Context) bool {
	pre := l.proc.pre
	l.proc.pre = pre[:0]
	for i, p := range pre {
		select {
		case l.items <- p:
		case <-ctx.Done():
			for _, q := range pre[i:] {
				putItem(q)
			}
			clear(pre)
			return false
		}
	}
	clear(pre)
	return true
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
	l.rxMu.Lock()
	s.Received, s.ReceivedAt = l.rx, l.rxAt
	l.rxMu.Unlock()
	return s
}
