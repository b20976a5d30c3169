package kafka

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	kafkago "github.com/segmentio/kafka-go"

	"github.com/restless-stream/ingest"
)

// maxInflight bounds the produce requests one Write has in flight at once
// (one per partition it writes to).
const maxInflight = 16

// Backoff between the attempts of one produce request, as kafka-go's Writer
// spaces them: attempt² × retryBackoffMin, at most retryBackoffMax.
const (
	retryBackoffMin = 100 * time.Millisecond
	retryBackoffMax = time.Second
)

// partitionKey names one partition of one topic.
type partitionKey struct {
	topic     string
	partition int32
}

// group is the records of one Write bound for one partition, in write order.
type group struct {
	partitionKey
	idx   []int32 // indexes into the Write's records
	errs  []error // nil, or index-aligned with idx once a request failed
	acked bool    // a produce request of the group succeeded
}

// Write produces recs and returns nil only when the brokers acknowledged
// every record (per Config.RequiredAcks). Otherwise it returns an
// ingest.WriteErrors index-aligned with recs. Records for a missing topic,
// without a topic, for a topic name Kafka cannot have (see ValidTopic) or
// larger than Config.BatchBytes fail without stopping the others; the last
// three with an ingest.PermanentError. After Close has begun, every record
// fails with ingest.ErrClosed.
//
// Write sends at once: no timer holds the records back. The records of each
// partition go out in produce requests of at most Config.BatchSize records
// and Config.BatchBytes bytes; partitions are written concurrently. Within a
// partition the requests go one after the other; when one fails, the records
// after it fail too without being sent, so that a retry keeps their order.
func (s *Sink) Write(ctx context.Context, recs []ingest.Record) error {
	if len(recs) == 0 {
		return nil
	}
	ctx, done, err := s.writes.Enter(ctx)
	if err != nil {
		return failAll(len(recs), fmt.Errorf("kafka: write: %w", err))
	}
	defer done()

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
		if t == "" || slices.Contains(topics, t) {
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

	// Each record gets its partition: murmur2 of the key over the topic's
	// partition count, as the Java client computes it.
	type topicInfo struct {
		name  string
		parts []int
		err   error
	}
	var infos []topicInfo // few topics per Write: a slice beats a map
	info := func(t string) *topicInfo {
		for i := range infos {
			if infos[i].name == t {
				return &infos[i]
			}
		}
		n, err := s.partitions(ctx, t)
		ti := topicInfo{name: t, err: err}
		if err == nil {
			ti.parts = partitionList(n)
		}
		infos = append(infos, ti)
		return &infos[len(infos)-1]
	}
	var groups []group
	gid := make([]int32, len(recs)) // group of each record, -1 when failed
	counts := make([]int32, 0, 4)
	for i := range recs {
		gid[i] = -1
		r := &recs[i]
		if r.Dest == "" {
			fail(i, &ingest.PermanentError{Err: errors.New("kafka: record has no topic")})
			continue
		}
		if err := topicErrs[r.Dest]; err != nil {
			fail(i, err)
			continue
		}
		if n := batchOverhead + recordSize(r); n > s.cfg.BatchBytes {
			fail(i, &ingest.PermanentError{Err: fmt.Errorf("kafka: record of %d bytes (in a batch of its own) for topic %q exceeds batch_bytes %d", n, r.Dest, s.cfg.BatchBytes)})
			continue
		}
		ti := info(r.Dest)
		if ti.err != nil {
			fail(i, s.produceError(r.Dest, ti.err))
			continue
		}
		key := partitionKey{r.Dest, int32(kafkago.Murmur2Balancer{}.Balance(kafkago.Message{Key: r.Key}, ti.parts...))}
		g := slices.IndexFunc(groups, func(g group) bool { return g.partitionKey == key })
		if g < 0 {
			g = len(groups)
			groups = append(groups, group{partitionKey: key})
			counts = append(counts, 0)
		}
		gid[i] = int32(g)
		counts[g]++
	}
	if len(groups) == 0 {
		return errs
	}
	// One backing array holds every group's indexes.
	all := make([]int32, 0, len(recs))
	for g := range groups {
		groups[g].idx = all[len(all) : len(all) : len(all)+int(counts[g])]
		all = all[:len(all)+int(counts[g])]
	}
	for i, g := range gid {
		if g >= 0 {
			groups[g].idx = append(groups[g].idx, int32(i))
		}
	}

	if len(groups) == 1 {
		s.sendGroup(ctx, recs, &groups[0])
	} else {
		var wg sync.WaitGroup
		sem := make(chan struct{}, min(len(groups), maxInflight))
		for g := range groups {
			sem <- struct{}{}
			wg.Go(func() {
				defer func() { <-sem }()
				s.sendGroup(ctx, recs, &groups[g])
			})
		}
		wg.Wait()
	}

	acked := false
	for g := range groups {
		acked = acked || groups[g].acked
		for j, e := range groups[g].errs {
			if e != nil {
				fail(int(groups[g].idx[j]), e)
			}
		}
	}
	switch {
	case acked:
		s.seen(true)
	case ctx.Err() == nil:
		s.seen(false)
	}
	if errs != nil {
		return errs
	}
	return nil
}

// sendGroup produces the records of g in requests of at most BatchSize
// records and BatchBytes bytes, one after the other. After a failed request
// the rest of the group is not sent, to keep the partition's order.
func (s *Sink) sendGroup(ctx context.Context, recs []ingest.Record, g *group) {
	rr := &recordReader{recs: recs}
	for start := 0; start < len(g.idx); {
		end, size := start, int64(batchOverhead)
		for end < len(g.idx) && end-start < s.cfg.BatchSize {
			n := recordSize(&recs[g.idx[end]])
			if end > start && size+n > s.cfg.BatchBytes {
				break
			}
			size += n
			end++
		}
		rr.idx = g.idx[start:end]
		recErrs, err := s.produce(ctx, g.partitionKey, rr)
		if err == nil {
			g.acked = true
			start = end
			continue
		}
		g.errs = make([]error, len(g.idx))
		for j := start; j < end; j++ {
			e := err
			if re := recErrs[j-start]; re != nil {
				e = fmt.Errorf("%w: record %d of the request: %v", err, j-start, re)
			}
			g.errs[j] = s.produceError(g.topic, e)
		}
		for j := end; j < len(g.idx); j++ {
			g.errs[j] = s.produceError(g.topic, fmt.Errorf("not sent after a failed request to partition %d, to keep its order: %w", g.partition, err))
		}
		return
	}
}

// produce sends one produce request, and tries it again (up to
// Config.MaxAttempts in all) while its error is retriable. An error that
// says the cluster layout moved (a new leader, a broker gone) makes the next
// request fetch fresh metadata.
func (s *Sink) produce(ctx context.Context, key partitionKey, rr *recordReader) (map[int]error, error) {
	for attempt := 1; ; attempt++ {
		gen := s.metaGen.Load()
		rr.next = 0
		res, err := s.client.Produce(ctx, &kafkago.ProduceRequest{
			Topic:        key.topic,
			Partition:    int(key.partition),
			RequiredAcks: s.acks,
			Compression:  s.codec,
			Records:      rr,
		})
		var recErrs map[int]error
		if err == nil && res != nil { // res is nil with required_acks none
			err, recErrs = res.Error, res.RecordErrors
		}
		if err == nil {
			return nil, nil
		}
		if staleMetadata(err) {
			s.refreshMetadata(gen)
		}
		if attempt >= s.cfg.MaxAttempts || !retriable(err) || ctx.Err() != nil {
			return recErrs, err
		}
		t := time.NewTimer(min(time.Duration(attempt*attempt)*retryBackoffMin, retryBackoffMax))
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return recErrs, err
		}
	}
}

// retriable reports whether a produce error may pass when tried again; it
// follows kafka-go's Writer (Kafka's retriable error codes, a timeout, a
// connection refused or reset).
func retriable(err error) bool {
	var temp interface{ Temporary() bool }
	if errors.As(err, &temp) && temp.Temporary() {
		return true
	}
	return transientNetworkError(err)
}

func transientNetworkError(err error) bool {
	return errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EPIPE)
}

// staleMetadata reports whether err says the cached cluster layout is out of
// date: the request went to a broker that no longer leads the partition, or
// that is gone.
func staleMetadata(err error) bool {
	for _, code := range []kafkago.Error{
		kafkago.NotLeaderForPartition,
		kafkago.LeaderNotAvailable,
		kafkago.UnknownTopicOrPartition,
		kafkago.BrokerNotAvailable,
		kafkago.ReplicaNotAvailable,
		kafkago.KafkaStorageError,
		kafkago.FencedLeaderEpoch,
		kafkago.UnknownLeaderEpoch,
		kafkago.UnknownTopicID,
	} {
		if errors.Is(err, code) {
			return true
		}
	}
	return transientNetworkError(err)
}

// refreshMetadata drops the transport's connection pool, and with it the
// cached cluster layout, so that the next request fetches the metadata
// afresh before it is routed. Requests in flight finish on the old pool.
// gen is the metadata generation the failed request was sent with: of
// several requests that fail on one stale layout, only the first refreshes.
// The transport also refreshes the layout on its own every few seconds
// (kafka-go's MetadataTTL, 6s).
func (s *Sink) refreshMetadata(gen uint64) {
	if s.metaGen.CompareAndSwap(gen, gen+1) {
		s.transport.CloseIdleConnections()
	}
}

// partitionIDs caches the list 0, 1, … that kafka-go's balancers take.
var partitionIDs atomic.Pointer[[]int]

func partitionList(n int) []int {
	if p := partitionIDs.Load(); p != nil && len(*p) >= n {
		return (*p)[:n:n]
	}
	ids := make([]int, (n/128+1)*128)
	for i := range ids {
		ids[i] = i
	}
	partitionIDs.Store(&ids)
	return ids[:n:n]
}

// recordReader hands the records recs[idx[0]], recs[idx[1]], … to a produce
// request, reusing one kafkago.Record and its header buffers.
type recordReader struct {
	recs       []ingest.Record
	idx        []int32
	next       int
	rec        kafkago.Record
	key, value bytesReader
	headers    []kafkago.Header
	values     []byte
}

// ReadRecord implements kafkago.RecordReader; the record is valid until the
// next call.
func (r *recordReader) ReadRecord() (*kafkago.Record, error) {
	if r.next >= len(r.idx) {
		return nil, io.EOF
	}
	rec := &r.recs[r.idx[r.next]]
	r.next++
	n := 0
	for _, h := range rec.Headers {
		n += len(h.Value)
	}
	// Grown once, so that no append below moves the values already sliced.
	r.values = slices.Grow(r.values[:0], n)
	r.headers = r.headers[:0]
	for _, h := range rec.Headers {
		v0 := len(r.values)
		r.values = append(r.values, h.Value...)
		r.headers = append(r.headers, kafkago.Header{Key: h.Key, Value: r.values[v0:len(r.values):len(r.values)]})
	}
	r.rec = kafkago.Record{Headers: r.headers}
	if rec.Key != nil {
		r.key.Reset(rec.Key)
		r.rec.Key = &r.key
	}
	if rec.Value != nil {
		r.value.Reset(rec.Value)
		r.rec.Value = &r.value
	}
	return &r.rec, nil
}

// bytesReader is a key or value of a record, as kafkago.Bytes.
type bytesReader struct{ bytes.Reader }

// Close implements io.Closer.
func (*bytesReader) Close() error { return nil }

// failAll fails each of n records with err.
func failAll(n int, err error) ingest.WriteErrors {
	errs := make(ingest.WriteErrors, n)
	for i := range errs {
		errs[i] = err
	}
	return errs
}

// produceError names the topic, and forgets a topic the broker no longer knows.
func (s *Sink) produceError(topic string, err error) error {
	if errors.Is(err, kafkago.UnknownTopicOrPartition) {
		s.topics.Delete(topic)
		return fmt.Errorf("kafka: topic %q does not exist (create it, or set create_topics): %w", topic, err)
	}
	return fmt.Errorf("kafka: produce to %q: %w", topic, err)
}

// batchOverhead is the size of a record batch's header in Kafka's message
// format v2, which every produce request of the sink carries once.
const batchOverhead = 61

// recordSize is the most bytes r takes in a record batch of Kafka's message
// format v2, before compression: its length, attributes, timestamp and
// offset deltas (counted at their longest, 10 and 5 bytes, since the batch
// decides them), key, value and headers. A produce request of records rs
// is batchOverhead + Σ recordSize(rs) bytes at most.
func recordSize(r *ingest.Record) int64 {
	n := 1 + 10 + 5 + bytesLen(r.Key, r.Key != nil) + bytesLen(r.Value, r.Value != nil)
	n += varintLen(len(r.Headers))
	for _, h := range r.Headers {
		n += varintLen(len(h.Key)) + len(h.Key) + varintLen(len(h.Value)) + len(h.Value)
	}
	return int64(varintLen(n) + n)
}

// bytesLen is the encoded size of a key or value: its length as a varint
// (-1 when absent) and its bytes.
func bytesLen(b []byte, present bool) int {
	if !present {
		return varintLen(-1)
	}
	return varintLen(len(b)) + len(b)
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
