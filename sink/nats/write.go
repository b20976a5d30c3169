package nats

import (
	"context"
	"errors"
	"fmt"
	"strconv"
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
	failed := func(i int) bool { return errs != nil && errs[i] != nil }
	// Unusable subjects first, so that they fail for good whatever happens
	// to the rest of the Write.
	for i := range recs {
		if err := validSubject(recs[i].Dest, false); err != nil {
			fail(i, &ingest.PermanentError{Err: fmt.Errorf("nats: record: %w", err)})
		}
	}
	m, err := s.order.enter(ctx)
	if err != nil {
		for i := range recs {
			if !failed(i) {
				fail(i, fmt.Errorf("nats: waiting for earlier publishes to settle: %w", err))
			}
		}
		return errs
	}
	if m == oneByOne {
		return s.writeOneByOne(ctx, recs, errs)
	}

	// A publish stalls while MaxPending acknowledgements are outstanding;
	// the library bounds that wait by time only, so give it what is left
	// of ctx.
	stall := s.cfg.AckTimeout
	if dl, ok := ctx.Deadline(); ok {
		stall = min(stall, max(time.Until(dl), time.Millisecond))
	}
	// No resend by the client on "no responders" (a stream without a
	// leader): its timer would publish the record again later, after
	// records of other Writes, and a sequence fence names a slot, not a
	// record, so the late copy could take a slot that another publish moved
	// the stream to and land ahead of records before it. The record fails
	// instead, the chain breaks, and the one-at-a-time path resends it in
	// order.
	opts := []jetstream.PublishOpt{jetstream.WithStallWait(stall), jetstream.WithRetryAttempts(0)}
	futures := make([]jetstream.PubAckFuture, len(recs))
	boxes := make([]*msgBox, len(recs))
	seqs := make([]uint64, len(recs))
	whole := true // every record stored at its predicted sequence
	for i := range recs {
		r := &recs[i]
		if failed(i) {
			continue
		}
		if err := ctx.Err(); err != nil {
			fail(i, err)
			whole = false
			continue
		}
		fence, seq := s.order.predict(r.MsgID)
		b := s.msg(r, &fence)
		s.health.publishing(time.Now())
		f, err := s.js.PublishMsgAsync(&b.m, opts...)
		if err != nil {
			// The client's refusal, not the server's answer.
			s.health.done(time.Now(), err, false)
			s.putMsg(b) // not handed over
			fail(i, s.publishError(r.Dest, err))
			whole = false
			continue
		}
		futures[i], boxes[i], seqs[i] = f, b, seq
	}
	s.order.sent()
	done := ctx.Done()
	for i, f := range futures {
		if f == nil {
			continue
		}
		select {
		case ack := <-f.Ok():
			s.health.done(time.Now(), nil, true)
			if ack.Duplicate {
				s.duplicates.Add(1)
			}
			if ack.Duplicate || ack.Sequence != seqs[i] {
				whole = false // the later predictions are off
			}
			// Acknowledged: the client has let the message go. (After an
			// error it may not have: a retry timer can still hold it.)
			s.putMsg(boxes[i])
		case err := <-f.Err():
			s.health.done(time.Now(), err, true)
			fail(i, s.publishError(recs[i].Dest, err))
			whole = false
		case <-done:
			// The acknowledgement may still come: the record is reported
			// failed and, when resent, caught by Nats-Msg-Id.
			s.health.done(time.Now(), nil, false)
			fail(i, fmt.Errorf("nats: waiting for acknowledgement on %q: %w", recs[i].Dest, ctx.Err()))
			whole = false
		}
	}
	s.order.leavePipelined(whole)
	if errs != nil {
		return errs
	}
	return nil
}

// writeOneByOne publishes recs one at a time, each acknowledged before the
// next is sent, and stops at the first failure: the records from there on
// fail, so that they are resent in order. When every record is stored it
// reads the stream's last sequence and restores the chain (see order).
func (s *Sink) writeOneByOne(ctx context.Context, recs []ingest.Record, errs ingest.WriteErrors) (werr error) {
	ok, known, last := false, false, uint64(0)
	defer func() { s.order.leaveSerial(ok, known, last) }()
	for i := range recs {
		if errs != nil && errs[i] != nil {
			continue
		}
		err := ctx.Err()
		if err == nil {
			err = s.publishOne(ctx, &recs[i])
		}
		if err != nil {
			err = s.publishError(recs[i].Dest, err)
			if errs == nil {
				errs = make(ingest.WriteErrors, len(recs))
			}
			for j := i; j < len(recs); j++ {
				if errs[j] == nil {
					errs[j] = err
				}
			}
			return errs
		}
	}
	ok = true
	st, err := s.js.Stream(ctx, s.cfg.Stream)
	if err == nil {
		known, last = true, st.CachedInfo().State.LastSeq
	}
	if errs != nil {
		return errs
	}
	return nil
}

// publishOne publishes r and waits for its acknowledgement.
func (s *Sink) publishOne(ctx context.Context, r *ingest.Record) error {
	actx, cancel := context.WithTimeout(ctx, s.cfg.AckTimeout)
	defer cancel()
	s.health.publishing(time.Now())
	ack, err := s.js.PublishMsg(actx, newMsg(r))
	if err != nil {
		if ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
			err = fmt.Errorf("%w: %w", jetstream.ErrAsyncPublishTimeout, err)
		}
		s.health.done(time.Now(), err, ctx.Err() == nil)
		return err
	}
	s.health.done(time.Now(), nil, true)
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
		b := s.msg(r, nil)
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
	return new(msgBox).fill(r, nil)
}

// msg builds the NATS message of r in a box from the pool. The box goes
// back with putMsg only once the client is done with the message: after a
// synchronous publish returns, or an asynchronous one is acknowledged
// (until then the client may publish it again by itself).
func (s *Sink) msg(r *ingest.Record, f *fence) *msgBox {
	b, _ := s.msgs.Get().(*msgBox)
	if b == nil {
		b = new(msgBox)
	}
	b.fill(r, f)
	return b
}

// putMsg empties b, so that the pool holds no event bytes, and pools it.
func (s *Sink) putMsg(b *msgBox) {
	b.m = nats.Msg{}
	clear(b.h)
	clear(b.vals)
	s.msgs.Put(b)
}

// fill builds the message of r in b, with the headers of f when not nil
// (see order).
func (b *msgBox) fill(r *ingest.Record, f *fence) *nats.Msg {
	b.m = nats.Msg{Subject: r.Dest, Data: r.Value}
	n := len(r.Headers)
	if r.MsgID != "" {
		n++
	}
	if f != nil {
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
	if f != nil {
		key := jetstream.ExpectedLastMsgIDHeader
		if f.id != "" {
			vals = append(vals, f.id)
		} else {
			key = jetstream.ExpectedLastSeqHeader
			vals = append(vals, strconv.FormatUint(f.seq, 10))
		}
		j := len(vals)
		h[key] = vals[j-1 : j : j]
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
	case isFenceRefusal(err):
		return fmt.Errorf("nats: record on %q not stored: a record published before it did not reach the stream as expected, so it is resent after that one: %w", subject, err)
	case errors.Is(err, jetstream.ErrTooManyStalledMsgs):
		return fmt.Errorf("nats: publish on %q: %d acknowledgements outstanding: %w", subject, s.cfg.MaxPending, err)
	}
	return fmt.Errorf("nats: publish on %q: %w", subject, err)
}

// isFenceRefusal reports whether the server refused a publish because the
// stream's last message was not the one it expected (see order).
func isFenceRefusal(err error) bool {
	var jerr jetstream.JetStreamError
	if !errors.As(err, &jerr) || jerr.APIError() == nil {
		return false
	}
	switch jerr.APIError().ErrorCode {
	case jetstream.JSErrCodeStreamWrongLastSequence, jetstream.JSErrCodeStreamWrongLastSequenceConstant, jsErrCodeStreamWrongLastMsgID:
		return true
	}
	return false
}

// jsErrCodeStreamWrongLastMsgID is the server's error code for a
// Nats-Expected-Last-Msg-Id that does not match.
const jsErrCodeStreamWrongLastMsgID jetstream.ErrorCode = 10070
