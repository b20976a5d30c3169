package pipeline_test

import (
	"context"
	"fmt"

	"github.com/restless-stream/ingest"
	"github.com/restless-stream/ingest/checkpoint"
	"github.com/restless-stream/ingest/client"
	"github.com/restless-stream/ingest/pipeline"
)

// listSource serves a fixed list of events, then ends like a server's 204.
type listSource struct{ events []string }

func (s *listSource) Next(ctx context.Context) (ingest.Frame, error) {
	if len(s.events) == 0 {
		return ingest.Frame{}, ingest.ErrStreamEnded
	}
	e := s.events[0]
	s.events = s.events[1:]
	id, _ := client.EventIDOf([]byte(e))
	return ingest.Frame{Data: []byte(e), Cursor: id}, nil
}

func (s *listSource) Close() error { return nil }

// printSink prints what it is given and acknowledges it.
type printSink struct{}

func (printSink) Write(ctx context.Context, recs []ingest.Record) error {
	for _, r := range recs {
		verified, _ := r.Header(pipeline.HeaderVerified)
		reason, _ := r.Header(pipeline.HeaderDLQReason)
		fmt.Printf("%s key=%s msgid=%q verified=%s reason=%s\n", r.Dest, r.Key, r.MsgID, verified, reason)
	}
	return nil
}

func Example() {
	data := `{"id":"order_123","total":42}`
	sig, _ := client.ComputeSignatureRaw("secret", []byte(data))
	signed := func(id string) string {
		return `{"type":"update","meta":{"timestamp":"2026-06-07T00:49:36.562+00:00"},"data":` + data +
			`,"signature":"` + sig + `","event_id":"` + id + `"}`
	}
	verifier, _ := client.NewVerifier([]string{"secret"})
	src := &listSource{events: []string{
		signed("1780793376562"),
		signed("1780793376562"), // a duplicate: dropped
		`{"type":"update","data":{"id":"x"},"event_id":"1780793376563"}`, // unsigned: dead letter
		signed("1780793376564"),
	}}
	store := checkpoint.NewMemory()
	p, err := pipeline.New(pipeline.Config{
		Streams: []pipeline.StreamConfig{{
			Name:     "orders",
			Verifier: verifier, // verify mode defaults to require
			Open: func(ctx context.Context, cursor string) (pipeline.Source, error) {
				return src, nil // a real source resumes from cursor, or its since when ""
			},
		}},
		DeadLetter: "restless.dead_letter",
	}, printSink{}, store, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := p.Run(context.Background()); err != nil {
		fmt.Println(err)
	}
	cursor, _, _ := store.Load(context.Background(), "orders")
	fmt.Println("checkpoint:", cursor)
	// Output:
	// restless.orders key=orders msgid="orders:1780793376562" verified=true reason=
	// restless.dead_letter key=orders msgid="" verified= reason=signature_missing
	// restless.orders key=orders msgid="orders:1780793376564" verified=true reason=
	// checkpoint: 1780793376564
}
