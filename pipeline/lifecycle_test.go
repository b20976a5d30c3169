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

// TestConcurrentLanes runs several streams over one sink (run with -race):
// each stream's events arrive complete and in order.
func TestConcurrentLanes(t *testing.T) {
	const streams, n = 4, 1500
	cfg := Config{Retry: retryFast, Batch: BatchConfig{MaxEvents: 64}}
	v := testConfig(t, "x", nil).Streams[0].Verifier
	for s := range streams {
		src := &fakeSource{frames: frames(seq(1, n)...), end: ingest.ErrStreamEnded}
		cfg.Streams = append(cfg.Streams, StreamConfig{
			Name: "s" + strconv.Itoa(s), Verifier: v,
			Open: func(context.Context, string) (Source, error) { return src, nil },
		})
	}
	// Fail now and then, for every stream.
	sink := &fakeSink{fail: func(call int, recs []ingest.Record) error {
		if call%7 == 0 {
			return errors.New("flaky")
		}
		return nil
	}}
	store := checkpoint.NewMemory()
	obs := newCounters()
	p := mustNew(t, cfg, sink, store, obs)
	if err := p.Run(t.Context()); err != nil {
		t.Fatal(err)
	}
	checkWindowsFreed(t, p, true)
	recs := sink.records()
	for s := range streams {
		name := "s" + strconv.Itoa(s)
		if got := ids(recs, "restless."+name); !equal(got, idStrings(seq(1, n)...)) {
			t.Errorf("%s: %d events, first %v", name, len(got), got[:min(10, len(got))])
		}
		if c := loadCursor(t, store, name); c != strconv.Itoa(n) {
			t.Errorf("%s: checkpoint %q", name, c)
		}
	}
	if obs.published != streams*n || obs.received != streams*n {
		t.Errorf("published %d received %d, want %d", obs.published, obs.received, streams*n)
	}
}

// TestCrashReplay: the process dies after the sink acknowledged events but
// before their checkpoint was saved. The restart resumes from the saved
// checkpoint: every event is published at least once, nothing at or before
// the checkpoint is read again, and the checkpoint never covered an
// unacknowledged event.
func TestCrashReplay(t *testing.T) { synctest.Test(t, testCrashReplay) }

func testCrashReplay(t *testing.T) {
	const n = 100
	all := frames(seq(1, n)...)
	durable := checkpoint.NewMemory()
	// The crash: saves stop reaching the disk once 40 events were saved.
	crashed := &crashStore{Memory: durable, after: 40}

	// Run 1: the sink acknowledges 1..70, then the broker goes away; the
	// process is killed (its context cancelled) while retrying.
	sink1 := &fakeSink{fail: func(call int, recs []ingest.Record) error {
		werrs := make(ingest.WriteErrors, len(recs))
		failed := false
		for i, r := range recs {
			id, _ := r.Header(HeaderEventID)
			if k, _ := strconv.Atoi(id); k > 70 {
				werrs[i], failed = errors.New("broker gone"), true
			}
		}
		if failed {
			return werrs
		}
		return nil
	}}
	src1 := &fakeSource{frames: all}
	cfg := testConfig(t, "orders", src1)
	cfg.Batch.MaxEvents = 10
	// A save after every batch: the crash lands at a known batch whatever
	// the goroutines' schedule (a checkpointer beside the writer may first
	// save after the writer is well past event 40).
	cfg.CheckpointInterval = 0
	ctx, kill := context.WithCancel(t.Context())
	p1 := mustNew(t, cfg, sink1, crashed, nil)
	done := make(chan error)
	go func() { done <- p1.Run(ctx) }()
	// Wait until the lane is stuck retrying 71…, then kill.
	synctest.Wait()
	if st := p1.Status()[0]; st.Acknowledged != "70" {
		t.Fatalf("acknowledged %q before the crash, want 70", st.Acknowledged)
	}
	kill()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	resume := loadCursor(t, durable, "orders")
	k, _ := strconv.Atoi(resume)
	if k < 1 || k > 70 {
		t.Fatalf("durable checkpoint %q: not within the acknowledged events 1..70", resume)
	}

	// Run 2: the source replays after the cursor it is given.
	var opened string
	src2 := &fakeSource{frames: all[k:], end: ingest.ErrStreamEnded}
	cfg2 := testConfig(t, "orders", nil)
	cfg2.Streams[0].Open = func(_ context.Context, cursor string) (Source, error) {
		opened = cursor
		return src2, nil
	}
	sink2 := &fakeSink{}
	if err := mustNew(t, cfg2, sink2, durable, nil).Run(t.Context()); err != nil {
		t.Fatal(err)
	}
	if opened != resume {
		t.Fatalf("restart opened the source at %q, want %q", opened, resume)
	}
	got := ids(sink2.records(), "restless.orders")
	if !equal(got, idStrings(seq(k+1, n)...)) {
		t.Errorf("replayed %v…, want %d..%d", got[:min(5, len(got))], k+1, n)
	}
	seen := map[string]bool{}
	for _, id := range append(ids(sink1.records(), "restless.orders"), got...) {
		seen[id] = true
	}
	if len(seen) != n {
		t.Errorf("%d distinct events published over both runs, want %d", len(seen), n)
	}
	if c := loadCursor(t, durable, "orders"); c != strconv.Itoa(n) {
		t.Errorf("final checkpoint %q", c)
	}
}

// crashStore stops persisting saves beyond cursor `after`, as if the process
// died between the write and the checkpoint.
type crashStore struct {
	*checkpoint.Memory
	after int
}

func (s *crashStore) Save(ctx context.Context, stream, cursor string) error {
	if k, _ := strconv.Atoi(cursor); k > s.after {
		return nil // lost in the crash
	}
	return s.Memory.Save(ctx, stream, cursor)
}

// TestShutdownDrains: Shutdown stops reading, writes everything read and
// checkpoints the last event.
func TestShutdownDrains(t *testing.T) {
	src := &endlessSource{}
	flowing := make(chan struct{})
	var acked int
	sink := &fakeSink{onAck: func(ingest.Record) {
		if acked++; acked == 2000 {
			close(flowing)
		}
	}}
	store := checkpoint.NewMemory()
	cfg := testConfig(t, "orders", src)
	cfg.Batch.MaxEvents = 64
	p := mustNew(t, cfg, sink, store, nil)
	done := make(chan error)
	go func() { done <- p.Run(t.Context()) }()
	<-flowing
	if err := p.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	got := ids(sink.records(), "restless.orders")
	read := int(src.n.Load())
	// Everything processed was written; at most the frame the reader held
	// when it stopped is left (and it is not checkpointed).
	if len(got) < read-1 || !equal(got, idStrings(seq(1, len(got))...)) {
		t.Fatalf("wrote %d of %d events read", len(got), read)
	}
	if c := loadCursor(t, store, "orders"); c != strconv.Itoa(len(got)) {
		t.Errorf("checkpoint %q, want %d", c, len(got))
	}
	if st := p.Status()[0]; st.State != LaneStopped {
		t.Errorf("state %v, want stopped", st.State)
	}
	checkWindowsFreed(t, p, true)
}

// TestShutdownDeadline: with the broker down, Shutdown gives up at its
// deadline; the checkpoint holds only acknowledged events.
func TestShutdownDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := &fakeSource{frames: frames(seq(1, 30)...)}
		sink := &fakeSink{fail: func(call int, recs []ingest.Record) error {
			if call == 1 {
				return nil
			}
			return errors.New("broker down")
		}}
		store := checkpoint.NewMemory()
		cfg := testConfig(t, "orders", src)
		cfg.Batch.MaxEvents = 10
		p := mustNew(t, cfg, sink, store, nil)
		done := make(chan error)
		go func() { done <- p.Run(t.Context()) }()
		time.Sleep(time.Second)
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
		defer cancel()
		if err := p.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Shutdown = %v, want DeadlineExceeded", err)
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if c := loadCursor(t, store, "orders"); c != "10" {
			t.Errorf("checkpoint %q, want 10 (the acknowledged batch)", c)
		}
		checkWindowsFreed(t, p, true)
	})
}

// TestBackpressure: while the sink is stuck, the lane stops reading after a
// bounded number of events.
func TestBackpressure(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := &endlessSource{}
		block := make(chan struct{})
		sink := &fakeSink{}
		sink.fail = func(int, []ingest.Record) error {
			sink.mu.Unlock()
			<-block
			sink.mu.Lock()
			return nil
		}
		cfg := testConfig(t, "orders", src)
		cfg.Batch.MaxEvents = 16
		cfg.Buffer = 32
		p := mustNew(t, cfg, sink, checkpoint.NewMemory(), nil)
		done := make(chan error)
		go func() { done <- p.Run(t.Context()) }()
		synctest.Wait()
		// Held: the batch being written, the buffer, and the frame the
		// reader is trying to hand on; plus the Next call under way.
		if n := src.nexts.Load(); n > 16+32+2 {
			t.Errorf("read %d events while the sink is stuck; the bound is %d", n, 16+32+2)
		}
		time.Sleep(time.Minute)
		synctest.Wait()
		if n := src.nexts.Load(); n > 16+32+2 {
			t.Errorf("read %d events after a minute", n)
		}
		close(block)
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		_ = p.Shutdown(ctx)
		<-done
	})
}

// TestLaneEnds covers the ways a lane stops, and what Run returns.
func TestLaneEnds(t *testing.T) {
	authErr := &ingest.PermanentError{Err: errors.New("401 unauthorized")}
	v := testConfig(t, "x", nil).Streams[0].Verifier
	open := func(src Source) func(context.Context, string) (Source, error) {
		return func(context.Context, string) (Source, error) { return src, nil }
	}
	ended := &fakeSource{frames: frames(1, 2), end: ingest.ErrStreamEnded}
	failed := &fakeSource{frames: frames(1, 2, 3), end: authErr}
	cfg := Config{Streams: []StreamConfig{
		{Name: "ended", Verifier: v, Open: open(ended)},
		{Name: "failed", Verifier: v, Open: open(failed)},
		{Name: "noopen", Verifier: v, Open: func(context.Context, string) (Source, error) { return nil, errors.New("bad url") }},
		{Name: "corrupt", Verifier: v, Open: open(&fakeSource{end: ingest.ErrStreamEnded})},
		{Name: "nilsrc", Verifier: v, Open: func(context.Context, string) (Source, error) { return nil, nil }},
	}}
	store := &brokenStore{Memory: checkpoint.NewMemory(), broken: "corrupt"}
	sink := &fakeSink{}
	p := mustNew(t, cfg, sink, store, nil)
	err := p.Run(t.Context())
	var se *StreamError
	if !errors.As(err, &se) || !errors.Is(err, authErr) || !errors.Is(err, checkpoint.ErrCorrupt) {
		t.Fatalf("Run = %v; want StreamErrors for failed, noopen and corrupt", err)
	}
	for _, want := range []string{`stream "failed"`, `stream "noopen": bad url`, `stream "corrupt"`, `stream "nilsrc": the Open function returned no source`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q does not contain %q", err, want)
		}
	}
	if strings.Contains(err.Error(), `"ended"`) {
		t.Errorf("the cleanly ended stream is reported: %v", err)
	}
	states := map[string]LaneState{}
	for _, s := range p.Status() {
		states[s.Name] = s.State
		if (s.State == LaneFailed) != (s.Err != nil) {
			t.Errorf("%s: state %v with error %v", s.Name, s.State, s.Err)
		}
	}
	want := map[string]LaneState{"ended": LaneEnded, "failed": LaneFailed, "noopen": LaneFailed, "corrupt": LaneFailed, "nilsrc": LaneFailed}
	if fmt.Sprint(states) != fmt.Sprint(want) {
		t.Errorf("states %v, want %v", states, want)
	}
	// What the failed source read before failing was still published and checkpointed.
	if got := ids(sink.records(), "restless.failed"); !equal(got, idStrings(1, 2, 3)) {
		t.Errorf("failed stream published %v", got)
	}
	if c := loadCursor(t, store, "failed"); c != "3" {
		t.Errorf("failed stream checkpoint %q", c)
	}
	if !ended.closed.Load() || !failed.closed.Load() {
		t.Error("a source was not closed")
	}
	// Lanes that published (ended, failed) and lanes that never opened
	// their source all gave their window back.
	checkWindowsFreed(t, p, false)
}

// checkWindowsFreed checks that every lane of p, whose Run returned, closed
// its dedupe window and keeps no view into its memory; with used, that each
// window had held ids (so memory was really allocated and freed).
func checkWindowsFreed(t *testing.T, p *Pipeline, used bool) {
	t.Helper()
	for _, r := range p.lanes {
		l := r.lane
		if !l.dd.Freed() {
			t.Errorf("%s: window not freed after Run returned", l.cfg.Name)
		}
		if used && !l.dd.Used() {
			t.Errorf("%s: window never held an id", l.cfg.Name)
		}
	}
}

type brokenStore struct {
	*checkpoint.Memory
	broken string
}

func (s *brokenStore) Load(ctx context.Context, stream string) (string, bool, error) {
	if stream == s.broken {
		return "", false, fmt.Errorf("checkpoint: stream %q: %w", stream, checkpoint.ErrCorrupt)
	}
	return s.Memory.Load(ctx, stream)
}

// TestResume: a stream opens its source at its checkpoint, or at "" (the
// source's since) when it has none.
func TestResume(t *testing.T) {
	store := checkpoint.NewMemory()
	if err := store.Save(t.Context(), "known", "41"); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	opened := map[string]string{}
	open := func(name string) func(context.Context, string) (Source, error) {
		return func(_ context.Context, cursor string) (Source, error) {
			mu.Lock()
			opened[name] = cursor
			mu.Unlock()
			return &fakeSource{end: ingest.ErrStreamEnded}, nil
		}
	}
	cfg := Config{Streams: []StreamConfig{{Name: "known", Open: open("known")}, {Name: "fresh", Open: open("fresh")}}}
	p := mustNew(t, cfg, &fakeSink{}, store, nil)
	if err := p.Run(t.Context()); err != nil {
		t.Fatal(err)
	}
	if opened["known"] != "41" || opened["fresh"] != "" {
		t.Errorf("opened at %v", opened)
	}
	if st := p.Status()[0]; st.Checkpoint != "41" || st.State != LaneEnded {
		t.Errorf("status %+v", st)
	}
}

func TestShutdownBeforeRun(t *testing.T) {
	p := mustNew(t, testConfig(t, "s", &fakeSource{}), &fakeSink{}, checkpoint.NewMemory(), nil)
	if err := p.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := p.Run(t.Context()); err != nil {
		t.Fatalf("Run after Shutdown = %v", err)
	}
	if err := p.Run(t.Context()); err == nil {
		t.Error("second Run accepted")
	}
}

func TestLaneStateString(t *testing.T) {
	for s, want := range map[LaneState]string{LaneIdle: "idle", LaneRunning: "running", LaneFailed: "failed", LaneState(42): "LaneState(42)"} {
		if s.String() != want {
			t.Errorf("%d: %q", int(s), s.String())
		}
	}
}

// TestBrokerRefusesForGood: a record the sink refuses with an
// ingest.PermanentError is rejected as publish_rejected instead of being
// retried forever; the records around it are published and the checkpoint
// moves past it.
func TestBrokerRefusesForGood(t *testing.T) {
	sink := &fakeSink{fail: func(call int, recs []ingest.Record) error {
		werrs := make(ingest.WriteErrors, len(recs))
		bad := false
		for i, r := range recs {
			if id, _ := r.Header(HeaderEventID); id == "3" {
				werrs[i], bad = &ingest.PermanentError{Err: errors.New("record too large for the broker")}, true
			}
		}
		if bad {
			return werrs
		}
		return nil
	}}
	store := checkpoint.NewMemory()
	obs := newCounters()
	cfg := testConfig(t, "orders", &fakeSource{frames: frames(1, 2, 3, 4, 5), end: ingest.ErrStreamEnded})
	cfg.CheckpointInterval = 0
	if err := mustNew(t, cfg, sink, store, obs).Run(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := ids(sink.records(), "restless.orders"); !equal(got, idStrings(1, 2, 4, 5)) {
		t.Fatalf("published %v, want [1 2 4 5]", got)
	}
	if sink.calls != 1 {
		t.Fatalf("%d writes: a refused record must not be retried", sink.calls)
	}
	if obs.rejected[ReasonPublishRejected] != 1 || obs.writeFailed != 0 {
		t.Fatalf("rejected %v, write failures %d", obs.rejected, obs.writeFailed)
	}
	if c := loadCursor(t, store, "orders"); c != "5" {
		t.Fatalf("checkpoint %q, want 5", c)
	}
}
