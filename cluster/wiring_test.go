package cluster

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/restless-stream/ingest/checkpoint"
)

// The daemon's wiring, in miniature: on Assigned it claims the stream's
// checkpoint with the lease's token and starts a lane under the lease's
// context; the lane "publishes" (counts up from the claimed cursor) and
// saves through its claim; on Revoked it stops, saves and releases; on Lost
// it stops without saving. The test checks what the issue promises: the
// stored checkpoint of a stream never goes backwards, whatever handovers,
// failovers and late saves of a cut-off replica happen, and a late save
// after a newer claim never succeeds.

type lane struct {
	stop    chan struct{}
	done    chan struct{}
	stopped sync.Once
}

type wiredMember struct {
	t      *testing.T
	id     string
	c      Coordinator
	store  checkpoint.Claimer
	audit  *saveAudit
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu    sync.Mutex
	lanes map[string]*lane
	// late, when set, makes a lane that lost its lease save once more after
	// that long: a replica paused in the middle of a save.
	late time.Duration
}

// saveAudit watches the stored checkpoints through a store of its own, as
// a replica that is about to claim would read them, and counts the late
// saves.
type saveAudit struct {
	mu       sync.Mutex
	last     map[string]int
	backward []string
	reads    int
	fenced   int
	lateOK   int
}

func (a *saveAudit) watch(ctx context.Context, t *testing.T, store checkpoint.Store, streams []string) {
	for ctx.Err() == nil {
		for _, s := range streams {
			cur, ok, err := store.Load(ctx, s)
			if err != nil || !ok {
				continue
			}
			n, err := strconv.Atoi(cur)
			if err != nil {
				t.Errorf("stream %s: checkpoint %q", s, cur)
				continue
			}
			a.mu.Lock()
			if prev, ok := a.last[s]; ok && n < prev {
				a.backward = append(a.backward, fmt.Sprintf("%s: %d after %d", s, n, prev))
			}
			a.last[s] = n
			a.reads++
			a.mu.Unlock()
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func startWired(t *testing.T, id string, c Coordinator, store checkpoint.Claimer, audit *saveAudit, streams []string) *wiredMember {
	w := &wiredMember{t: t, id: id, c: c, store: store, audit: audit, lanes: map[string]*lane{}}
	if err := c.SetStreams(streams); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	w.cancel = cancel
	w.wg.Go(func() {
		if err := c.Run(ctx); err != nil {
			t.Error(err)
		}
	})
	w.wg.Go(w.events)
	return w
}

func (w *wiredMember) events() {
	for ev := range w.c.Events() {
		l := ev.Lease
		switch ev.Kind {
		case Assigned:
			w.mu.Lock()
			prev := w.lanes[l.Stream()]
			w.mu.Unlock()
			if prev != nil {
				<-prev.done // a stream's lanes never overlap within a replica
			}
			claim, err := w.store.Claim(l.Context(), l.Stream(), l.Token().String())
			if err != nil {
				if l.Err() == nil {
					w.t.Errorf("%s: claim %s: %v", w.id, l.Stream(), err)
				}
				continue
			}
			ln := &lane{stop: make(chan struct{}), done: make(chan struct{})}
			w.mu.Lock()
			w.lanes[l.Stream()] = ln
			w.mu.Unlock()
			w.wg.Go(func() { w.run(l, claim, ln) })
		case Revoked:
			w.mu.Lock()
			ln := w.lanes[l.Stream()]
			w.mu.Unlock()
			if ln != nil {
				ln.stopped.Do(func() { close(ln.stop) })
				w.wg.Go(func() {
					<-ln.done
					l.Release()
				})
			}
		}
	}
}

// run is one lane: count up from the claimed cursor, save every few steps,
// stop at once when the lease ends, save a last time when asked to stop.
func (w *wiredMember) run(l *Lease, claim *checkpoint.Claim, ln *lane) {
	defer close(ln.done)
	defer func() { _ = claim.Close() }()
	s := l.Stream()
	n := 0
	if cur, ok, _ := claim.Load(l.Context(), s); ok {
		n, _ = strconv.Atoi(cur)
	}
	save := func(ctx context.Context) error {
		return claim.Save(ctx, s, strconv.Itoa(n))
	}
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for i := 1; ; i++ {
		select {
		case <-l.Context().Done():
			w.mu.Lock()
			late := w.late
			w.mu.Unlock()
			if late > 0 {
				// A replica paused in the middle of a save resumes after
				// the others took its streams over.
				time.Sleep(late)
				n += 1000
				err := save(context.Background())
				w.audit.mu.Lock()
				if errors.Is(err, checkpoint.ErrFenced) {
					w.audit.fenced++
				} else if err == nil {
					w.audit.lateOK++
				} else {
					w.t.Logf("late save: %v", err)
				}
				w.audit.mu.Unlock()
			}
			return
		case <-ln.stop:
			if err := save(l.Context()); err != nil {
				w.t.Errorf("%s: final save of %s: %v", w.id, s, err)
			}
			return
		case <-tick.C:
			n++ // published
			if i%3 == 0 {
				if err := save(l.Context()); err != nil && l.Err() == nil && !errors.Is(err, checkpoint.ErrFenced) {
					w.t.Errorf("%s: save %s: %v", w.id, s, err)
				}
			}
		}
	}
}

func (w *wiredMember) count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for _, ln := range w.lanes {
		select {
		case <-ln.done:
		default:
			n++
		}
	}
	return n
}

func (w *wiredMember) leave() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := w.c.Leave(ctx); err != nil {
		w.t.Errorf("%s: leave: %v", w.id, err)
	}
	w.cancel()
	w.wg.Wait()
}

func (w *wiredMember) stop() {
	w.cancel()
	w.wg.Wait()
}

type cutter interface {
	cut()
	heal()
}

// wiredScenario: three replicas settle; one leaves cleanly; it comes back;
// one is cut off from coordination while its lanes try a late save; it
// comes back. The checkpoint of no stream ever goes backwards.
func wiredScenario(t *testing.T, ttl time.Duration, observer checkpoint.Store, streams []string, add func(id string, audit *saveAudit) (*wiredMember, cutter)) {
	audit := &saveAudit{last: map[string]int{}}
	octx, stopObserver := context.WithCancel(context.Background())
	var owg sync.WaitGroup
	owg.Go(func() { audit.watch(octx, t, observer, streams) })
	a, _ := add("a", audit)
	b, _ := add("b", audit)
	c, _ := add("c", audit)
	defer func() {
		for _, w := range []*wiredMember{a, b} {
			w.stop()
		}
	}()
	settle := func(what string, ws ...*wiredMember) {
		t.Helper()
		waitFor(t, 6*ttl, 10*time.Millisecond, what, func() bool {
			for _, w := range ws {
				if w.count() != 12/len(ws) {
					return false
				}
			}
			return true
		})
	}
	settle("12 lanes on a, b, c", a, b, c)
	time.Sleep(50 * time.Millisecond)
	c.leave()
	settle("12 lanes on a and b", a, b)
	time.Sleep(50 * time.Millisecond)
	d, gate := add("d", audit)
	settle("12 lanes on a, b, d", a, b, d)
	time.Sleep(50 * time.Millisecond)
	d.mu.Lock()
	d.late = ttl
	d.mu.Unlock()
	gate.cut()
	waitFor(t, 4*ttl, 10*time.Millisecond, "d's lanes stop", func() bool { return d.count() == 0 })
	settle("a and b run everything", a, b)
	waitFor(t, 4*ttl, 10*time.Millisecond, "d's late saves", func() bool {
		audit.mu.Lock()
		defer audit.mu.Unlock()
		return audit.fenced+audit.lateOK == 4
	})
	d.mu.Lock()
	d.late = 0
	d.mu.Unlock()
	gate.heal()
	settle("12 lanes on a, b, d again", a, b, d)
	time.Sleep(50 * time.Millisecond)
	d.stop()
	stopObserver()
	owg.Wait()

	audit.mu.Lock()
	defer audit.mu.Unlock()
	for _, s := range audit.backward {
		t.Errorf("checkpoint went backwards: %s", s)
	}
	t.Logf("%d checkpoint reads; late saves of the cut-off replica: %d refused as fenced, %d written (and ignored by readers)", audit.reads, audit.fenced, audit.lateOK)
	if audit.fenced+audit.lateOK != 4 {
		t.Errorf("%d late saves, want one for each of the cut-off replica's 4 streams", audit.fenced+audit.lateOK)
	}
	for s, n := range audit.last {
		if n >= 1000 {
			t.Errorf("stream %s: a late save (%d) won", s, n)
		}
	}
}

func TestWiringNATS(t *testing.T) {
	const ttl = 2 * time.Second
	rn := newRealNATS(t, sharedNATS, 12, ttl)
	js := connectJS(t, sharedNATS)
	bucket := "ckpt_" + rn.name
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = js.DeleteKeyValue(ctx, bucket)
	})
	observer, err := checkpoint.NewNATSKV(t.Context(), js, bucket)
	if err != nil {
		t.Fatal(err)
	}
	wiredScenario(t, ttl, observer, rn.streams, func(id string, audit *saveAudit) (*wiredMember, cutter) {
		js := connectJS(t, sharedNATS)
		store, err := checkpoint.NewNATSKV(t.Context(), js, bucket)
		if err != nil {
			t.Fatal(err)
		}
		n, err := NewNATS(t.Context(), js, NATSConfig{Name: rn.name, Member: id, LeaseTTL: ttl})
		if err != nil {
			t.Fatal(err)
		}
		g := newGatedKV(n.kv)
		n.kv = g
		return startWired(t, id, n, store, audit, rn.streams), g
	})
}

func TestWiringKafka(t *testing.T) {
	const ttl = 2 * time.Second
	c, _ := newKfake(t, 3)
	name := "t" + strconv.FormatInt(time.Now().UnixNano(), 36)
	streams := streamNames(12)
	otr := &kafka.Transport{}
	t.Cleanup(otr.CloseIdleConnections)
	observer, err := checkpoint.NewKafka(t.Context(), checkpoint.KafkaConfig{Client: &kafka.Client{Addr: kafka.TCP(c.ListenAddrs()...), Transport: otr}, TailInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = observer.Close() })
	wiredScenario(t, ttl, observer, streams, func(id string, audit *saveAudit) (*wiredMember, cutter) {
		tr := &kafka.Transport{}
		t.Cleanup(tr.CloseIdleConnections)
		store, err := checkpoint.NewKafka(t.Context(), checkpoint.KafkaConfig{Client: &kafka.Client{Addr: kafka.TCP(c.ListenAddrs()...), Transport: tr}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = store.Close() })
		cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(cl.Close)
		k, err := NewKafka(cl, KafkaConfig{Name: name, Member: id, LeaseTTL: ttl})
		if err != nil {
			t.Fatal(err)
		}
		g := newGatedGroup(k.api)
		k.api = g
		return startWired(t, id, k, store, audit, streams), g
	})
}
