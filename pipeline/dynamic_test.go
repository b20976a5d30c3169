package pipeline

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/restless-stream/ingest"
	"github.com/restless-stream/ingest/checkpoint"
)

// chanStream is a stream config reading the frames sent on src.ch, and
// recording the cursor each Open was given.
func chanStream(name string, src *chanSource, cursors chan<- string) StreamConfig {
	return StreamConfig{Name: name, Open: func(_ context.Context, cursor string) (Source, error) {
		if cursors != nil {
			cursors <- cursor
		}
		return src, nil
	}}
}

func sendIDs(t *testing.T, src *chanSource, from, to int) {
	t.Helper()
	for _, id := range seq(from, to) {
		select {
		case src.ch <- frame(event(itoa(id), unsigned())):
		case <-time.After(10 * time.Second):
			t.Fatalf("lane did not read event %d", id)
		}
	}
}

// checkDrained checks what a drained lane published: events 1..k in
// order, k being n or n-1 (a drain may leave the frame its reader had just
// read, which is then read again from the checkpoint), and its checkpoint
// at k, the last published event.
func checkDrained(t *testing.T, published []string, n int, checkpoint string) {
	t.Helper()
	k := len(published)
	if k < n-1 || k > n || !equal(published, idStrings(seq(1, k)...)) {
		t.Errorf("published %v, want 1..%d", published, n)
		return
	}
	if checkpoint != itoa(k) {
		t.Errorf("checkpoint %q, want %d (the last published event)", checkpoint, k)
	}
}

func itoa(i int) string { return idStrings(i)[0] }

func runAsync(p *Pipeline) <-chan error {
	done := make(chan error, 1)
	go func() { done <- p.Run(context.Background()) }()
	return done
}

func names(st []StreamStatus) []string {
	out := make([]string, len(st))
	for i, s := range st {
		out[i] = s.Name
	}
	return out
}

func TestStartAddsALaneWhileRunning(t *testing.T) {
	a, b := newChanSource(), newChanSource()
	sink := &fakeSink{}
	store := checkpoint.NewMemory()
	p := mustNew(t, Config{Streams: []StreamConfig{chanStream("a", a, nil)}, Retry: retryFast}, sink, store, nil)
	done := runAsync(p)

	sendIDs(t, a, 1, 3)
	if err := p.Start(chanStream("b", b, nil)); err != nil {
		t.Fatal(err)
	}
	sendIDs(t, b, 1, 5)
	if got := names(p.Status()); !equal(got, []string{"a", "b"}) {
		t.Fatalf("status lists %v, want [a b]", got)
	}
	if err := p.Start(chanStream("b", b, nil)); !errors.Is(err, ErrStreamRunning) {
		t.Fatalf("second Start of a running stream: %v, want ErrStreamRunning", err)
	}
	if err := p.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	recs := sink.records()
	checkDrained(t, ids(recs, "restless.a"), 3, loadCursor(t, store, "a"))
	checkDrained(t, ids(recs, "restless.b"), 5, loadCursor(t, store, "b"))
	if err := p.Start(chanStream("c", newChanSource(), nil)); !errors.Is(err, ErrStopped) {
		t.Errorf("Start after Shutdown: %v, want ErrStopped", err)
	}
}

func TestStopDrainWritesEverythingAndSaves(t *testing.T) {
	a, b := newChanSource(), newChanSource()
	sink := &fakeSink{}
	store := checkpoint.NewMemory()
	cfg := Config{Streams: []StreamConfig{chanStream("a", a, nil), chanStream("b", b, nil)}, Retry: retryFast,
		Batch: BatchConfig{MaxEvents: 7, MaxWait: time.Hour}} // a batch waits: the drain must flush it
	p := mustNew(t, cfg, sink, store, nil)
	done := runAsync(p)

	sendIDs(t, a, 1, 40)
	sendIDs(t, b, 1, 2)
	if err := p.Stop(context.Background(), "a", Drain); err != nil {
		t.Fatal(err)
	}
	checkDrained(t, ids(sink.records(), "restless.a"), 40, loadCursor(t, store, "a"))
	if got := names(p.Status()); !equal(got, []string{"b"}) {
		t.Errorf("status after Stop lists %v, want [b]", got)
	}
	if err := p.Stop(context.Background(), "a", Drain); !errors.Is(err, ErrUnknownStream) {
		t.Errorf("Stop of a removed stream: %v, want ErrUnknownStream", err)
	}
	select {
	case err := <-done:
		t.Fatalf("Run returned while b runs: %v", err)
	default:
	}
	// b is the last lane: draining it ends Run (no KeepRunning, no Hold).
	if err := p.Stop(context.Background(), "b", Drain); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	checkDrained(t, ids(sink.records(), "restless.b"), 2, loadCursor(t, store, "b"))
}

// gateSink acknowledges the first write at once; the writes after it block
// until their context ends, and then are acknowledged anyway (a broker
// that took the records while the lane was being stopped).
type gateSink struct {
	mu      sync.Mutex
	calls   int
	acked   []ingest.Record
	blocked chan struct{} // closed when the second write is under way
}

func (s *gateSink) Write(ctx context.Context, recs []ingest.Record) error {
	s.mu.Lock()
	s.calls++
	n := s.calls
	s.mu.Unlock()
	if n > 1 {
		if n == 2 {
			close(s.blocked)
		}
		<-ctx.Done()
	}
	s.mu.Lock()
	s.acked = append(s.acked, recs...)
	s.mu.Unlock()
	return nil
}

func (s *gateSink) snapshot() (calls, acked int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls, len(s.acked)
}

func TestStopAbortPublishesAndSavesNothingMore(t *testing.T) {
	a := newChanSource()
	sink := &gateSink{blocked: make(chan struct{})}
	store := checkpoint.NewMemory()
	cfg := Config{Streams: []StreamConfig{chanStream("a", a, nil)}, Retry: retryFast, KeepRunning: true,
		Batch: BatchConfig{MaxEvents: 3, MaxWait: time.Hour}}
	p := mustNew(t, cfg, sink, store, nil)
	done := runAsync(p)

	sendIDs(t, a, 1, 3) // the first batch: acknowledged and checkpointed
	sendIDs(t, a, 4, 6) // the second: its write hangs
	<-sink.blocked
	feeding := make(chan struct{})
	t.Cleanup(func() { close(feeding) })
	go func() {
		// Keep offering events: none may be written after the abort.
		for id := 7; ; id++ {
			select {
			case a.ch <- frame(event(itoa(id), unsigned())):
			case <-feeding:
				return
			}
		}
	}()
	if err := p.Stop(context.Background(), "a", Abort); err != nil {
		t.Fatal(err)
	}
	calls, acked := sink.snapshot()
	if calls != 2 {
		t.Errorf("%d writes, want 2: a write started after the abort", calls)
	}
	// The hanging write was acknowledged as the lane was aborted: its
	// position must not be saved, the stream may belong to another process.
	if c := loadCursor(t, store, "a"); c != "3" {
		t.Errorf("checkpoint %q after the abort, want 3 (the last one saved before it)", c)
	}
	if len(p.Status()) != 0 {
		t.Errorf("status lists %v after the abort", names(p.Status()))
	}
	if _, acked2 := sink.snapshot(); acked2 != acked {
		t.Errorf("records acknowledged after Stop returned: %d, then %d", acked, acked2)
	}
	// With KeepRunning, Run runs on with no lane until Shutdown.
	select {
	case err := <-done:
		t.Fatalf("Run returned with KeepRunning: %v", err)
	default:
	}
	if err := p.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if c := loadCursor(t, store, "a"); c != "3" {
		t.Errorf("checkpoint %q after Shutdown, want 3", c)
	}
}

func TestRestartResumesFromTheDrainedCheckpoint(t *testing.T) {
	first, second := newChanSource(), newChanSource()
	cursors := make(chan string, 2)
	sink := &fakeSink{}
	store := checkpoint.NewMemory()
	p := mustNew(t, Config{Streams: []StreamConfig{chanStream("a", first, cursors)}, Retry: retryFast}, sink, store, nil)
	done := runAsync(p)
	if c := <-cursors; c != "" {
		t.Fatalf("first open at %q, want \"\"", c)
	}
	sendIDs(t, first, 1, 10)
	for p.Status()[0].Acknowledged != "10" { // the chanSource cannot replay
		time.Sleep(time.Millisecond)
	}

	// A changed stream: hold Run across the drain and the new start.
	release := p.Hold()
	if err := p.Stop(context.Background(), "a", Drain); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		t.Fatalf("Run returned while held: %v", err)
	default:
	}
	changed := chanStream("a", second, cursors)
	changed.Destination = "orders.v2"
	if err := p.Start(changed); err != nil {
		t.Fatal(err)
	}
	release()
	if c := <-cursors; c != "10" {
		t.Fatalf("restarted lane opened at %q, want 10", c)
	}
	sendIDs(t, second, 11, 12)
	close(second.ch) // the server ends the stream: the last lane ends Run
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	recs := sink.records()
	if got := ids(recs, "restless.a"); !equal(got, idStrings(seq(1, 10)...)) {
		t.Errorf("before the change: %v", got)
	}
	if got := ids(recs, "orders.v2"); !equal(got, idStrings(11, 12)) {
		t.Errorf("after the change: %v", got)
	}
	st := p.Status()
	if len(st) != 1 || st[0].State != LaneEnded || st[0].Checkpoint != "12" {
		t.Errorf("status %+v, want a ended at 12", st)
	}
}

func TestStartReplacesAnEndedLane(t *testing.T) {
	first, second := newChanSource(), newChanSource()
	cursors := make(chan string, 2)
	store := checkpoint.NewMemory()
	p := mustNew(t, Config{Streams: []StreamConfig{chanStream("a", first, cursors)}, Retry: retryFast, KeepRunning: true}, &fakeSink{}, store, nil)
	done := runAsync(p)
	<-cursors
	sendIDs(t, first, 1, 2)
	close(first.ch)
	for p.Status()[0].State != LaneEnded {
		time.Sleep(time.Millisecond)
	}
	if err := p.Start(chanStream("a", second, cursors)); err != nil {
		t.Fatalf("Start over an ended lane: %v", err)
	}
	if c := <-cursors; c != "2" {
		t.Errorf("opened at %q, want 2", c)
	}
	if got := names(p.Status()); !equal(got, []string{"a"}) {
		t.Errorf("status lists %v", got)
	}
	if err := p.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestStopBeforeRunAndStartValidates(t *testing.T) {
	p := mustNew(t, Config{Streams: []StreamConfig{chanStream("a", newChanSource(), nil)}, KeepRunning: true}, &fakeSink{}, checkpoint.NewMemory(), nil)
	if err := p.Start(StreamConfig{Name: "Bad Name"}); err == nil {
		t.Error("Start accepted an invalid stream")
	}
	if err := p.Stop(context.Background(), "a", Drain); err != nil {
		t.Fatal(err)
	}
	if len(p.Status()) != 0 {
		t.Errorf("status lists %v", names(p.Status()))
	}
	if err := (Config{KeepRunning: true}).Validate(); err != nil {
		t.Errorf("an empty set with KeepRunning: %v", err)
	}
}
