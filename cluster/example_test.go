package cluster_test

import (
	"context"
	"log"
	"os/signal"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/restless-stream/ingest/checkpoint"
	"github.com/restless-stream/ingest/cluster"
)

// lane stands for the pipeline's per-stream lane.
type lane struct{ done chan struct{} }

func startLane(ctx context.Context, stream string, store checkpoint.Store) *lane {
	l := &lane{done: make(chan struct{})}
	go func() {
		defer close(l.done)
		<-ctx.Done() // read, publish, save through store until told to stop
	}()
	return l
}

// The daemon's side of cluster mode: a coordinator, a checkpoint store that
// every replica reads, and one lane per stream this replica owns.
func Example() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	nc, err := nats.Connect(nats.DefaultURL)
	if err != nil {
		log.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)

	coord, err := cluster.NewNATS(ctx, js, cluster.NATSConfig{Name: "ingest", Member: cluster.DefaultMember(), LeaseTTL: 10 * time.Second})
	if err != nil {
		log.Fatal(err)
	}
	store, err := checkpoint.NewNATSKV(ctx, js, "restless_ingest_checkpoints")
	if err != nil {
		log.Fatal(err)
	}
	// The configured (and discovered) streams; call again on every change.
	if err := coord.SetStreams([]string{"orders", "payments", "refunds"}); err != nil {
		log.Fatal(err)
	}
	runCtx, cancelRun := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- coord.Run(runCtx) }()

	lanes := map[string]*lane{}
	stops := map[string]context.CancelFunc{}
	go func() {
		for ev := range coord.Events() {
			s, l := ev.Stream(), ev.Lease
			switch ev.Kind {
			case cluster.Assigned:
				if old := lanes[s]; old != nil {
					<-old.done // the stream's previous lane has stopped
				}
				claim, err := store.Claim(l.Context(), s, l.Token().String())
				if err != nil {
					log.Printf("%s: claim: %v", s, err)
					continue
				}
				lctx, cancel := context.WithCancel(l.Context())
				lanes[s], stops[s] = startLane(lctx, s, claim), cancel
				log.Printf("took %s (%s)", s, ev.Reason)
			case cluster.Revoked:
				// Stop reading, drain, save; then hand over.
				stops[s]()
				go func(done chan struct{}) { <-done; l.Release() }(lanes[s].done)
				log.Printf("handing %s over (%s)", s, ev.Reason)
			case cluster.Lost:
				// Already cancelled through the lease: no publish, no save.
				log.Printf("lost %s (%s)", s, ev.Reason)
			}
		}
	}()

	<-ctx.Done() // SIGTERM: hand every stream over, then stop
	leaveCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := coord.Leave(leaveCtx); err != nil {
		log.Printf("leave: %v", err)
	}
	cancelRun()
	if err := <-ran; err != nil {
		log.Print(err)
	}
}
