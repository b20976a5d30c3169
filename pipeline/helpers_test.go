package pipeline

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/restless-stream/ingest"
	"github.com/restless-stream/ingest/checkpoint"
	"github.com/restless-stream/ingest/client"
	"github.com/restless-stream/ingest/pipeline/internal/dedupe"
)

const testSecret = "secret"

// evOpt changes how a test event is written.
type evOpt func(*evSpec)

type evSpec struct {
	typ, ts             string
	noID, badSig, noSig bool
	pad                 int
}

func noID() evOpt               { return func(s *evSpec) { s.noID = true } }
func badSig() evOpt             { return func(s *evSpec) { s.badSig = true } }
func unsigned() evOpt           { return func(s *evSpec) { s.noSig = true } }
func errorEvent() evOpt         { return func(s *evSpec) { s.typ = "error"; s.noSig = true } }
func padTo(n int) evOpt         { return func(s *evSpec) { s.pad = n } }
func timestamp(ts string) evOpt { return func(s *evSpec) { s.ts = ts } }

// event returns the JSON of an event with id, signed with testSecret over
// canonical data, and the frame carrying it.
func event(id string, opts ...evOpt) []byte {
	s := evSpec{typ: "update", ts: "2026-06-07T00:49:36.562+00:00"}
	for _, o := range opts {
		o(&s)
	}
	data := `{"id":"order_` + id + `","total":42}`
	if s.pad > 0 {
		fill := s.pad - len(data) - 200
		data = `{"id":"order_` + id + `","note":"` + strings.Repeat("x", max(fill, 0)) + `","total":42}`
	}
	var b strings.Builder
	b.WriteString(`{"type":"` + s.typ + `","meta":{"timestamp":"` + s.ts + `","attempt_id":"a59d","status":200,"latency_ms":43,"payload_mode_fallback":null},`)
	if s.typ == "error" {
		b.WriteString(`"data":null,"error":{"message":"upstream 500"},`)
	} else {
		sig, err := client.ComputeSignatureRaw(testSecret, []byte(data))
		if err != nil {
			panic(err)
		}
		if s.badSig {
			sig = strings.Repeat("0", 64)
		}
		b.WriteString(`"data":` + data + `,"error":null,`)
		if !s.noSig {
			b.WriteString(`"signature":"` + sig + `",`)
		}
	}
	if s.noID {
		b.WriteString(`"signature_note":"none"}`)
	} else {
		b.WriteString(`"event_id":"` + id + `"}`)
	}
	return []byte(b.String())
}

func frame(b []byte) ingest.Frame {
	id, _ := client.EventIDOf(b)
	return ingest.Frame{Data: b, Cursor: id, Received: time.Now()}
}

func frames(ids ...int) []ingest.Frame {
	out := make([]ingest.Frame, len(ids))
	for i, id := range ids {
		out[i] = frame(event(strconv.Itoa(id)))
	}
	return out
}

func seq(from, to int) []int {
	var out []int
	for i := from; i <= to; i++ {
		out = append(out, i)
	}
	return out
}

// fakeSource returns its frames, then end (nil: block until ctx ends).
type fakeSource struct {
	mu     sync.Mutex
	frames []ingest.Frame
	end    error
	nexts  atomic.Int64
	closed atomic.Bool
}

func (s *fakeSource) Next(ctx context.Context) (ingest.Frame, error) {
	s.nexts.Add(1)
	s.mu.Lock()
	if len(s.frames) > 0 {
		f := s.frames[0]
		s.frames = s.frames[1:]
		s.mu.Unlock()
		return f, nil
	}
	s.mu.Unlock()
	if s.end != nil {
		return ingest.Frame{}, s.end
	}
	<-ctx.Done()
	return ingest.Frame{}, ctx.Err()
}

func (s *fakeSource) Close() error { s.closed.Store(true); return nil }

// chanSource returns the frames sent on ch; ErrStreamEnded once ch is closed.
type chanSource struct{ ch chan ingest.Frame }

func newChanSource() *chanSource { return &chanSource{ch: make(chan ingest.Frame)} }

func (s *chanSource) Next(ctx context.Context) (ingest.Frame, error) {
	select {
	case f, ok := <-s.ch:
		if !ok {
			return ingest.Frame{}, ingest.ErrStreamEnded
		}
		return f, nil
	case <-ctx.Done():
		return ingest.Frame{}, ctx.Err()
	}
}

func (s *chanSource) Close() error { return nil }

// endlessSource makes events 1, 2, 3… until ctx ends.
type endlessSource struct {
	n     atomic.Int64
	nexts atomic.Int64
}

func (s *endlessSource) Next(ctx context.Context) (ingest.Frame, error) {
	s.nexts.Add(1)
	if ctx.Err() != nil {
		return ingest.Frame{}, ctx.Err()
	}
	return frame(event(strconv.FormatInt(s.n.Add(1), 10))), nil
}

func (s *endlessSource) Close() error { return nil }

// fakeSink records what it acknowledged. fail, when set, decides the result
// of each Write from its call number (1-based) and records.
type fakeSink struct {
	mu    sync.Mutex
	acked []ingest.Record
	calls int
	sizes []int
	fail  func(call int, recs []ingest.Record) error
	// onAck is called under the lock with every acknowledged record.
	onAck func(ingest.Record)
}

func (s *fakeSink) Write(ctx context.Context, recs []ingest.Record) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	s.sizes = append(s.sizes, len(recs))
	var err error
	if s.fail != nil {
		err = s.fail(s.calls, recs)
	}
	var werrs ingest.WriteErrors
	per := errors.As(err, &werrs) && len(werrs) == len(recs)
	for i, r := range recs {
		if err == nil || (per && werrs[i] == nil) {
			s.acked = append(s.acked, r)
			if s.onAck != nil {
				s.onAck(r)
			}
		}
	}
	return err
}

func (s *fakeSink) records() []ingest.Record {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]ingest.Record(nil), s.acked...)
}

// ids lists the restless-event-id of acknowledged records sent to dest.
func ids(recs []ingest.Record, dest string) []string {
	var out []string
	for _, r := range recs {
		if r.Dest != dest {
			continue
		}
		id, _ := r.Header(HeaderEventID)
		out = append(out, id)
	}
	return out
}

func idStrings(ids ...int) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = strconv.Itoa(id)
	}
	return out
}

// counters is an Observer that counts, for assertions.
type counters struct {
	mu                                        sync.Mutex
	received, published, dup, noID, dlq, lags int
	rejected                                  map[string]int
	writeFailed                               int
	checkpoints                               []string
	ckFailed                                  int
}

func newCounters() *counters                     { return &counters{rejected: map[string]int{}} }
func (c *counters) Stream(string) StreamObserver { return c }
func (c *counters) Received()                    { c.mu.Lock(); c.received++; c.mu.Unlock() }
func (c *counters) Published(n int)              { c.mu.Lock(); c.published += n; c.mu.Unlock() }
func (c *counters) Duplicate()                   { c.mu.Lock(); c.dup++; c.mu.Unlock() }
func (c *counters) NoEventID()                   { c.mu.Lock(); c.noID++; c.mu.Unlock() }
func (c *counters) PublishLatency(time.Duration) {}
func (c *counters) EventLag(time.Duration)       { c.mu.Lock(); c.lags++; c.mu.Unlock() }
func (c *counters) WriteFailed(int, error)       { c.mu.Lock(); c.writeFailed++; c.mu.Unlock() }
func (c *counters) CheckpointFailed(error)       { c.mu.Lock(); c.ckFailed++; c.mu.Unlock() }
func (c *counters) Checkpointed(cur string, _ time.Time) {
	c.mu.Lock()
	c.checkpoints = append(c.checkpoints, cur)
	c.mu.Unlock()
}
func (c *counters) Rejected(r Rejection) {
	c.mu.Lock()
	c.rejected[r.Reason]++
	if r.DeadLettered {
		c.dlq++
	}
	c.mu.Unlock()
}

// testConfig is a one-stream config reading src.
func testConfig(t testing.TB, name string, src Source) Config {
	t.Helper()
	v, err := client.NewVerifier([]string{testSecret})
	if err != nil {
		t.Fatal(err)
	}
	return Config{
		Streams: []StreamConfig{{
			Name:     name,
			Verifier: v,
			Open:     func(context.Context, string) (Source, error) { return src, nil },
		}},
		Retry:              retryFast,
		CheckpointInterval: time.Millisecond,
	}
}

var retryFast = client.Backoff{Initial: time.Millisecond, Max: 4 * time.Millisecond}

// validConfig returns cfg with its defaults, failing the test when it is
// not valid.
func validConfig(t testing.TB, cfg Config) Config {
	t.Helper()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return cfg.withDefaults()
}

// newFilter returns a small dedupe filter, closed when the test ends.
func newFilter(t testing.TB) *dedupe.Filter {
	f := dedupe.New(10, time.Hour)
	t.Cleanup(f.Close)
	return f
}

func mustNew(t testing.TB, cfg Config, sink Sink, store checkpoint.Store, obs Observer) *Pipeline {
	t.Helper()
	p, err := New(cfg, sink, store, obs)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func loadCursor(t testing.TB, s checkpoint.Store, stream string) string {
	t.Helper()
	c, _, err := s.Load(context.Background(), stream)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func equal(a, b []string) bool {
	return fmt.Sprint(a) == fmt.Sprint(b) && len(a) == len(b)
}
