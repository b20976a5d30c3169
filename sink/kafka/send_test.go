package kafka

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	kafkago "github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/restless-stream/ingest"
)

// produced is what a broker saw of the produce requests: per request, the
// partition and the number of records.
type produced struct {
	mu   sync.Mutex
	reqs []producedReq
}

type producedReq struct {
	partition int32
	records   int
	bytes     int // of the record batch, as sent (compressed or not)
}

func (p *produced) all() []producedReq {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]producedReq(nil), p.reqs...)
}

// watchProduce records every produce request of c; refuse, when set, may
// make the broker refuse the n-th request (counting from 1) with the given
// error code.
func watchProduce(tb testing.TB, c *kfake.Cluster, refuse func(n int) int16) *produced {
	p := &produced{}
	n := 0
	c.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		preq := req.(*kmsg.ProduceRequest)
		n++
		p.mu.Lock()
		for _, tp := range preq.Topics {
			for _, pp := range tp.Partitions {
				var rb kmsg.RecordBatch
				if err := rb.ReadFrom(pp.Records); err != nil {
					tb.Errorf("produce request %d: record batch: %v", n, err)
				}
				p.reqs = append(p.reqs, producedReq{pp.Partition, int(rb.NumRecords), len(pp.Records)})
			}
		}
		p.mu.Unlock()
		if refuse == nil {
			return nil, nil, false
		}
		code := refuse(n)
		if code == 0 {
			return nil, nil, false
		}
		resp := preq.ResponseKind().(*kmsg.ProduceResponse)
		for _, tp := range preq.Topics {
			rt := kmsg.NewProduceResponseTopic()
			rt.Topic, rt.TopicID = tp.Topic, tp.TopicID
			for _, pp := range tp.Partitions {
				rp := kmsg.NewProduceResponseTopicPartition()
				rp.Partition = pp.Partition
				rp.ErrorCode = code
				rt.Partitions = append(rt.Partitions, rp)
			}
			resp.Topics = append(resp.Topics, rt)
		}
		return resp, nil, true
	})
	return p
}

// eventIDs returns the restless-event-id of each record, in order.
func eventIDs(recs []*kgo.Record) []string {
	ids := make([]string, len(recs))
	for i, r := range recs {
		for _, h := range r.Headers {
			if h.Key == "restless-event-id" {
				ids[i] = string(h.Value)
			}
		}
	}
	return ids
}

// TestWriteSendsAtOnce: with a batch timeout of an hour, a Write of a few
// records is still sent in one request and acknowledged: the sink has no
// timer of its own (kafka-go's Writer would hold these records for the
// hour).
func TestWriteSendsAtOnce(t *testing.T) {
	c, addr := newCluster(t)
	p := watchProduce(t, c, nil)
	s := newSink(t, Config{Brokers: []string{addr}, BatchTimeout: time.Hour})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := s.Write(ctx, records(testTopic, []string{"orders"}, 5)); err != nil {
		t.Fatal(err)
	}
	if reqs := p.all(); len(reqs) != 1 || reqs[0].records != 5 {
		t.Fatalf("produce requests %+v, want one of 5 records", reqs)
	}
	if got := consume(t, addr, testTopic, 5); len(got) != 5 {
		t.Fatalf("consumed %d records", len(got))
	}
}

// TestPartitionsLikeJava: each key lands in the partition that the Java
// client's default partitioner picks (murmur2, as kafka-go's
// Murmur2Balancer and franz-go's StickyKeyPartitioner compute it), for
// several partition counts.
func TestPartitionsLikeJava(t *testing.T) {
	for _, n := range []int{1, 3, 7, 16} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			topic := fmt.Sprintf("keys.%d", n)
			_, addr := newCluster(t, kfake.SeedTopics(int32(n), topic))
			s := newSink(t, Config{Brokers: []string{addr}})
			var keys []string
			for i := range 40 {
				keys = append(keys, fmt.Sprintf("stream-%d", i))
			}
			keys = append(keys, "", "orders", "ü-ñ", strings.Repeat("k", 300))
			recs := records(topic, keys, 3*len(keys))
			if err := s.Write(context.Background(), recs); err != nil {
				t.Fatal(err)
			}
			java := kgo.StickyKeyPartitioner(nil).ForTopic(topic)
			parts := make([]int, n)
			for i := range parts {
				parts[i] = i
			}
			got := consume(t, addr, topic, len(recs))
			if len(got) != len(recs) {
				t.Fatalf("consumed %d records, want %d", len(got), len(recs))
			}
			for _, r := range got {
				want := java.Partition(&kgo.Record{Key: r.Key}, n)
				if kg := (kafkago.Murmur2Balancer{}).Balance(kafkago.Message{Key: r.Key}, parts...); kg != want {
					t.Fatalf("key %q: kafka-go picks %d, franz-go %d", r.Key, kg, want)
				}
				if int(r.Partition) != want {
					t.Fatalf("key %q in partition %d, want %d", r.Key, r.Partition, want)
				}
			}
		})
	}
}

// TestSplitKeepsOrder: records of one partition beyond batch_size or
// batch_bytes go out in several requests, within the limits (uncompressed,
// each request's record batch is at most batch_bytes), and arrive in write
// order.
func TestSplitKeepsOrder(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		n    int
		// maxRecords and maxBytes bound each request; minRequests is the
		// fewest requests the limits allow.
		maxRecords  int
		minRequests int
	}{
		{"batch_size", Config{BatchSize: 3}, 10, 3, 4},
		{"batch_bytes", Config{BatchBytes: 4 << 10, Compression: CompressionNone}, 20, 3, 7}, // ~1.3 KiB records: 3 per request
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, addr := newCluster(t)
			p := watchProduce(t, c, nil)
			cfg := tt.cfg
			cfg.Brokers = []string{addr}
			s := newSink(t, cfg)
			recs := records(testTopic, []string{"one-key"}, tt.n)
			for i := range recs {
				recs[i].Value = fmt.Appendf(nil, `{"event_id":"%d","pad":"%s"}`, i, strings.Repeat("x", 1024))
			}
			if err := s.Write(context.Background(), recs); err != nil {
				t.Fatal(err)
			}
			reqs := p.all()
			total := 0
			for _, r := range reqs {
				if r.records > tt.maxRecords {
					t.Fatalf("a request of %d records, want at most %d: %+v", r.records, tt.maxRecords, reqs)
				}
				if cfg.BatchBytes > 0 && int64(r.bytes) > cfg.BatchBytes {
					t.Fatalf("a record batch of %d bytes, want at most %d: %+v", r.bytes, cfg.BatchBytes, reqs)
				}
				total += r.records
			}
			if len(reqs) < tt.minRequests || total != tt.n {
				t.Fatalf("%d requests with %d records, want at least %d with %d", len(reqs), total, tt.minRequests, tt.n)
			}
			got := consume(t, addr, testTopic, tt.n)
			for i, id := range eventIDs(got) {
				if id != fmt.Sprint(i) || got[i].Partition != got[0].Partition {
					t.Fatalf("record %d is event %s in partition %d", i, id, got[i].Partition)
				}
			}
		})
	}
}

// TestFailedRequestStopsItsPartition: when a request of a partition fails,
// the records after it are not sent, so a retry keeps the partition's order.
func TestFailedRequestStopsItsPartition(t *testing.T) {
	c, addr := newCluster(t)
	p := watchProduce(t, c, func(n int) int16 {
		if n == 2 {
			return kerr.PolicyViolation.Code
		}
		return 0
	})
	s := newSink(t, Config{Brokers: []string{addr}, BatchSize: 2, MaxAttempts: 1})
	recs := records(testTopic, []string{"one-key"}, 6)
	err := s.Write(context.Background(), recs)
	var werr ingest.WriteErrors
	if !errors.As(err, &werr) || len(werr) != 6 {
		t.Fatalf("Write = %v", err)
	}
	for i, e := range werr {
		switch {
		case i < 2 && e != nil:
			t.Fatalf("record %d of the first request: %v", i, e)
		case i >= 2 && (!errors.Is(e, kafkago.PolicyViolation) || !strings.Contains(e.Error(), testTopic) || ingest.IsPermanent(e)):
			t.Fatalf("record %d: %v", i, e)
		case i >= 4 && !strings.Contains(e.Error(), "not sent"):
			t.Fatalf("record %d after the failed request: %v", i, e)
		}
	}
	if reqs := p.all(); len(reqs) != 2 {
		t.Fatalf("produce requests %+v, want 2", reqs)
	}
	// The retry of the failed records lands after the acknowledged ones.
	if err := s.Write(context.Background(), recs[2:]); err != nil {
		t.Fatal(err)
	}
	got := consume(t, addr, testTopic, 6)
	for i, id := range eventIDs(got) {
		if id != fmt.Sprint(i) {
			t.Fatalf("record %d is event %s", i, id)
		}
	}
}

// TestLeaderMoves moves every partition to the other broker: the stale
// leader answers NOT_LEADER_FOR_PARTITION, the sink fetches the layout
// afresh, and the next attempt reaches the new leader.
func TestLeaderMoves(t *testing.T) {
	tests := []struct {
		name        string
		maxAttempts int
	}{
		// One attempt: the Write fails with a retriable error, and the
		// caller's retry reaches the new leader.
		{"caller retries", 1},
		// Default attempts: the Write itself tries again, after the refresh.
		{"write retries", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, addr := newCluster(t, kfake.NumBrokers(2))
			s := newSink(t, Config{Brokers: []string{addr}, MaxAttempts: tt.maxAttempts})
			streams := []string{"a", "b", "c", "d", "e", "f"}
			if err := s.Write(context.Background(), records(testTopic, streams, 12)); err != nil {
				t.Fatal(err)
			}
			for p := range int32(3) {
				if err := c.MoveTopicPartition(testTopic, p, 1-c.LeaderFor(testTopic, p)); err != nil {
					t.Fatal(err)
				}
			}
			recs := records(testTopic, streams, 12)
			err := s.Write(context.Background(), recs)
			if tt.maxAttempts == 1 {
				// Partitions are written concurrently: the first refusal
				// refreshes the metadata, so requests routed after it may
				// already reach the new leaders. Some records fail, each
				// with a retriable error, and the caller resends only those,
				// as the pipeline does.
				var werr ingest.WriteErrors
				if !errors.As(err, &werr) || werr.Count() == 0 {
					t.Fatalf("Write to the old leaders = %v, want refused records", err)
				}
				var again []ingest.Record
				for i, e := range werr {
					if e == nil {
						continue
					}
					if !errors.Is(e, kafkago.NotLeaderForPartition) || ingest.IsPermanent(e) {
						t.Fatalf("record %d: %v", i, e)
					}
					again = append(again, recs[i])
				}
				err = s.Write(context.Background(), again)
			}
			if err != nil {
				t.Fatalf("Write after the leaders moved = %v", err)
			}
			if got := consume(t, addr, testTopic, 24); len(got) != 24 {
				t.Fatalf("consumed %d records", len(got))
			}
		})
	}
}

// TestCloseWaitsForWrites: Close refuses new Writes at once, returns only
// after the Write in progress was acknowledged, and releases the sink.
func TestCloseWaitsForWrites(t *testing.T) {
	c, addr := newCluster(t)
	s := newSink(t, Config{Brokers: []string{addr}})
	held, release := holdProduce(t, c)
	written := make(chan error, 1)
	go func() { written <- s.Write(context.Background(), records(testTopic, []string{"a"}, 3)) }()
	<-held // the Write's request is at the broker

	closed := make(chan error, 1)
	go func() { closed <- s.Close(context.Background()) }()
	before := waitRefused(t, s)
	select {
	case err := <-closed:
		t.Fatalf("Close returned %v while a Write was in progress", err)
	default:
	}
	close(release)
	if err := <-written; err != nil {
		t.Fatalf("the Write in progress: %v", err)
	}
	if err := <-closed; err != nil {
		t.Fatalf("Close = %v", err)
	}
	if got := consume(t, addr, testTopic, 3+before); len(got) != 3+before {
		t.Fatalf("consumed %d records, want %d", len(got), 3+before)
	}
	if err := s.Close(context.Background()); err != nil {
		t.Fatalf("second Close = %v", err)
	}
}

// TestCloseCancelsWhenContextEnds: when Close's context ends before the
// Write in progress returns, the Write is cancelled, its records fail, and
// Close says so.
func TestCloseCancelsWhenContextEnds(t *testing.T) {
	c, addr := newCluster(t)
	s := newSink(t, Config{Brokers: []string{addr}, MaxAttempts: 1})
	held, release := holdProduce(t, c)
	t.Cleanup(func() { close(release) })
	written := make(chan error, 1)
	go func() { written <- s.Write(context.Background(), records(testTopic, []string{"a"}, 3)) }()
	<-held

	ctx, cancel := context.WithCancel(context.Background())
	closed := make(chan error, 1)
	go func() { closed <- s.Close(ctx) }()
	waitRefused(t, s)
	cancel()
	if err := <-closed; !errors.Is(err, context.Canceled) {
		t.Fatalf("Close = %v, want context.Canceled", err)
	}
	var werr ingest.WriteErrors
	if err := <-written; !errors.As(err, &werr) || werr.Count() != 3 || !errors.Is(werr[0], context.Canceled) {
		t.Fatalf("the cancelled Write = %v", err)
	}
}

// holdProduce makes the broker hold the first produce request until release
// is closed; held is closed when the request arrives.
func holdProduce(t *testing.T, c *kfake.Cluster) (held, release chan struct{}) {
	held, release = make(chan struct{}), make(chan struct{})
	var first atomic.Bool
	c.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		if first.CompareAndSwap(false, true) {
			close(held)
			c.SleepControl(func() { <-release })
		}
		return nil, nil, false
	})
	return held, release
}

// waitRefused waits until a Write fails with ingest.ErrClosed: Close has
// begun. It returns how many records it wrote before.
func waitRefused(t *testing.T, s *Sink) (written int) {
	t.Helper()
	for {
		err := s.Write(context.Background(), records(testTopic, []string{"b"}, 2))
		var werr ingest.WriteErrors
		if errors.As(err, &werr) && werr.Count() == 2 && errors.Is(werr[0], ingest.ErrClosed) && errors.Is(werr[1], ingest.ErrClosed) {
			return written
		}
		if err == nil {
			// Close has not begun yet; the Write went through.
			written += 2
			time.Sleep(time.Millisecond)
			continue
		}
		t.Fatalf("Write while closing = %v", err)
	}
}

func TestWriteAfterClose(t *testing.T) {
	_, addr := newCluster(t)
	s := newSink(t, Config{Brokers: []string{addr}})
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	err := s.Write(context.Background(), records(testTopic, []string{"a"}, 1))
	var werr ingest.WriteErrors
	if !errors.As(err, &werr) || !errors.Is(werr[0], ingest.ErrClosed) || !strings.Contains(err.Error(), "closed") {
		t.Fatalf("Write after Close = %v", err)
	}
}
