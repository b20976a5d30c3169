package nats

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/restless-stream/ingest"
	"github.com/restless-stream/ingest/internal/natsserver"
)

// startServer starts an embedded NATS server with JetStream, stopped when
// the test ends.
func startServer(t *testing.T, cfg natsserver.Config) *natsserver.Server {
	t.Helper()
	srv, err := natsserver.Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	return srv
}

// TestOutage stops the server under a writer: publishing while the server is
// down waits (in the reconnect buffer) or fails at once (without one) and,
// retried the way the pipeline retries failed records, gets through once the
// server is back; afterwards the stream holds every record exactly once.
func TestOutage(t *testing.T) {
	tests := []struct {
		name    string
		bufSize int
	}{
		{"reconnect buffer", 0},
		{"no reconnect buffer", -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { testOutage(t, tt.bufSize) })
	}
}

func testOutage(t *testing.T, bufSize int) {
	dir := t.TempDir()
	srv := startServer(t, natsserver.Config{Dir: dir})
	port := srv.Port()

	states := make(chan ingest.State, 16)
	cfg := Config{
		URLs:             []string{srv.ClientURL()},
		ReconnectWait:    20 * time.Millisecond,
		AckTimeout:       5 * time.Second,
		ReconnectBufSize: bufSize,
		OnState: func(c ingest.StateChange) {
			select {
			case states <- c.State:
			default:
			}
		},
	}
	s := newSink(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()

	before := records("restless.orders", "orders", 0, 50)
	if err := s.Write(ctx, before); err != nil {
		t.Fatal(err)
	}

	srv.Shutdown()
	if st := <-states; st != ingest.StateReconnecting {
		t.Fatalf("state after shutdown = %v, want reconnecting", st)
	}
	if s.Connected() {
		t.Fatal("Connected while the server is down")
	}

	var up atomic.Bool
	var attempts atomic.Int32
	during := records("restless.orders", "orders", 50, 50)
	done := make(chan error, 1)
	go func() { done <- writeRetrying(ctx, s, during, &up, &attempts) }()

	// Let the writer meet the outage at least once before the server returns.
	for attempts.Load() == 0 {
		select {
		case err := <-done:
			t.Fatalf("writer finished while the server was down: %v", err)
		case <-time.After(5 * time.Millisecond):
		}
	}
	up.Store(true)
	srv2 := startServer(t, natsserver.Config{Dir: dir, Port: port})
	defer srv2.Shutdown()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if st := <-states; st != ingest.StateConnected {
		t.Fatalf("state after restart = %v, want connected", st)
	}
	t.Logf("writes: %d, duplicates caught: %d", attempts.Load(), s.Duplicates())
	// Something resent is fine; the stream must hold each record once.
	msgs := storedMsgs(t, s)
	if len(msgs) != 100 {
		t.Fatalf("stream has %d messages, want 100 (duplicates caught: %d)", len(msgs), s.Duplicates())
	}
	for i, m := range msgs {
		if want := append(before, during...)[i].MsgID; m.Header.Get(jetstream.MsgIDHeader) != want {
			t.Fatalf("message %d has id %q, want %q", i, m.Header.Get(jetstream.MsgIDHeader), want)
		}
	}
}

// writeRetrying resends the records that failed until all are acknowledged,
// as the pipeline does. A success while the server is down is an error.
func writeRetrying(ctx context.Context, s *Sink, recs []ingest.Record, up *atomic.Bool, attempts *atomic.Int32) error {
	pending := recs
	for {
		attempts.Add(1)
		err := s.Write(ctx, pending)
		if err == nil {
			if !up.Load() {
				return errors.New("Write reported success while the server was down")
			}
			return nil
		}
		var werr ingest.WriteErrors
		if !errors.As(err, &werr) {
			return err
		}
		var next []ingest.Record
		for i, e := range werr {
			if e != nil {
				next = append(next, pending[i])
			}
		}
		pending = next
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond): // the pipeline's backoff
		}
	}
}

// TestOutageInFlight stops the server while batches stream in: records whose
// acknowledgement was lost are resent and the server's duplicate detection
// keeps each one once.
func TestOutageInFlight(t *testing.T) {
	dir := t.TempDir()
	srv := startServer(t, natsserver.Config{Dir: dir})
	port := srv.Port()
	s := newSink(t, Config{URLs: []string{srv.ClientURL()}, ReconnectWait: 20 * time.Millisecond, AckTimeout: 5 * time.Second})
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()

	const batches, size = 20, 100
	var up atomic.Bool
	up.Store(true)
	var attempts atomic.Int32
	written := make(chan int, batches)
	done := make(chan error, 1)
	go func() {
		for b := range batches {
			if err := writeRetrying(ctx, s, records("restless.orders", "orders", b*size, size), &up, &attempts); err != nil {
				done <- err
				return
			}
			written <- b
		}
		done <- nil
	}()
	<-written
	<-written
	srv.Shutdown()
	srv2 := startServer(t, natsserver.Config{Dir: dir, Port: port})
	defer srv2.Shutdown()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	msgs := storedMsgs(t, s)
	t.Logf("writes: %d, duplicates caught: %d", attempts.Load(), s.Duplicates())
	if len(msgs) != batches*size {
		t.Fatalf("stream has %d messages, want %d", len(msgs), batches*size)
	}
	seen := make(map[string]bool)
	for _, m := range msgs {
		id := m.Header.Get(jetstream.MsgIDHeader)
		if seen[id] {
			t.Fatalf("%s stored twice", id)
		}
		seen[id] = true
	}
}

// waitRefused waits until Close has begun, and checks that a Write is
// refused with ingest.ErrClosed then.
func waitRefused(t *testing.T, s *Sink) {
	t.Helper()
	for !s.writes.Closing() {
		runtime.Gosched()
	}
	err := s.Write(context.Background(), records("restless.orders", "late", 0, 1))
	var werr ingest.WriteErrors
	if !errors.As(err, &werr) || !errors.Is(werr[0], ingest.ErrClosed) {
		t.Fatalf("Write while closing = %v", err)
	}
}

// holdAcks subscribes to subject, where no stream listens, and answers each
// publish with a JetStream acknowledgement only once release is closed, so
// that a Write to subject stays in progress; held is closed at the first
// publish.
func holdAcks(t *testing.T, url, subject string) (held, release chan struct{}) {
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	held, release = make(chan struct{}), make(chan struct{})
	var once sync.Once
	if _, err := nc.Subscribe(subject, func(m *nats.Msg) {
		once.Do(func() { close(held) })
		<-release
		_ = m.Respond([]byte(`{"stream":"HELD","seq":1}`))
	}); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return held, release
}

// TestCloseWaitsForWrites: a Write waiting for its acknowledgements keeps
// Close waiting; new Writes are refused at once; once the acknowledgements
// come, the Write succeeds and Close returns.
func TestCloseWaitsForWrites(t *testing.T) {
	srv := startServer(t, natsserver.Config{Dir: t.TempDir()})
	s := newSink(t, Config{URLs: []string{srv.ClientURL()}, AckTimeout: time.Minute})
	held, release := holdAcks(t, srv.ClientURL(), "held.orders")
	written := make(chan error, 1)
	go func() { written <- s.Write(context.Background(), records("held.orders", "orders", 0, 3)) }()
	<-held

	closed := make(chan error, 1)
	go func() { closed <- s.Close(context.Background()) }()
	waitRefused(t, s)
	select {
	case err := <-closed:
		t.Fatalf("Close returned %v while a Write was in progress", err)
	default:
	}
	close(release)
	if err := <-written; err != nil {
		t.Fatalf("the Write in progress: %v", err)
	}
	if err := <-closed; err != nil {
		t.Fatalf("Close = %v", err)
	}
	if s.Connected() {
		t.Fatal("connected after Close")
	}
	if err := s.Close(context.Background()); err != nil {
		t.Fatalf("second Close = %v", err)
	}
}

// TestCloseCancelsWhenContextEnds: when Close's context ends while a Write
// waits for acknowledgements, the Write is cancelled, its records fail, and
// Close says so.
func TestCloseCancelsWhenContextEnds(t *testing.T) {
	srv := startServer(t, natsserver.Config{Dir: t.TempDir()})
	s := newSink(t, Config{URLs: []string{srv.ClientURL()}, AckTimeout: time.Minute})
	held, release := holdAcks(t, srv.ClientURL(), "held.orders")
	t.Cleanup(func() { close(release) })
	written := make(chan error, 1)
	go func() { written <- s.Write(context.Background(), records("held.orders", "orders", 0, 3)) }()
	<-held

	ctx, cancel := context.WithCancel(context.Background())
	closed := make(chan error, 1)
	go func() { closed <- s.Close(ctx) }()
	waitRefused(t, s)
	cancel()
	if err := <-closed; !errors.Is(err, context.Canceled) {
		t.Fatalf("Close = %v, want context.Canceled", err)
	}
	var werr ingest.WriteErrors
	if err := <-written; !errors.As(err, &werr) || werr.Count() != 3 || !errors.Is(werr[0], context.Canceled) {
		t.Fatalf("the cancelled Write = %v", err)
	}
}
