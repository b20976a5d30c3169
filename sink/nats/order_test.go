package nats

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/restless-stream/ingest"
	"github.com/restless-stream/ingest/internal/natsserver"
)

// dropProxy relays NATS connections to a server and drops, once, the first
// publish whose bytes contain a marker: the server never sees it, so the
// client's publish times out while the publishes after it reach the server.
type dropProxy struct {
	ln      net.Listener
	target  string
	marker  atomic.Pointer[[]byte]
	dropped atomic.Int32
	wg      sync.WaitGroup
	// delay, when not 0, turns the drop into a hold: the publish reaches
	// the server that long later, and late counts those delivered.
	delay time.Duration
	late  atomic.Int32
}

func startDropProxy(t *testing.T, target string) *dropProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &dropProxy{ln: ln, target: target}
	p.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.wg.Go(func() { p.relay(c) })
		}
	})
	t.Cleanup(func() { ln.Close(); p.wg.Wait() })
	return p
}

func (p *dropProxy) url() string { return "nats://" + p.ln.Addr().String() }

// dropOnce arms the proxy: the next publish containing marker is dropped.
func (p *dropProxy) dropOnce(marker string) {
	b := []byte(marker)
	p.marker.Store(&b)
}

func (p *dropProxy) relay(c net.Conn) {
	defer c.Close()
	s, err := net.Dial("tcp", p.target)
	if err != nil {
		return
	}
	defer s.Close()
	go func() { _, _ = io.Copy(c, s); c.Close() }()
	var mu sync.Mutex // one writer at a time to the server
	write := func(b []byte) error {
		mu.Lock()
		defer mu.Unlock()
		_, err := s.Write(b)
		return err
	}
	r := bufio.NewReader(c)
	for {
		line, err := r.ReadBytes('\n')
		if err != nil {
			return
		}
		verb, _, _ := strings.Cut(strings.ToUpper(string(line)), " ")
		var payload []byte
		if verb == "PUB" || verb == "HPUB" {
			f := strings.Fields(string(line))
			n, err := strconv.Atoi(f[len(f)-1])
			if err != nil {
				return
			}
			payload = make([]byte, n+2)
			if _, err := io.ReadFull(r, payload); err != nil {
				return
			}
			if m := p.marker.Load(); m != nil && bytes.Contains(payload, *m) && p.marker.CompareAndSwap(m, nil) {
				p.dropped.Add(1)
				if p.delay > 0 {
					held := append(line, payload...)
					p.wg.Go(func() {
						time.Sleep(p.delay)
						if write(held) == nil {
							p.late.Add(1)
						}
					})
				}
				continue
			}
		}
		if err := write(append(line, payload...)); err != nil {
			return
		}
	}
}

// TestOrderWhenOnePublishIsLost: one publish in the middle of a pipelined
// batch never reaches the server, so its acknowledgement times out while the
// records after it reach the stream. Resending what failed, as the pipeline
// does, must still leave each subject's records in order, while another
// lane writes at the same time.
func TestOrderWhenOnePublishIsLost(t *testing.T) {
	srv := startServer(t, natsserver.Config{Dir: t.TempDir()})
	proxy := startDropProxy(t, strings.TrimPrefix(srv.ClientURL(), "nats://"))
	cfg, base := testConfig(t, proxy.url())
	cfg.AckTimeout = 500 * time.Millisecond
	s := newSink(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	subject := base + ".orders"
	other := base + ".other" // a second lane at the same time
	var up atomic.Bool
	up.Store(true)
	var attempts atomic.Int32

	if err := s.Write(ctx, records(subject, "orders", 0, 10)); err != nil {
		t.Fatal(err)
	}
	proxy.dropOnce(`"event_id":"15"`)
	var wg sync.WaitGroup
	var otherErr error
	wg.Go(func() {
		for b := range 5 {
			if err := writeRetrying(ctx, s, records(other, "other", b*20, 20), &up, &attempts); err != nil {
				otherErr = err
				return
			}
		}
	})
	if err := writeRetrying(ctx, s, records(subject, "orders", 10, 20), &up, &attempts); err != nil {
		t.Fatal(err)
	}
	if err := writeRetrying(ctx, s, records(subject, "orders", 30, 10), &up, &attempts); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if otherErr != nil {
		t.Fatal(otherErr)
	}
	if proxy.dropped.Load() != 1 {
		t.Fatalf("the proxy dropped %d publishes, want 1", proxy.dropped.Load())
	}
	got := map[string][]string{}
	for _, m := range storedMsgs(t, s) {
		got[m.Subject] = append(got[m.Subject], m.Header.Get(jetstream.MsgIDHeader))
	}
	for subj, want := range map[string]int{subject: 40, other: 100} {
		ids := got[subj]
		if len(ids) != want {
			t.Errorf("%s: %d messages stored, want %d", subj, len(ids), want)
		}
		for i, id := range ids {
			if _, n, _ := strings.Cut(id, ":"); n != strconv.Itoa(i) {
				t.Errorf("%s: message %d is %s: order broken: %v", subj, i, id, ids)
				break
			}
		}
	}
	t.Logf("writes: %d, duplicates caught: %d", attempts.Load(), s.Duplicates())
}

// TestLateCopyIsRefused: a publish reaches the server long after its
// acknowledgement timed out, when the record was resent and stored, with
// records after it. Records without a Nats-Msg-Id have only the fence to
// keep that late copy out: it names the message before it, no longer the
// subject's last, so the server refuses it, and each record lands once, in
// order.
func TestLateCopyIsRefused(t *testing.T) {
	srv := startServer(t, natsserver.Config{Dir: t.TempDir()})
	proxy := startDropProxy(t, strings.TrimPrefix(srv.ClientURL(), "nats://"))
	proxy.delay = 2 * time.Second
	cfg, base := testConfig(t, proxy.url())
	cfg.AckTimeout = 300 * time.Millisecond
	s := newSink(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	subject := base + ".late"
	noIDs := func(from, n int) []ingest.Record {
		recs := records(subject, "late", from, n)
		for i := range recs {
			recs[i].MsgID = ""
		}
		return recs
	}
	var up atomic.Bool
	up.Store(true)
	var attempts atomic.Int32
	if err := s.Write(ctx, noIDs(0, 10)); err != nil {
		t.Fatal(err)
	}
	proxy.dropOnce(`"event_id":"15"`)
	if err := writeRetrying(ctx, s, noIDs(10, 20), &up, &attempts); err != nil {
		t.Fatal(err)
	}
	for proxy.late.Load() == 0 { // the late copy reaches the server
		if ctx.Err() != nil {
			t.Fatal("the held publish was never delivered")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := writeRetrying(ctx, s, noIDs(30, 10), &up, &attempts); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, m := range storedMsgs(t, s) {
		ids = append(ids, "late:"+m.Header.Get("restless-event-id"))
	}
	checkInOrder(t, "late", ids, 40)
	t.Logf("writes: %d, fence refusals seen by the sink: %d", attempts.Load(), s.FenceRefusals())
}

// TestFenceRefusalIsNotPermanent: a record refused because the last
// message on its subject is not the one it names (here another publisher
// stored one between) fails with a retryable error that says so, and the
// Write's records after it on the subject fail unsent; resent, they are
// stored once each, in order. On a stream of three replicas the refusal
// must come from the leader before it replicates the record (a refusal
// when the replicas apply it leaves the stream without a leader).
func TestFenceRefusalIsNotPermanent(t *testing.T) {
	t.Run("single", func(t *testing.T) {
		srv := startServer(t, natsserver.Config{Dir: t.TempDir()})
		cfg, base := testConfig(t, srv.ClientURL())
		testFenceRefusal(t, cfg, base)
	})
	t.Run("replicated", func(t *testing.T) {
		c, err := natsserver.StartCluster(natsserver.ClusterConfig{Nodes: 3, Dir: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.Shutdown)
		cfg, base := testConfig(t, c.ClientURLs())
		cfg.Replicas = 3
		testFenceRefusal(t, cfg, base)
		if c.StreamLeader(cfg.Stream) == nil {
			t.Fatal("the stream has no leader")
		}
	})
}

func testFenceRefusal(t *testing.T, cfg Config, base string) {
	s := newSink(t, cfg)
	ctx := context.Background()
	if err := s.Write(ctx, records(base+".a", "a", 0, 2)); err != nil {
		t.Fatal(err)
	}
	// Another publisher stores on the subject: what the sink knows of the
	// subject's last message is now wrong.
	if _, err := s.JetStream().Publish(ctx, base+".a", []byte("foreign")); err != nil {
		t.Fatal(err)
	}
	err := s.Write(ctx, records(base+".a", "a", 2, 3))
	var werr ingest.WriteErrors
	if !errors.As(err, &werr) {
		t.Fatalf("Write after a foreign publish = %v, want the fenced records refused", err)
	}
	for i, e := range werr {
		if e != nil && (ingest.IsPermanent(e) || !isFenceRefusal(e)) {
			t.Fatalf("record %d: %v", i, e)
		}
	}
	if werr.Count() != 3 {
		t.Fatalf("%d records failed, want 3: %v", werr.Count(), werr)
	}
	if n := s.FenceRefusals(); n != 1 {
		t.Fatalf("%d fence refusals, want 1 (the records after the refused one are not sent)", n)
	}
	// The resend reads the subject's last message and succeeds.
	if err := s.Write(ctx, records(base+".a", "a", 2, 3)); err != nil {
		t.Fatal(err)
	}
	if err := s.Write(ctx, records(base+".a", "a", 5, 3)); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, m := range storedMsgs(t, s) {
		ids = append(ids, m.Header.Get(jetstream.MsgIDHeader))
	}
	want := fmt.Sprint([]string{"a:0", "a:1", "", "a:2", "a:3", "a:4", "a:5", "a:6", "a:7"})
	if fmt.Sprint(ids) != want {
		t.Fatalf("stored %v, want %v", ids, want)
	}
}

// TestReplicasOfExistingStream: a stream with fewer replicas than
// configured is reported, one with as many or more is fine.
func TestReplicasOfExistingStream(t *testing.T) {
	want := jetstream.StreamConfig{Subjects: []string{"a.>"}, Replicas: 3}
	have := want
	have.Replicas = 1
	if d := streamDiffs(have, want); len(d) != 1 || !strings.Contains(d[0], "replicas is 1 on the stream, 3 configured") {
		t.Fatalf("diffs = %q", d)
	}
	have.Replicas = 5
	if d := streamDiffs(have, want); len(d) != 0 {
		t.Fatalf("diffs = %q", d)
	}
}

// TestOrderChains: a subject is held by one Write at a time; what is known
// of a subject is dropped by forget and forgetAll; idle subjects past the
// bound are forgotten.
func TestOrderChains(t *testing.T) {
	var o order
	o.init()
	ctx := context.Background()
	a, err := o.acquire(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := o.lastSeq(a); ok {
		t.Fatal("a new subject's last sequence is known")
	}
	o.set(a, 7)
	if seq, ok := o.lastSeq(a); !ok || seq != 7 {
		t.Fatalf("lastSeq = %d, %v, want 7, true", seq, ok)
	}
	// Held: another Write waits, here until its context ends.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := o.acquire(cctx, "a"); !errors.Is(err, context.Canceled) {
		t.Fatalf("acquire of a held subject = %v, want it to wait until its context ends", err)
	}
	// Another subject is free meanwhile.
	b, err := o.acquire(cctx, "b")
	if err == nil {
		o.release("b", b)
	}
	// A waiting Write gets the subject once released, with what is known.
	got := make(chan *chain)
	go func() {
		c, err := o.acquire(ctx, "a")
		if err != nil {
			t.Error(err)
		}
		got <- c
	}()
	o.release("a", a)
	a = <-got
	if seq, ok := o.lastSeq(a); !ok || seq != 7 {
		t.Fatalf("after release, lastSeq = %d, %v, want 7, true", seq, ok)
	}
	o.forget(a)
	if _, ok := o.lastSeq(a); ok {
		t.Fatal("known after forget")
	}
	o.set(a, 9)
	o.forgetAll()
	if _, ok := o.lastSeq(a); ok {
		t.Fatal("known after forgetAll")
	}
	o.release("a", a)
	for i := range 2 * maxIdleChains {
		c, err := o.acquire(ctx, fmt.Sprint("s", i))
		if err != nil {
			t.Fatal(err)
		}
		o.set(c, uint64(i))
		o.release(fmt.Sprint("s", i), c)
	}
	if n := len(o.chains); n > maxIdleChains+1 {
		t.Fatalf("%d subjects remembered, want at most %d", n, maxIdleChains+1)
	}
}
