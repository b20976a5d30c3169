package nats

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

	"github.com/nats-io/nats.go/jetstream"

	"github.com/restless-stream/ingest"
	"github.com/restless-stream/ingest/internal/natsserver"
)

// TestReplicasShareStream: two sinks, as two replicas of the daemon, each
// with two lanes on subjects of its own, write into one JetStream stream at
// the same time. Their publishes interleave in the stream, and none may
// cost the other a refusal or a retry: every record lands once, each
// subject in order, and no Write fails.
func TestReplicasShareStream(t *testing.T) {
	t.Run("single", func(t *testing.T) {
		cfg, base := testConfig(t, sharedServer(t))
		testReplicasShareStream(t, cfg, base, 10)
	})
	t.Run("replicated", func(t *testing.T) {
		c, err := natsserver.StartCluster(natsserver.ClusterConfig{Nodes: 3, Dir: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.Shutdown)
		cfg, base := testConfig(t, c.ClientURLs())
		cfg.Replicas = 3
		testReplicasShareStream(t, cfg, base, 4)
	})
}

func testReplicasShareStream(t *testing.T, cfg Config, base string, batches int) {
	const batch = 100
	sinks := []*Sink{newSink(t, cfg), newSink(t, cfg)}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var failed atomic.Int64 // records whose Write failed
	var wg sync.WaitGroup
	for r, s := range sinks {
		for lane := range 2 {
			name := fmt.Sprint("r", r, "l", lane)
			wg.Go(func() {
				for b := range batches {
					recs := records(base+"."+name, name, b*batch, batch)
					for {
						err := s.Write(ctx, recs)
						if err == nil {
							break
						}
						var werr ingest.WriteErrors
						if !errors.As(err, &werr) || ctx.Err() != nil {
							t.Errorf("%s: %v", name, err)
							return
						}
						failed.Add(int64(werr.Count()))
						t.Logf("%s: %v", name, err)
						var next []ingest.Record
						for i, e := range werr {
							if e != nil {
								next = append(next, recs[i])
							}
						}
						recs = next
					}
				}
			})
		}
	}
	wg.Wait()
	if t.Failed() {
		return
	}

	msgs := storedMsgs(t, sinks[0])
	got := map[string][]string{}
	switches := 0 // consecutive messages from different sinks
	for i, m := range msgs {
		got[m.Subject] = append(got[m.Subject], m.Header.Get(jetstream.MsgIDHeader))
		if i > 0 && replicaOf(m.Subject) != replicaOf(msgs[i-1].Subject) {
			switches++
		}
	}
	for r := range sinks {
		for lane := range 2 {
			name := fmt.Sprint("r", r, "l", lane)
			checkInOrder(t, name, got[base+"."+name], batches*batch)
		}
	}
	refused := sinks[0].FenceRefusals() + sinks[1].FenceRefusals()
	t.Logf("%d messages, the writer changed %d times along the stream; %d records failed, %d fence refusals, %d resends while the subject was in process",
		len(msgs), switches, failed.Load(), refused, sinks[0].busyResends.Load()+sinks[1].busyResends.Load())
	if switches < 10 {
		t.Errorf("the two sinks' records changed places %d times along the stream: they did not write at the same time", switches)
	}
	if failed.Load() != 0 || refused != 0 {
		t.Errorf("%d records failed and %d were refused by their fence, want none: the sinks write different subjects", failed.Load(), refused)
	}
}

// replicaOf returns the "rN" part of a test subject "<base>.rNlM".
func replicaOf(subject string) string {
	_, name, _ := strings.Cut(subject, ".")
	r, _, _ := strings.Cut(name, "l")
	return r
}

// checkInOrder checks that ids are name:0 to name:n-1, in order.
func checkInOrder(t *testing.T, name string, ids []string, n int) {
	t.Helper()
	if len(ids) != n {
		t.Errorf("%s: %d messages stored, want %d", name, len(ids), n)
	}
	for i, id := range ids {
		if id != name+":"+strconv.Itoa(i) {
			t.Errorf("%s: message %d is %s: order broken or record repeated", name, i, id)
			return
		}
	}
}

// TestLanesShareSubject: two lanes of one sink write to the same subject at
// the same time. The sink serialises the subject: each Write's records land
// together, each lane's in order, with no refusal.
func TestLanesShareSubject(t *testing.T) {
	cfg, base := testConfig(t, sharedServer(t))
	s := newSink(t, cfg)
	subject := base + ".shared"
	const batches, batch = 10, 50
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	for lane := range 2 {
		name := fmt.Sprint("l", lane)
		wg.Go(func() {
			for b := range batches {
				if err := s.Write(ctx, records(subject, name, b*batch, batch)); err != nil {
					t.Errorf("%s: %v", name, err)
					return
				}
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	byLane := map[string][]string{}
	msgs := storedMsgs(t, s)
	for i, m := range msgs {
		id := m.Header.Get(jetstream.MsgIDHeader)
		lane, n, _ := strings.Cut(id, ":")
		byLane[lane] = append(byLane[lane], id)
		// A Write's batch is contiguous: it starts at a multiple of batch
		// and the records after it up to the next multiple are its own.
		if k, _ := strconv.Atoi(n); k%batch != 0 && (i == 0 || msgs[i-1].Header.Get(jetstream.MsgIDHeader) != fmt.Sprint(lane, ":", k-1)) {
			t.Fatalf("message %d (%s) does not follow the record before it in its Write", i, id)
		}
	}
	for lane := range 2 {
		name := fmt.Sprint("l", lane)
		checkInOrder(t, name, byLane[name], batches*batch)
	}
	if n := s.FenceRefusals(); n != 0 {
		t.Errorf("%d fence refusals, want 0", n)
	}
}

// TestReplicasShareSubject: two sinks write to the same subject (two
// replicas configured with the same destination). Their records refuse
// each other's fences; resent, every record lands, each sink's in order.
func TestReplicasShareSubject(t *testing.T) {
	cfg, base := testConfig(t, sharedServer(t))
	sinks := []*Sink{newSink(t, cfg), newSink(t, cfg)}
	subject := base + ".shared"
	const batches, batch = 10, 50
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var up atomic.Bool
	up.Store(true)
	var attempts atomic.Int32
	var wg sync.WaitGroup
	for r, s := range sinks {
		name := fmt.Sprint("r", r)
		wg.Go(func() {
			for b := range batches {
				if err := writeRetrying(ctx, s, records(subject, name, b*batch, batch), &up, &attempts); err != nil {
					t.Errorf("%s: %v", name, err)
					return
				}
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	byReplica := map[string][]string{}
	for _, m := range storedMsgs(t, sinks[0]) {
		id := m.Header.Get(jetstream.MsgIDHeader)
		r, _, _ := strings.Cut(id, ":")
		byReplica[r] = append(byReplica[r], id)
	}
	for r := range sinks {
		name := fmt.Sprint("r", r)
		checkInOrder(t, name, byReplica[name], batches*batch)
	}
	t.Logf("writes: %d for %d batches, fence refusals: %d and %d", attempts.Load(), 2*batches,
		sinks[0].FenceRefusals(), sinks[1].FenceRefusals())
}
