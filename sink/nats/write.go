package nats

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/restless-stream/ingest"
)

// Write publishes recs and returns nil only when the server acknowledged
// every record (JetStream) or received every record (core). Otherwise it
// returns an ingest.WriteErrors, index-aligned with recs; a record with an
// unusable subject (see ValidSubject) fails with an ingest.PermanentError.
// After Close has begun, every record fails with ingest.ErrClosed.
func (s *Sink) Write(ctx context.Context, recs []ingest.Record) error {
	if len(recs) == 0 {
		return nil
	}
	ctx, done, err := s.writes.Enter(ctx)
	if err != nil {
		errs := make(ingest.WriteErrors, len(recs))
		for i := range errs {
			errs[i] = fmt.Errorf("nats: write: %w", err)
		}
		return errs
	}
	defer done()
	if s.js == nil {
		return s.writeCore(ctx, recs)
	}
	return s.writeJetStream(ctx, recs)
}

func (s *Sink) writeJetStream(ctx context.Context, recs []ingest.Record) error {
	var errs ingest.WriteErrors
	fail := func(i int, err error) {
		if errs == nil {
			errs = make(ingest.WriteErrors, len(recs))
		}
		errs[i] = err
	}
	// A publish stalls while MaxPending acknowledgements are outstanding;
	// the library bounds that wait by time only, so give it what is left
	// of ctx.
	stall := s.cfg.AckTimeout
	if dl, ok := ctx.Deadline(); ok {
		stall = min(stall, max(time.Until(dl), time.Millisecond))
	}
	opts := []jetstream.PublishOpt{jetstream.WithStallWait(stall)}

	troubles := s.troubles.Load()
	probe := troubles != s.calm.Load()
	// Unusable subjects first, so that they fail for good even when the
	// probe below fails the rest of the Write.
	for i := range recs {
		if err := validSubject(recs[i].Dest, false); err != nil {
			fail(i, &ingest.PermanentError{Err: fmt.Errorf("nats: record: %w", err)})
		}
	}
	futures := make([]jetstream.PubAckFuture, len(recs))
	boxes := make([]*msgBox, len(recs))
	for i := range recs {
		r := &recs[i]
		if errs != nil && errs[i] != nil {
			continue
		}
		if err := ctx.Err(); err != nil {
			fail(i, err)
			continue
		}
		if probe {
			// After trouble: one record first, acknowledged, then the rest.
			probe = false
			if err := s.publishOne(ctx, r); err != nil {
				err = s.publishError(r.Dest, err)
				for j := i; j < len(recs); j++ {
					if errs == nil || errs[j] == nil {
						fail(j, err)
					}
				}
				s.troubles.Add(1)
				return errs
			}
			continue
		}
		b := s.msg(r)
		f, err := s.js.PublishMsgAsync(&b.m, opts...)
		if err != nil {
			s.putMsg(b) // not handed over
			fail(i, s.publishError(r.Dest, err))
			continue
		}
		futures[i], boxes[i] = f, b
	}
	done := ctx.Done()
	for i, f := range futures {
		if f == nil {
			continue
		}
		select {
		case ack := <-f.Ok():
			if ack.Duplicate {
				s.duplicates.Add(1)
			}
			// Acknowledged: the client has let the message go. (After an
			// error it may not have: a retry timer can still hold it.)
			s.putMsg(boxes[i])
		case err := <-f.Err():
			fail(i, s.publishError(recs[i].Dest, err))
		case <-done:
			// The acknowledgement may still come: the record is reported
			// failed and, when resent, caught by Nats-Msg-Id.
			fail(i, fmt.Errorf("nats: waiting for acknowledgement on %q: %w", recs[i].Dest, ctx.Err()))
		}
	}
	if errs != nil {
		s.troubles.Add(1)
		return errs
	}
	s.calm.Store(troubles) // a trouble met meanwhile keeps the next Write careful
	return nil
}

// publishOne publishes r and waits for its acknowledgement.
func (s *Sink) publishOne(ctx context.Context, r *ingest.Record) error {
	actx, cancel := context.WithTimeout(ctx, s.cfg.AckTimeout)
	defer cancel()
	ack, err := s.js.PublishMsg(actx, newMsg(r))
	if err != nil {
		if ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
			err = fmt.Errorf("%w: %w", jetstream.ErrAsyncPublishTimeout, err)
		}
		return err
	}
	if ack.Duplicate {
		s.duplicates.Add(1)
	}
	return nil
}

func (s *Sink) writeCore(ctx context.Context, recs []ingest.Record) error {
	var errs ingest.WriteErrors
	fail := func(i int, err error) {
		if errs == nil {
			errs = make(ingest.WriteErrors, len(recs))
		}
		errs[i] = err
	}
	sent := 0
	for i := range recs {
		r := &recs[i]
		if err := ctx.Err(); err != nil {
			fail(i, err)
			continue
		}
		if err := validSubject(r.Dest, false); err != nil {
			fail(i, &ingest.PermanentError{Err: fmt.Errorf("nats: record: %w", err)})
			continue
		}
		b := s.msg(r)
		err := s.nc.PublishMsg(&b.m) // copies the message into its buffer
		s.putMsg(b)
		if err != nil {
			fail(i, fmt.Errorf("nats: publish on %q: %w", r.Dest, err))
			continue
		}
		sent++
	}
	if sent > 0 {
		fctx := ctx
		if _, ok := ctx.Deadline(); !ok {
			var cancel context.CancelFunc
			fctx, cancel = context.WithTimeout(ctx, s.cfg.AckTimeout)
			defer cancel()
		}
		if err := s.nc.FlushWithContext(fctx); err != nil {
			err = fmt.Errorf("nats: flush: %w", err)
			for i := range recs {
				if errs == nil || errs[i] == nil {
					fail(i, err)
				}
			}
		}
	}
	if errs != nil {
		return errs
	}
	return nil
}

// msgBox is a NATS message with its header map and the backing array of
// the header values, kept together for reuse.
type msgBox struct {
	m    nats.Msg
	h    nats.Header
	vals []string
}

// newMsg builds the NATS message of r.
func newMsg(r *ingest.Record) *nats.Msg {
	return new(msgBox).fill(r)
}

// msg builds the NATS message of r in a box from the pool. The box goes
// back with putMsg only once the client is done with the message: after a
// synchronous publish returns, or an asynchronous one is acknowledged
// (until then the client may publish it again by itself).
func (s *Sink) msg(r *ingest.Record) *msgBox {
	b, _ := s.msgs.Get().(*msgBox)
	if b == nil {
		b = new(msgBox)
	}
	b.fill(r)
	return b
}

// putMsg empties b, so that the pool holds no event bytes, and pools it.
func (s *Sink) putMsg(b *msgBox) {
	b.m = nats.Msg{}
	clear(b.h)
	clear(b.vals)
	s.msgs.Put(b)
}

func (b *msgBox) fill(r *ingest.Record) *nats.Msg {
	b.m = nats.Msg{Subject: r.Dest, Data: r.Value}
	n := len(r.Headers)
	if r.MsgID != "" {
		n++
	}
	if n == 0 {
		return &b.m
	}
	// One backing array for every header value of the message; each slice
	// is capped so that a repeated name appends to a copy.
	if cap(b.vals) < n {
		b.vals = make([]string, 0, n)
	}
	if b.h == nil {
		b.h = make(nats.Header, n)
	}
	vals, h := b.vals[:0], b.h
	for _, hd := range r.Headers {
		vals = append(vals, hd.Value)
		j := len(vals)
		if prev, ok := h[hd.Key]; ok {
			h[hd.Key] = append(prev, hd.Value)
			continue
		}
		h[hd.Key] = vals[j-1 : j : j]
	}
	if r.MsgID != "" {
		vals = append(vals, r.MsgID)
		j := len(vals)
		h[jetstream.MsgIDHeader] = vals[j-1 : j : j]
	}
	b.vals = vals
	b.m.Header = h
	return &b.m
}

// publishError adds the subject and a plain explanation to err.
func (s *Sink) publishError(subject string, err error) error {
	switch {
	case errors.Is(err, jetstream.ErrNoStreamResponse), errors.Is(err, nats.ErrNoResponders):
		return fmt.Errorf("nats: no JetStream stream answered on subject %q (is it one of the subjects of stream %q, and is JetStream up?): %w", subject, s.cfg.Stream, err)
	case errors.Is(err, jetstream.ErrAsyncPublishTimeout):
		return fmt.Errorf("nats: no acknowledgement on subject %q within %v: %w", subject, s.cfg.AckTimeout, err)
	case errors.Is(err, jetstream.ErrTooManyStalledMsgs):
		return fmt.Errorf("nats: publish on %q: %d acknowledgements outstanding: %w", subject, s.cfg.MaxPending, err)
	}
	return fmt.Errorf("nats: publish on %q: %w", subject, err)
}
