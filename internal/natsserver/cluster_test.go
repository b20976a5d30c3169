package natsserver

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/restless-stream/ingest"
)

// TestClusterConfigErrors: a configuration StartCluster cannot use fails
// with the field at fault, before anything listens.
func TestClusterConfigErrors(t *testing.T) {
	tests := []struct {
		name  string
		cfg   ClusterConfig
		field string
	}{
		{"no nodes", ClusterConfig{Dir: t.TempDir()}, "Nodes"},
		{"two nodes", ClusterConfig{Nodes: 2, Dir: t.TempDir()}, "Nodes"},
		{"too many nodes", ClusterConfig{Nodes: 10, Dir: t.TempDir()}, "Nodes"},
		{"no dir", ClusterConfig{Nodes: 3}, "Dir"},
		{"bad name", ClusterConfig{Nodes: 3, Dir: t.TempDir(), Name: "a.b"}, "Name"},
		{"negative timeout", ClusterConfig{Nodes: 3, Dir: t.TempDir(), ReadyTimeout: -time.Second}, "ReadyTimeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := StartCluster(tt.cfg)
			if err == nil {
				c.Shutdown()
				t.Fatal("StartCluster succeeded")
			}
			var fe *ingest.FieldError
			if !errors.As(err, &fe) || fe.Field != tt.field {
				t.Fatalf("StartCluster = %v, want a FieldError at %s", err, tt.field)
			}
		})
	}
}

// TestClusterLeadersMove: three nodes form a JetStream cluster; a stream of
// three replicas keeps taking messages when its leader stops, stops taking
// them while two of three nodes are down, and holds every message on every
// node once the stopped nodes are back with their stores.
func TestClusterLeadersMove(t *testing.T) {
	c, err := StartCluster(ClusterConfig{Nodes: 3, Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Shutdown)
	if got := strings.Count(c.ClientURLs(), "nats://127.0.0.1:"); got != 3 {
		t.Fatalf("ClientURLs %q", c.ClientURLs())
	}
	nc, err := nats.Connect(c.ClientURLs(), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const stream = "CLUSTER"
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: stream, Subjects: []string{"cl.>"}, Replicas: 3, Storage: jetstream.FileStorage}); err != nil {
		t.Fatal(err)
	}
	// publish stores n messages, retrying each until the stream takes it
	// (Nats-Msg-Id keeps a retried one single).
	next := 0
	publish := func(n int) {
		t.Helper()
		for range n {
			next++
			id := "m" + strconv.Itoa(next)
			for {
				pctx, pcancel := context.WithTimeout(ctx, 2*time.Second)
				_, err := js.Publish(pctx, "cl.a", []byte(id), jetstream.WithMsgID(id))
				pcancel()
				if err == nil {
					break
				}
				if ctx.Err() != nil {
					t.Fatalf("publish %s: %v", id, err)
				}
			}
		}
	}
	waitLeader := func() *Node {
		t.Helper()
		for ctx.Err() == nil {
			if l := c.StreamLeader(stream); l != nil {
				return l
			}
			time.Sleep(25 * time.Millisecond)
		}
		t.Fatal("no stream leader")
		return nil
	}
	publish(50)

	leader := waitLeader()
	leader.Stop()
	if leader.Running() || c.StreamLeader(stream) == leader {
		t.Fatalf("%s still running after Stop", leader.Name())
	}
	publish(50) // a new leader takes over
	meta := c.MetaLeader()
	for meta == nil && ctx.Err() == nil {
		time.Sleep(25 * time.Millisecond)
		meta = c.MetaLeader()
	}
	if meta == nil || meta == leader {
		t.Fatalf("meta leader %v after stopping %s", meta, leader.Name())
	}
	meta.Stop()
	// Two of three down: no quorum, so nothing is stored.
	pctx, pcancel := context.WithTimeout(ctx, time.Second)
	if _, err := js.Publish(pctx, "cl.a", []byte("x"), jetstream.WithMsgID("no-quorum")); err == nil {
		t.Error("a publish was acknowledged while two of three nodes were down")
	}
	pcancel()
	for _, n := range []*Node{leader, meta} {
		if err := n.Restart(); err != nil {
			t.Fatal(err)
		}
	}
	publish(50)
	// Every node catches up with the stream.
	for _, n := range c.Nodes() {
		for !n.server().JetStreamIsStreamCurrent(server.DEFAULT_GLOBAL_ACCOUNT, stream) {
			if ctx.Err() != nil {
				t.Fatalf("%s did not catch up with the stream", n.Name())
			}
			time.Sleep(25 * time.Millisecond)
		}
	}
	st, err := js.Stream(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	// 150, and maybe the publish made without a quorum: it can be stored
	// once the quorum is back.
	if got := st.CachedInfo().State.Msgs; got < 150 || got > 151 {
		t.Fatalf("stream holds %d messages, want 150 (or 151)", got)
	}
}
