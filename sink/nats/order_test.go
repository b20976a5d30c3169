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
				continue
			}
		}
		if _, err := s.Write(append(line, payload...)); err != nil {
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
