package nats

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
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
	errs := make(ingest.WriteErrors, len(recs))
	// Unusable subjects first, so that they fail for good whatever happens
	// to the rest of the Write.
	for i := range recs {
		if err := validSubject(recs[i].Dest, false); err != nil {
			errs[i] = &ingest.PermanentError{Err: fmt.Errorf("nats: record: %w", err)}
		}
	}
	// The records of each subject, in order; subjects in flight together.
	groups := bySubject(recs, errs)
	if len(groups) == 1 {
		s.writeSubject(ctx, recs, groups[0], errs)
	} else {
		var wg sync.WaitGroup
		for _, g := range groups {
			wg.Go(func() { s.writeSubject(ctx, recs, g, errs) })
		}
		wg.Wait()
	}
	if errs.Count() > 0 {
		return errs
	}
	return nil
}

// bySubject returns the indexes of the records without an error, grouped
// by subject in order of first appearance, each group in record order.
func bySubject(recs []ingest.Record, errs ingest.WriteErrors) [][]int {
	var groups [][]int
	var at map[string]int // subject -> index in groups, once there are two
	for i := range recs {
		if errs[i] != nil {
			continue
		}
		d := recs[i].Dest
		switch {
		case len(groups) == 0:
			groups = append(groups, []int{i})
			continue
		case at == nil && recs[groups[0][0]].Dest == d:
			groups[0] = append(groups[0], i)
			continue
		case at == nil:
			at = map[string]int{recs[groups[0][0]].Dest: 0}
		}
		if g, ok := at[d]; ok {
			groups[g] = append(groups[g], i)
			continue
		}
		at[d] = len(groups)
		groups = append(groups, []int{i})
	}
	return groups
}

// writeSubject publishes the records idx of recs, all on one subject, one
// at a time, each fenced by the sequence of the subject's last message and
// acknowledged before the next is sent (see order). At the first failure
// it stops: that record and the ones after it fail, so that they are
// resent in order. Each goroutine writes only its own entries of errs.
func (s *Sink) writeSubject(ctx context.Context, recs []ingest.Record, idx []int, errs ingest.WriteErrors) {
	subject := recs[idx[0]].Dest
	failFrom := func(k int, err error) {
		for _, i := range idx[k:] {
			errs[i] = err
		}
	}
	c, err := s.order.acquire(ctx, subject)
	if err != nil {
		failFrom(0, fmt.Errorf("nats: waiting for earlier publishes on %q to settle: %w", subject, err))
		return
	}
	defer s.order.release(subject, c)
	for k, i := range idx {
		if err := ctx.Err(); err != nil {
			failFrom(k, fmt.Errorf("nats: publish on %q: %w", subject, err))
			return
		}
		last, ok := s.order.lastSeq(c)
		if !ok {
			if last, err = s.lastOnSubject(ctx, subject); err != nil {
				failFrom(k, err)
				return
			}
			s.order.set(c, last)
		}
		seq, dup, err := s.publishFenced(ctx, &recs[i], last)
		// A replicated stream refuses a fenced record, before proposing it,
		// while an earlier message on its subject is still being applied:
		// nats-server 2.15 acknowledges a record a moment before it stops
		// counting it as in process. Nothing was stored; resend as is,
		// briefly.
		for try := 0; err != nil && isSubjectBusy(err) && try < maxBusyResends && ctx.Err() == nil; try++ {
			t := time.NewTimer(min(time.Millisecond<<try, 50*time.Millisecond))
			select {
			case <-t.C:
				s.busyResends.Add(1)
				seq, dup, err = s.publishFenced(ctx, &recs[i], last)
			case <-ctx.Done():
				t.Stop()
			}
		}
		if err != nil {
			s.order.forget(c)
			if isFenceRefusal(err) {
				s.refusals.Add(1)
			}
			failFrom(k, s.publishError(subject, err))
			return
		}
		if dup {
			// Stored before, maybe after what the chain knew.
			s.order.forget(c)
			continue
		}
		s.order.set(c, seq)
	}
}

// publishFenced publishes r, to be stored only if the last message on its
// subject has stream sequence last, and waits for the acknowledgement. It
// returns the record's sequence and whether the server called it a
// duplicate.
func (s *Sink) publishFenced(ctx context.Context, r *ingest.Record, last uint64) (uint64, bool, error) {
	// A publish stalls while MaxPending acknowledgements are outstanding;
	// the library bounds that wait by time only, so give it what is left
	// of ctx.
	stall := s.cfg.AckTimeout
	if dl, ok := ctx.Deadline(); ok {
		stall = min(stall, max(time.Until(dl), time.Millisecond))
	}
	// No resend by the client on "no responders" (a stream without a
	// leader): its timer would publish the record again later, and that
	// late copy could be stored after records that were resent meanwhile.
	// The record fails instead and the next Write resends it, in order.
	b := s.msg(r, &last)
	s.health.publishing(time.Now())
	f, err := s.js.PublishMsgAsync(&b.m, jetstream.WithStallWait(stall), jetstream.WithRetryAttempts(0))
	if err != nil {
		// The client's refusal, not the server's answer.
		s.health.done(time.Now(), err, false)
		s.putMsg(b) // not handed over
		return 0, false, err
	}
	select {
	case ack := <-f.Ok():
		s.health.done(time.Now(), nil, true)
		// Acknowledged: the client has let the message go. (After an
		// error it may not have: a retry timer can still hold it.)
		s.putMsg(b)
		if ack.Duplicate {
			s.duplicates.Add(1)
		}
		return ack.Sequence, ack.Duplicate, nil
	case err := <-f.Err():
		s.health.done(time.Now(), err, true)
		return 0, false, err
	case <-ctx.Done():
		// The acknowledgement may still come: the record is reported
		// failed and, when resent, caught by Nats-Msg-Id or its fence.
		s.health.done(time.Now(), nil, false)
		return 0, false, fmt.Errorf("waiting for acknowledgement: %w", ctx.Err())
	}
}

// lastOnSubject reads the stream sequence of the last message on subject,
// 0 when the stream holds none there.
func (s *Sink) lastOnSubject(ctx context.Context, subject string) (uint64, error) {
	rctx, cancel := context.WithTimeout(ctx, s.cfg.AckTimeout)
	defer cancel()
	// The read waits on the stream's leader as a publish does: health
	// counts it, so that a stream that stores nothing (no quorum) is seen
	// even when every Write stops at this read.
	s.health.publishing(time.Now())
	m, err := s.stream.GetLastMsgForSubject(rctx, subject)
	switch {
	case err == nil:
		s.health.done(time.Now(), nil, true)
		return m.Sequence, nil
	case errors.Is(err, jetstream.ErrMsgNotFound):
		s.health.done(time.Now(), nil, true)
		return 0, nil
	}
	if ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
		err = fmt.Errorf("%w: %w", nats.ErrTimeout, err)
	}
	s.health.done(time.Now(), err, ctx.Err() == nil)
	return 0, fmt.Errorf("nats: reading the last message on %q of stream %q, which the next record there must follow: %w", subject, s.cfg.Stream, err)
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
func (s *Sink) msg(r *ingest.Record, last *uint64) *msgBox {
	b, _ := s.msgs.Get().(*msgBox)
	if b == nil {
		b = new(msgBox)
	}
	b.fill(r, last)
	return b
}

// putMsg empties b, so that the pool holds no event bytes, and pools it.
func (s *Sink) putMsg(b *msgBox) {
	b.m = nats.Msg{}
	clear(b.h)
	clear(b.vals)
	s.msgs.Put(b)
}

// fill builds the message of r in b, with the fence
// Nats-Expected-Last-Subject-Sequence: *last when last is not nil (see
// order).
func (b *msgBox) fill(r *ingest.Record, last *uint64) *nats.Msg {
	b.m = nats.Msg{Subject: r.Dest, Data: r.Value}
	n := len(r.Headers)
	if r.MsgID != "" {
		n++
	}
	if last != nil {
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
	if last != nil {
		vals = append(vals, strconv.FormatUint(*last, 10))
		j := len(vals)
		h[jetstream.ExpectedLastSubjSeqHeader] = vals[j-1 : j : j]
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

// maxBusyResends bounds the resends of a record refused because another
// message on its subject was still in process; past it (an other
// publisher's message on the subject, in process for long), the record
// fails as refused.
const maxBusyResends = 10

// isSubjectBusy reports whether a replicated stream refused a fenced
// record, before proposing it, because a message on its subject was still
// in process (nats-server 2.11 and later; error code 10164 carries no
// sequence, unlike 10071).
func isSubjectBusy(err error) bool {
	var jerr jetstream.JetStreamError
	return errors.As(err, &jerr) && jerr.APIError() != nil &&
		jerr.APIError().ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant
}

// isFenceRefusal reports whether the server refused a publish because the
// last message on its subject was not the one it expected (see order).
func isFenceRefusal(err error) bool {
	var jerr jetstream.JetStreamError
	if !errors.As(err, &jerr) || jerr.APIError() == nil {
		return false
	}
	switch jerr.APIError().ErrorCode {
	case jetstream.JSErrCodeStreamWrongLastSequence, jetstream.JSErrCodeStreamWrongLastSequenceConstant:
		return true
	}
	return false
}
