package nats

import (
	"context"
	"testing"
	"time"

	"github.com/restless-stream/ingest/internal/natsserver"
)

// TestConnectedWithoutQuorum: a sink connected to the one running node of a
// three-node cluster is connected, yet nothing is stored; Connected (the
// daemon's /readyz) must say so, and say ready again once the records are
// stored.
func TestConnectedWithoutQuorum(t *testing.T) {
	t.Run("publishing", func(t *testing.T) { testConnectedWithoutQuorum(t, false) })
	// After a reconnect the sink first reads the subject's last message:
	// a Write that waits there must tell as well.
	t.Run("reading", func(t *testing.T) { testConnectedWithoutQuorum(t, true) })
}

func testConnectedWithoutQuorum(t *testing.T, read bool) {
	c, err := natsserver.StartCluster(natsserver.ClusterConfig{Nodes: 3, Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Shutdown)
	nodes := c.Nodes()
	cfg, base := testConfig(t, nodes[0].ClientURL())
	cfg.Replicas = 3
	cfg.AckTimeout = 2 * time.Minute // so that only the waiting can say it
	if read {
		// A read the server never answers lasts AckTimeout; longer than
		// the 5s after which the waiting tells, shorter than the test.
		cfg.AckTimeout = 20 * time.Second
	}
	s := newSink(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := s.Write(ctx, records(base+".a", "a", 0, 10)); err != nil {
		t.Fatal(err)
	}
	if !s.Connected() {
		t.Fatal("not Connected after a stored Write")
	}
	nodes[1].Stop()
	nodes[2].Stop()
	if read {
		s.order.forgetAll()
	}
	written := make(chan error, 1)
	go func() { written <- s.Write(ctx, records(base+".a", "a", 10, 10)) }()
	for s.Connected() { // bounded by the test's deadline
		if ctx.Err() != nil {
			t.Fatal("still Connected while no quorum exists")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !s.nc.IsConnected() {
		t.Fatal("the client lost its connection to the running node; the test shows nothing")
	}
	for _, n := range nodes[1:] {
		if err := n.Restart(); err != nil {
			t.Fatal(err)
		}
	}
	// The Write in flight either lands now or fails; the pipeline would
	// resend what failed, as this loop does.
	err = <-written
	for from := 10; err != nil; {
		if ctx.Err() != nil {
			t.Fatalf("no Write stored once the quorum was back: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
		err = s.Write(ctx, records(base+".a", "a", from, 10))
	}
	if !s.Connected() {
		t.Fatal("not Connected after a stored Write with the quorum back")
	}
}
