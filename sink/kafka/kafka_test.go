package kafka

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/restless-stream/ingest"
)

func TestConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"broker without port", Config{Brokers: []string{"localhost"}}, "brokers[0]"},
		{"required acks", Config{RequiredAcks: "some"}, "required_acks"},
		{"compression", Config{Compression: "brotli"}, "compression"},
		{"negative partitions", Config{Partitions: -1}, "partitions"},
		{"negative batch timeout", Config{BatchTimeout: -time.Second}, "batch_timeout"},
		{"negative batch bytes", Config{BatchBytes: -1}, "batch_bytes"},
		{"sasl mechanism", Config{SASL: SASLConfig{Mechanism: "gssapi", Username: "u"}}, "sasl.mechanism"},
		{"sasl without user", Config{SASL: SASLConfig{Mechanism: "plain", Password: "hunter2"}}, "sasl.username"},
		{"tls cert without key", Config{TLS: TLSConfig{CertFile: "c.pem"}}, "tls.cert_file"},
		{"tls ca missing", Config{TLS: TLSConfig{CAFile: "/nonexistent/ca.pem"}}, "tls.ca_file"},
		{"no broker", Config{Brokers: []string{"127.0.0.1:1"}, DialTimeout: time.Second, SASL: SASLConfig{Mechanism: "plain", Username: "u", Password: "hunter2"}}, "reach brokers 127.0.0.1:1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			s, err := New(ctx, tt.cfg)
			if err == nil {
				s.Close()
				t.Fatal("New succeeded")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %q does not contain %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Fatalf("error leaks the password: %v", err)
			}
		})
	}
}

// TestWriteDelivers checks, for every codec, that each record arrives once
// with its key, value and headers in order, and that equal keys share a
// partition in write order.
func TestWriteDelivers(t *testing.T) {
	for _, codec := range []string{"none", "gzip", "snappy", "lz4", "zstd"} {
		t.Run(codec, func(t *testing.T) {
			_, addr := newCluster(t)
			s := newSink(t, Config{Brokers: []string{addr}, Compression: codec})
			recs := records(testTopic, []string{"orders", "users", "stock", "prices"}, 300)
			recs[7].Key = nil // no key: any partition
			// Two lanes write at once, as the pipeline does.
			var wg sync.WaitGroup
			for _, half := range [][]ingest.Record{recs[:150], recs[150:]} {
				wg.Go(func() {
					if err := s.Write(context.Background(), half); err != nil {
						t.Error(err)
					}
				})
			}
			wg.Wait()
			got := consume(t, addr, testTopic, len(recs))
			if len(got) != len(recs) {
				t.Fatalf("consumed %d records, want %d", len(got), len(recs))
			}
			seen := make(map[string]bool)
			partitionOf := make(map[string]int32)
			lastID := make(map[string]int)
			for _, r := range got {
				var id string
				for _, h := range r.Headers {
					if h.Key == "restless-event-id" {
						id = string(h.Value)
					}
				}
				if seen[id] {
					t.Fatalf("record %s arrived twice", id)
				}
				seen[id] = true
				var n int
				fmt.Sscan(id, &n)
				want := recs[n]
				if string(r.Value) != string(want.Value) || string(r.Key) != string(want.Key) || (want.Key == nil) != (r.Key == nil) {
					t.Fatalf("record %s: key %q value %s", id, r.Key, r.Value)
				}
				if len(r.Headers) != len(want.Headers) {
					t.Fatalf("record %s has %d headers, want %d", id, len(r.Headers), len(want.Headers))
				}
				for i, h := range r.Headers {
					if h.Key != want.Headers[i].Key || string(h.Value) != want.Headers[i].Value {
						t.Fatalf("record %s header %d = %s:%s, want %v", id, i, h.Key, h.Value, want.Headers[i])
					}
				}
				if want.Key == nil {
					continue
				}
				k := string(r.Key)
				if p, ok := partitionOf[k]; ok && p != r.Partition {
					t.Fatalf("key %s in partitions %d and %d", k, p, r.Partition)
				}
				partitionOf[k] = r.Partition
				// Within one lane's half, a key's records keep their order.
				if last, ok := lastID[k]; ok && (last < 150) == (n < 150) && n < last {
					t.Fatalf("key %s: record %d after %d", k, n, last)
				}
				lastID[k] = n
			}
		})
	}
}

func TestMissingTopic(t *testing.T) {
	_, addr := newCluster(t)
	s := newSink(t, Config{Brokers: []string{addr}})
	err := s.EnsureTopics(context.Background(), []string{testTopic, "nope", "nada"})
	if err == nil || !strings.Contains(err.Error(), `topic "nope" does not exist`) || !strings.Contains(err.Error(), `"nada"`) {
		t.Fatalf("EnsureTopics = %v", err)
	}
	recs := records(testTopic, []string{"a"}, 4)
	recs[1].Dest = "nope"
	recs[2].Dest = ""
	err = s.Write(context.Background(), recs)
	var werr ingest.WriteErrors
	if !errors.As(err, &werr) || len(werr) != 4 {
		t.Fatalf("Write = %v", err)
	}
	if werr[0] != nil || werr[3] != nil {
		t.Fatalf("records of the existing topic failed: %v", werr)
	}
	if !strings.Contains(werr[1].Error(), `"nope"`) || !errors.Is(werr[1], kafka.UnknownTopicOrPartition) || ingest.IsPermanent(werr[1]) {
		t.Errorf("record 1: %v", werr[1])
	}
	if !ingest.IsPermanent(werr[2]) {
		t.Errorf("record 2: %v", werr[2])
	}
	if got := consume(t, addr, testTopic, 2); len(got) != 2 {
		t.Fatalf("consumed %d records", len(got))
	}
}

func TestCreateTopics(t *testing.T) {
	c, addr := newCluster(t)
	s := newSink(t, Config{Brokers: []string{addr}, CreateTopics: true, Partitions: 4})
	if err := s.EnsureTopics(context.Background(), []string{"created.at.start", testTopic}); err != nil {
		t.Fatal(err)
	}
	if ps := c.PartitionInfos("created.at.start"); len(ps) != 4 {
		t.Fatalf("created topic has %d partitions, want 4", len(ps))
	}
	// A topic first seen by Write is created too.
	if err := s.Write(context.Background(), records("created.on.write", []string{"a"}, 3)); err != nil {
		t.Fatal(err)
	}
	if got := consume(t, addr, "created.on.write", 3); len(got) != 3 {
		t.Fatalf("consumed %d records", len(got))
	}
}

// TestBrokerRefusesProduce makes the broker refuse every produce to
// partition 0: exactly the records routed there fail, each with the
// broker's error.
func TestBrokerRefusesProduce(t *testing.T) {
	c, addr := newCluster(t)
	c.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		preq := req.(*kmsg.ProduceRequest)
		refuse := false
		for _, tp := range preq.Topics {
			for _, p := range tp.Partitions {
				refuse = refuse || p.Partition == 0
			}
		}
		if !refuse {
			return nil, nil, false
		}
		resp := preq.ResponseKind().(*kmsg.ProduceResponse)
		for _, tp := range preq.Topics {
			rt := kmsg.NewProduceResponseTopic()
			rt.Topic, rt.TopicID = tp.Topic, tp.TopicID
			for _, p := range tp.Partitions {
				rp := kmsg.NewProduceResponseTopicPartition()
				rp.Partition = p.Partition
				rp.ErrorCode = kerr.PolicyViolation.Code
				rt.Partitions = append(rt.Partitions, rp)
			}
			resp.Topics = append(resp.Topics, rt)
		}
		return resp, nil, true
	})
	s := newSink(t, Config{Brokers: []string{addr}, MaxAttempts: 1})
	recs := records(testTopic, []string{"a", "b", "c", "d", "e", "f"}, 60)
	err := s.Write(context.Background(), recs)
	var werr ingest.WriteErrors
	if !errors.As(err, &werr) || len(werr) != len(recs) {
		t.Fatalf("Write = %v", err)
	}
	if werr.Count() == 0 || werr.Count() == len(recs) {
		t.Fatalf("%d of %d records failed; want those of partition 0 only", werr.Count(), len(recs))
	}
	failedKeys := make(map[string]bool)
	for i, e := range werr {
		if e != nil {
			if !errors.Is(e, kafka.PolicyViolation) || !strings.Contains(e.Error(), testTopic) {
				t.Fatalf("record %d: %v", i, e)
			}
			failedKeys[string(recs[i].Key)] = true
		}
	}
	for i, e := range werr {
		if e == nil && failedKeys[string(recs[i].Key)] {
			t.Fatalf("record %d with key %s succeeded although its partition refused", i, recs[i].Key)
		}
	}
	if got := consume(t, addr, testTopic, len(recs)-werr.Count()); len(got) != len(recs)-werr.Count() {
		t.Fatalf("consumed %d records", len(got))
	}
}

func TestTooLargeRecord(t *testing.T) {
	_, addr := newCluster(t)
	s := newSink(t, Config{Brokers: []string{addr}, BatchBytes: 10 << 10})
	recs := records(testTopic, []string{"a"}, 3)
	recs[1].Value = make([]byte, 10<<10)
	err := s.Write(context.Background(), recs)
	var werr ingest.WriteErrors
	if !errors.As(err, &werr) || werr.Count() != 1 || !ingest.IsPermanent(werr[1]) || !strings.Contains(werr[1].Error(), "batch_bytes") {
		t.Fatalf("Write = %v", err)
	}
	if got := consume(t, addr, testTopic, 2); len(got) != 2 {
		t.Fatalf("consumed %d records", len(got))
	}
}

func TestMessageSizeMatchesKafkaGo(t *testing.T) {
	// kafka-go refuses a message over BatchBytes with MessageTooLargeError;
	// our estimate must agree at the limit.
	// recordSize is that estimate for an ingest.Record.
	_, addr := newCluster(t)
	m := kafka.Message{Topic: testTopic, Key: []byte("k"), Value: make([]byte, 1000), Headers: []kafka.Header{{Key: "h", Value: []byte("v")}}}
	r := ingest.Record{Dest: testTopic, Key: m.Key, Value: m.Value, Headers: []ingest.Header{{Key: "h", Value: "v"}}}
	size := messageSize(&m)
	if n := recordSize(&r); n != size {
		t.Fatalf("recordSize = %d, messageSize = %d", n, size)
	}
	for _, limit := range []int64{size - 1, size} {
		w := &kafka.Writer{Addr: kafka.TCP(addr), BatchBytes: limit, BatchTimeout: time.Millisecond, RequiredAcks: kafka.RequireAll}
		err := w.WriteMessages(context.Background(), m)
		w.Close()
		var tooLarge kafka.MessageTooLargeError
		if got := errors.As(err, &tooLarge); got != (limit < size) {
			t.Fatalf("limit %d, size %d: WriteMessages = %v", limit, size, err)
		}
	}
}

// messageSize is kafka-go's unexported Message.totalSize: the size its
// Writer compares with BatchBytes.
func messageSize(m *kafka.Message) int64 {
	n := int64(4 + 1 + 1 + 4 + len(m.Key) + 4 + len(m.Value) + 8)
	n += int64(varintLen(len(m.Headers)))
	for _, h := range m.Headers {
		n += int64(varintLen(len(h.Key)) + len(h.Key) + varintLen(len(h.Value)) + len(h.Value))
	}
	return n
}

func TestConnected(t *testing.T) {
	c, addr := newCluster(t)
	s := newSink(t, Config{Brokers: []string{addr}, MaxAttempts: 1, WriteTimeout: time.Second})
	if !s.Connected() {
		t.Fatal("not connected after New")
	}
	c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Write(ctx, records(testTopic, []string{"a"}, 2)); err == nil {
		t.Fatal("Write succeeded with the broker gone")
	}
	if s.Connected() {
		t.Fatal("connected after a failed write")
	}
}
