package pipeline

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/restless-stream/ingest"
	"github.com/restless-stream/ingest/checkpoint"
)

// TestCheckpointSaveFailure: a failing store is reported and retried; when
// the lane ends, its last save is retried for lastSaveTimeout, and then the
// failure is Run's error. (With a save after every batch, the writer itself
// waits for the store: TestCheckpointSaveRetriedBeforeNextBatch.)
func TestCheckpointSaveFailure(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := &failingSave{Memory: checkpoint.NewMemory()}
		obs := newCounters()
		src := &fakeSource{frames: frames(1, 2), end: ingest.ErrStreamEnded}
		start := time.Now()
		err := mustNew(t, testConfig(t, "s", src), &fakeSink{}, store, obs).Run(t.Context())
		if err == nil || !strings.Contains(err.Error(), "disk full") {
			t.Fatalf("Run = %v, want the save error", err)
		}
		if took := time.Since(start); took < lastSaveTimeout {
			t.Errorf("Run gave up after %v, before the last save's %v", took, lastSaveTimeout)
		}
		if obs.ckFailed < 2 {
			t.Errorf("CheckpointFailed reported %d times, want the retries too", obs.ckFailed)
		}
	})
}

// TestCheckpointSaveRetriedBeforeNextBatch: with a save after every batch
// (the default), a failed save is retried until it succeeds before the next
// batch is written, so that a crash still repeats at most one batch.
func TestCheckpointSaveRetriedBeforeNextBatch(t *testing.T) {
	var mu sync.Mutex
	var log []string
	note := func(s string) { mu.Lock(); log = append(log, s); mu.Unlock() }
	store := &flakySave{Memory: checkpoint.NewMemory(), fails: 3, note: note}
	sink := &fakeSink{fail: func(call int, recs []ingest.Record) error { note(fmt.Sprint("write ", call)); return nil }}
	obs := newCounters()
	cfg := testConfig(t, "s", &fakeSource{frames: frames(1, 2), end: ingest.ErrStreamEnded})
	cfg.CheckpointInterval = 0
	cfg.Batch.MaxEvents = 1
	if err := mustNew(t, cfg, sink, store, obs).Run(t.Context()); err != nil {
		t.Fatal(err)
	}
	want := "write 1,save failed,save failed,save failed,save 1,write 2,save 2"
	if got := strings.Join(log, ","); got != want {
		t.Fatalf("order %s\nwant  %s", got, want)
	}
	if obs.ckFailed != 3 {
		t.Errorf("CheckpointFailed reported %d times, want 3", obs.ckFailed)
	}
}

// TestLastSaveRetried: the save a lane makes when it ends goes the same way
// as every other, retried after a failure, so that a stream the server
// ended keeps its last position through a passing storage fault.
func TestLastSaveRetried(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		var log []string
		note := func(s string) { mu.Lock(); log = append(log, s); mu.Unlock() }
		store := &flakySave{Memory: checkpoint.NewMemory(), note: note, failCursor: "2", fails: 2}
		src := newChanSource()
		cfg := testConfig(t, "s", src)
		cfg.Batch.MaxEvents = 1
		cfg.CheckpointInterval = time.Hour
		p := mustNew(t, cfg, &fakeSink{}, store, nil)
		done := make(chan error)
		go func() { done <- p.Run(t.Context()) }()
		src.ch <- frames(1)[0]
		synctest.Wait() // the checkpointer saved 1
		src.ch <- frames(2)[0]
		synctest.Wait() // and waits out its hour before saving 2
		close(src.ch)   // the server ends the stream: the last save saves 2
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if got, want := strings.Join(log, ","), "save 1,save failed,save failed,save 2"; got != want {
			t.Errorf("saves %s, want %s", got, want)
		}
		if c := loadCursor(t, store, "s"); c != "2" {
			t.Errorf("checkpoint %q, want 2", c)
		}
	})
}

// flakySave fails its first fails saves (of failCursor, when set).
type flakySave struct {
	*checkpoint.Memory
	fails      int
	failCursor string
	note       func(string)
}

func (f *flakySave) Save(ctx context.Context, stream, cursor string) error {
	if f.fails > 0 && (f.failCursor == "" || f.failCursor == cursor) {
		f.fails--
		f.note("save failed")
		return errors.New("disk full")
	}
	f.note("save " + cursor)
	return f.Memory.Save(ctx, stream, cursor)
}

type failingSave struct{ *checkpoint.Memory }

func (failingSave) Save(context.Context, string, string) error { return errors.New("disk full") }

// TestCheckpointEveryBatch: with the default CheckpointInterval (0) the
// checkpoint of a batch is saved before the next batch is written, so a crash
// repeats at most the batch in flight.
func TestCheckpointEveryBatch(t *testing.T) {
	const n, batch = 95, 10
	store := checkpoint.NewMemory()
	var lastAcked string // last id of the previous acknowledged Write
	var violations []string
	sink := &fakeSink{}
	sink.fail = func(call int, recs []ingest.Record) error {
		if call > 1 {
			if got := loadCursor(t, store, "orders"); got != lastAcked {
				violations = append(violations, fmt.Sprintf("write %d saw checkpoint %q, want %q", call, got, lastAcked))
			}
		}
		lastAcked, _ = recs[len(recs)-1].Header(HeaderEventID)
		return nil
	}
	cfg := testConfig(t, "orders", &fakeSource{frames: frames(seq(1, n)...), end: ingest.ErrStreamEnded})
	cfg.CheckpointInterval = 0
	cfg.Batch.MaxEvents = batch
	if err := mustNew(t, cfg, sink, store, nil).Run(t.Context()); err != nil {
		t.Fatal(err)
	}
	if len(violations) > 0 {
		t.Fatalf("checkpoint lagged behind acknowledged batches:\n%s", strings.Join(violations, "\n"))
	}
	if sink.calls < n/batch {
		t.Fatalf("%d writes for %d events in batches of %d", sink.calls, n, batch)
	}
	if c := loadCursor(t, store, "orders"); c != strconv.Itoa(n) {
		t.Fatalf("final checkpoint %q, want %d", c, n)
	}
}

// TestCursorOf is the rule of the package doc's "Who decides the cursor".
func TestCursorOf(t *testing.T) {
	cases := []struct {
		eventID, frame string
		dup            bool
		want           string
	}{
		{"7", "6", false, "7"}, // the event_id wins over the frame's cursor
		{"", "6", false, "6"},  // no event_id: the source's cursor
		{"", "", false, ""},    // neither: the checkpoint stays
		{"7", "7", true, ""},   // a duplicate repeats an older position
	}
	for _, c := range cases {
		if got := cursorOf(c.eventID, c.frame, c.dup); got != c.want {
			t.Errorf("cursorOf(%q, %q, %v) = %q, want %q", c.eventID, c.frame, c.dup, got, c.want)
		}
	}
}

// TestStopBoundedWhateverTheStoreDoes: a stop (Shutdown with no deadline of
// its own) returns within a bound whatever the checkpoint store does: a
// store that refuses every save, or one that never returns and ignores its
// context. Run's error then says the last checkpoint was not saved, and
// from where the stream will be read again.
func TestStopBoundedWhateverTheStoreDoes(t *testing.T) {
	// The bound: one attempt in flight while the lane drains, then the
	// last save.
	const bound = checkpointSaveTimeout + lastSaveTimeout
	cases := []struct {
		name     string
		interval time.Duration
		hang     bool
	}{
		{"refuses, save after every batch", 0, false},
		{"refuses, checkpointer", time.Millisecond, false},
		{"hangs, save after every batch", 0, true},
		{"hangs, checkpointer", time.Millisecond, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				store := &stuckStore{Memory: checkpoint.NewMemory(), okUpTo: 1, hang: c.hang, release: make(chan struct{})}
				defer close(store.release)
				src := newChanSource()
				cfg := testConfig(t, "s", src)
				cfg.CheckpointInterval = c.interval
				cfg.Batch.MaxEvents = 1
				obs := newCounters()
				p := mustNew(t, cfg, &fakeSink{}, store, obs)
				done := make(chan error, 1)
				go func() { done <- p.Run(context.Background()) }()
				src.ch <- frames(1)[0]
				time.Sleep(time.Second) // saved, whoever saves
				for _, f := range frames(2, 3) {
					src.ch <- f
				}
				synctest.Wait()
				start := time.Now()
				shut := make(chan error, 1)
				go func() { shut <- p.Shutdown(context.Background()) }()
				select {
				case err := <-shut:
					if err != nil {
						t.Fatalf("Shutdown = %v", err)
					}
				case <-time.After(time.Hour):
					t.Fatal("Shutdown has not returned an hour after the stop")
				}
				if took := time.Since(start); took > bound {
					t.Errorf("Shutdown took %v, over the bound %v", took, bound)
				}
				err := <-done
				var ce *CheckpointError
				if !errors.As(err, &ce) {
					t.Fatalf("Run = %v, want a *CheckpointError", err)
				}
				if ce.Saved != "1" || ce.Unsaved != "3" {
					t.Errorf("CheckpointError saved %q unsaved %q, want 1 and 3", ce.Saved, ce.Unsaved)
				}
				if !strings.Contains(err.Error(), `read again from the older checkpoint "1"`) {
					t.Errorf("Run = %v, want it to say where the stream is read from", err)
				}
				if obs.ckFailed == 0 {
					t.Error("no CheckpointFailed reported")
				}
			})
		})
	}
}

// stuckStore saves cursors up to okUpTo, then refuses every save, or
// (hang) never returns from it, whatever its context says, until release
// is closed.
type stuckStore struct {
	*checkpoint.Memory
	okUpTo  int
	hang    bool
	release chan struct{}
}

func (s *stuckStore) Save(ctx context.Context, stream, cursor string) error {
	if n, _ := strconv.Atoi(cursor); n <= s.okUpTo {
		return s.Memory.Save(ctx, stream, cursor)
	}
	if s.hang {
		<-s.release
	}
	return errors.New("read-only file system")
}
