package nats

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/restless-stream/ingest/internal/natsserver"
)

// TestStreamLeaderStopped: five lanes write into a stream of three
// replicas; the node the sink is connected to stops (often the stream's
// leader too); the Writes must go on storing once a new leader is elected.
func TestStreamLeaderStopped(t *testing.T) {
	c, err := natsserver.StartCluster(natsserver.ClusterConfig{Nodes: 3, Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Shutdown)
	cfg, base := testConfig(t, c.ClientURLs())
	cfg.URLs = []string{c.Nodes()[0].ClientURL(), c.Nodes()[1].ClientURL(), c.Nodes()[2].ClientURL()}
	cfg.Replicas = 3
	cfg.AckTimeout = 5 * time.Second
	s := newSink(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var stored atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for lane := range 5 {
		wg.Go(func() {
			name := fmt.Sprint("l", lane)
			for from := 0; ; {
				select {
				case <-stop:
					return
				default:
				}
				recs := records(base+"."+name, name, from, 200)
				if err := s.Write(ctx, recs); err != nil {
					if ctx.Err() != nil {
						return
					}
					_ = name
					time.Sleep(50 * time.Millisecond)
					continue
				}
				stored.Add(200)
				from += 200
			}
		})
	}
	defer func() { close(stop); wg.Wait() }()
	wait := func(n int64, what string) {
		t.Helper()
		target := stored.Load() + n
		for stored.Load() < target {
			if ctx.Err() != nil {
				t.Fatalf("%s: stored %d of %d; stream leader: %v, meta leader: %v", what, stored.Load(), target,
					c.StreamLeader(cfg.Stream) != nil, c.MetaLeader() != nil)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	wait(5000, "before")
	var l *natsserver.Node
	for _, n := range c.Nodes() { // the node the client is connected to
		if n.ClientURL() == s.nc.ConnectedUrl() {
			l = n
		}
	}
	if l == nil {
		t.Fatalf("connected to %s, none of the nodes", s.nc.ConnectedUrl())
	}
	t.Logf("stream leader %v", c.StreamLeader(cfg.Stream) == l)
	l.Stop()
	t.Logf("stopped %s at %d stored", l.Name(), stored.Load())
	start := time.Now()
	wait(5000, "after the leader stopped")
	t.Logf("5000 more stored %v after", time.Since(start))
}
