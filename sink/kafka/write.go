package kafka

import (
	"context"
	"errors"
	"fmt"

	"github.com/segmentio/kafka-go"

	"github.com/restless-stream/ingest"
)

// Write produces recs and returns nil only when the brokers acknowledged
// every record (per Config.RequiredAcks). Otherwise it returns an
// ingest.WriteErrors index-aligned with recs. Records for a missing topic,
// without a topic or larger than Config.BatchBytes fail without stopping the
// others; the last two with an ingest.PermanentError.
func (s *Sink) Write(ctx context.Context, recs []ingest.Record) error {
	if len(recs) == 0 {
		return nil
	}
	var errs ingest.WriteErrors
	fail := func(i int, err error) {
		if errs == nil {
			errs = make(ingest.WriteErrors, len(recs))
		}
		errs[i] = err
	}

	// Topics not seen before are checked (or created) first, so that a
	// missing topic fails its own records with a clear error.
	var topics []string
	for i := range recs {
		t := recs[i].Dest
		if t == "" || contains(topics, t) {
			continue
		}
		if _, ok := s.topics.Load(t); !ok {
			topics = append(topics, t)
		}
	}
	var topicErrs map[string]error
	if len(topics) > 0 {
		topicErrs = s.ensure(ctx, topics)
	}

	// One allocation each for the messages, their headers and the header
	// values of the whole batch.
	nh, nb := 0, 0
	for i := range recs {
		nh += len(recs[i].Headers)
		for _, h := range recs[i].Headers {
			nb += len(h.Value)
		}
	}
	msgs := make([]kafka.Message, 0, len(recs))
	headers := make([]kafka.Header, 0, nh)
	values := make([]byte, 0, nb)
	var index []int // index[j] is the record of msgs[j], when some are left out
	for i := range recs {
		r := &recs[i]
		if r.Dest == "" {
			fail(i, &ingest.PermanentError{Err: errors.New("kafka: record has no topic")})
			continue
		}
		if err := topicErrs[r.Dest]; err != nil {
			fail(i, err)
			continue
		}
		h0 := len(headers)
		for _, h := range r.Headers {
			v0 := len(values)
			values = append(values, h.Value...)
			headers = append(headers, kafka.Header{Key: h.Key, Value: values[v0:len(values):len(values)]})
		}
		m := kafka.Message{Topic: r.Dest, Key: r.Key, Value: r.Value, Headers: headers[h0:len(headers):len(headers)]}
		if n := messageSize(&m); n > s.cfg.BatchBytes {
			fail(i, &ingest.PermanentError{Err: fmt.Errorf("kafka: record of %d bytes for topic %q exceeds batch_bytes %d", n, r.Dest, s.cfg.BatchBytes)})
			continue
		}
		if errs != nil && index == nil {
			index = make([]int, len(msgs), len(recs))
			for j := range index {
				index[j] = j
			}
		}
		if index != nil {
			index = append(index, i)
		}
		msgs = append(msgs, m)
	}
	if len(msgs) == 0 {
		return errs
	}
	at := func(j int) int {
		if index == nil {
			return j
		}
		return index[j]
	}

	err := s.w.WriteMessages(ctx, msgs...)
	var werr kafka.WriteErrors
	switch {
	case err == nil:
		s.seen(true)
	case errors.As(err, &werr) && len(werr) == len(msgs):
		ok := false
		for j, e := range werr {
			if e == nil {
				ok = true
				continue
			}
			fail(at(j), s.produceError(msgs[j].Topic, e))
		}
		s.seen(ok)
	default:
		if ctx.Err() == nil {
			s.seen(false)
		}
		for j := range msgs {
			fail(at(j), s.produceError(msgs[j].Topic, err))
		}
	}
	if errs != nil {
		return errs
	}
	return nil
}

// produceError names the topic, and forgets a topic the broker no longer knows.
func (s *Sink) produceError(topic string, err error) error {
	if errors.Is(err, kafka.UnknownTopicOrPartition) {
		s.topics.Delete(topic)
		return fmt.Errorf("kafka: topic %q does not exist (create it, or set create_topics): %w", topic, err)
	}
	return fmt.Errorf("kafka: produce to %q: %w", topic, err)
}

// messageSize is the size kafka-go compares with BatchBytes (its unexported
// Message.totalSize): over it, WriteMessages fails the whole call.
func messageSize(m *kafka.Message) int64 {
	n := int64(4 + 1 + 1 + 4 + len(m.Key) + 4 + len(m.Value) + 8)
	n += int64(varintLen(len(m.Headers)))
	for _, h := range m.Headers {
		n += int64(varintLen(len(h.Key)) + len(h.Key) + varintLen(len(h.Value)) + len(h.Value))
	}
	return n
}

// varintLen is the length of n as a zigzag varint.
func varintLen(n int) int {
	u := uint64(n) << 1
	if n < 0 {
		u = ^u
	}
	l := 1
	for u >= 0x80 {
		u >>= 7
		l++
	}
	return l
}
