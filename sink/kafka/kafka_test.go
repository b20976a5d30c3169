package kafka

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	kafkago "github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/restless-stream/ingest"
	"github.com/restless-stream/ingest/internal/fielderr"
)

// TestValidate: each mistake is reported as a FieldError at its Go path,
// all of them at once, and New refuses the configuration with them.
func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		cfg    Config
		fields []string
	}{
		{"zero", Config{}, nil},
		{"broker without port", Config{Brokers: []string{"127.0.0.1:9092", "localhost"}}, []string{"Brokers[1]"}},
		{"required acks", Config{RequiredAcks: 7}, []string{"RequiredAcks"}},
		{"compression", Config{Compression: -1}, []string{"Compression"}},
		{"negative partitions", Config{Partitions: -1}, []string{"Partitions"}},
		{"replication factor", Config{ReplicationFactor: 1 << 16}, []string{"ReplicationFactor"}},
		{"negative batch timeout", Config{BatchTimeout: -time.Second}, []string{"BatchTimeout"}},
		{"negative batch bytes", Config{BatchBytes: -1}, []string{"BatchBytes"}},
		{"sasl mechanism", Config{SASL: SASLConfig{Mechanism: "gssapi", Username: "u", Password: "hunter2"}}, []string{"SASL.Mechanism"}},
		{"sasl without credentials", Config{SASL: SASLConfig{Mechanism: "PLAIN"}}, []string{"SASL.Username", "SASL.Password"}},
		{"tls cert without key", Config{TLS: TLSConfig{CertFile: "c.pem"}}, []string{"TLS.KeyFile"}},
		{"tls key without cert", Config{TLS: TLSConfig{KeyFile: "k.pem"}}, []string{"TLS.CertFile"}},
		{"several", Config{Partitions: -1, MaxAttempts: -2, DialTimeout: -1}, []string{"Partitions", "MaxAttempts", "DialTimeout"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if got, others := fielderr.Fields(err); !slices.Equal(got, tt.fields) || others != nil {
				t.Fatalf("Validate() fields %q, want %q: %v", got, tt.fields, err)
			}
			if err != nil && strings.Contains(err.Error(), "hunter2") {
				t.Fatalf("error leaks the password: %v", err)
			}
			if err == nil {
				return
			}
			s, nerr := New(context.Background(), tt.cfg)
			if nerr == nil {
				s.Close(context.Background())
				t.Fatal("New accepted an invalid configuration")
			}
			if got, others := fielderr.Fields(nerr); !slices.Equal(got, tt.fields) || others != nil {
				t.Fatalf("New error fields %q, want %q: %v", got, tt.fields, nerr)
			}
		})
	}
}

// TestNewErrors: what New finds beyond Validate (files, brokers) names the
// field or the brokers, and never the password.
func TestNewErrors(t *testing.T) {
	tests := []struct {
		name  string
		cfg   Config
		field string
		want  string
	}{
		{"tls ca missing", Config{TLS: TLSConfig{CAFile: "/nonexistent/ca.pem"}}, "TLS.CAFile", "ca.pem"},
		{"no broker", Config{Brokers: []string{"127.0.0.1:1"}, DialTimeout: time.Second, SASL: SASLConfig{Mechanism: "plain", Username: "u", Password: "hunter2"}}, "", "reach brokers 127.0.0.1:1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			s, err := New(ctx, tt.cfg)
			if err == nil {
				s.Close(ctx)
				t.Fatal("New succeeded")
			}
			var fe *ingest.FieldError
			if errors.As(err, &fe) != (tt.field != "") || (fe != nil && fe.Field != tt.field) {
				t.Fatalf("New = %v, want a FieldError at %q", err, tt.field)
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

// TestEnums: each constant's name parses back to it, Kafka's numbers and any
// case parse too, "" is the default, and anything else is refused.
func TestEnums(t *testing.T) {
	for _, a := range []RequiredAcks{RequireAll, RequireOne, RequireNone} {
		b, err := a.MarshalText()
		if err != nil {
			t.Fatal(err)
		}
		var back RequiredAcks
		if err := back.UnmarshalText(b); err != nil || back != a || !a.Valid() {
			t.Fatalf("%v: text %q reads back as %v, %v", a, b, back, err)
		}
	}
	for in, want := range map[string]RequiredAcks{"": RequireAll, "ALL": RequireAll, "-1": RequireAll, "1": RequireOne, "0": RequireNone, "None": RequireNone} {
		if got, err := ParseRequiredAcks(in); err != nil || got != want {
			t.Errorf("ParseRequiredAcks(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, c := range []Compression{CompressionSnappy, CompressionNone, CompressionGzip, CompressionLZ4, CompressionZstd} {
		b, err := c.MarshalText()
		if err != nil {
			t.Fatal(err)
		}
		var back Compression
		if err := back.UnmarshalText(b); err != nil || back != c || !c.Valid() {
			t.Fatalf("%v: text %q reads back as %v, %v", c, b, back, err)
		}
		if c.kafkaGo().String() != map[Compression]string{CompressionNone: "uncompressed"}[c] && c.kafkaGo().String() != c.String() {
			t.Errorf("%v is kafka-go's %v", c, c.kafkaGo())
		}
	}
	if got, err := ParseCompression(""); err != nil || got != DefaultCompression {
		t.Errorf(`ParseCompression("") = %v, %v`, got, err)
	}
	if _, err := ParseRequiredAcks("two"); err == nil || !strings.Contains(err.Error(), "all, one, none") {
		t.Errorf("ParseRequiredAcks(two) = %v", err)
	}
	if _, err := ParseCompression("brotli"); err == nil || !strings.Contains(err.Error(), "none, gzip, snappy, lz4, zstd") {
		t.Errorf("ParseCompression(brotli) = %v", err)
	}
	if RequiredAcks(3).Valid() || Compression(5).Valid() || RequiredAcks(3).String() != "RequiredAcks(3)" {
		t.Error("out-of-range values pass as valid")
	}
	if _, err := RequiredAcks(-1).MarshalText(); err == nil {
		t.Error("an invalid RequiredAcks marshals")
	}
	if RequireAll.kafkaGo() != kafkago.RequireAll || RequireOne.kafkaGo() != kafkago.RequireOne || RequireNone.kafkaGo() != kafkago.RequireNone {
		t.Error("acks map to other kafka-go values")
	}
	if DefaultRequiredAcks != RequiredAcks(0) || DefaultCompression != Compression(0) {
		t.Error("the zero values are not the defaults")
	}
}

func TestValidTopic(t *testing.T) {
	for _, ok := range []string{"restless.orders", "a", "A-b_c.9", strings.Repeat("t", 249)} {
		if err := ValidTopic(ok); err != nil {
			t.Errorf("ValidTopic(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"", ".", "..", "a b", "a/b", "ü", strings.Repeat("t", 250)} {
		if err := ValidTopic(bad); err == nil || !strings.Contains(err.Error(), "Kafka topic name") {
			t.Errorf("ValidTopic(%q) = %v", bad, err)
		}
	}
}

// TestWriteDelivers checks, for every codec, that each record arrives once
// with its key, value and headers in order, and that equal keys share a
// partition in write order.
func TestWriteDelivers(t *testing.T) {
	for _, codec := range []Compression{CompressionNone, CompressionGzip, CompressionSnappy, CompressionLZ4, CompressionZstd} {
		t.Run(codec.String(), func(t *testing.T) {
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
	if !strings.Contains(werr[1].Error(), `"nope"`) || !errors.Is(werr[1], kafkago.UnknownTopicOrPartition) || ingest.IsPermanent(werr[1]) {
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
			if !errors.Is(e, kafkago.PolicyViolation) || !strings.Contains(e.Error(), testTopic) {
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

// TestRecordSizeBoundsEncoding: recordSize is the size of the record in
// Kafka's message format v2 (encoded here by franz-go's kmsg, an encoder of
// its own) with the longest timestamp and offset deltas, so no record takes
// more; batchOverhead is the batch header's size.
func TestRecordSizeBoundsEncoding(t *testing.T) {
	hs := func(n int) []ingest.Header {
		var out []ingest.Header
		for i := range n {
			out = append(out, ingest.Header{Key: fmt.Sprintf("header-%d", i), Value: strings.Repeat("v", i*40)})
		}
		return out
	}
	recs := []ingest.Record{
		{},
		{Key: []byte{}, Value: []byte{}},
		{Key: []byte("k"), Value: make([]byte, 1000), Headers: []ingest.Header{{Key: "h", Value: "v"}}},
		{Key: []byte("orders"), Value: make([]byte, 70000), Headers: hs(6)},
		{Value: make([]byte, 1<<20), Headers: hs(200)},
	}
	for i, r := range recs {
		kr := kmsg.Record{
			TimestampDelta64: math.MaxInt64,
			OffsetDelta:      math.MaxInt32,
			Key:              r.Key,
			Value:            r.Value,
		}
		for _, h := range r.Headers {
			kr.Headers = append(kr.Headers, kmsg.Header{Key: h.Key, Value: []byte(h.Value)})
		}
		body := len(kr.AppendTo(nil)) - 1 // Length 0 took one byte
		want := varintLen(body) + body
		if got := recordSize(&r); got != int64(want) {
			t.Errorf("record %d: recordSize = %d, encoded at most %d", i, got, want)
		}
	}
	if n := len((&kmsg.RecordBatch{}).AppendTo(nil)); n != batchOverhead {
		t.Errorf("an empty record batch takes %d bytes, batchOverhead is %d", n, batchOverhead)
	}
}

func TestConnected(t *testing.T) {
	c, addr := newCluster(t)
	s := newSink(t, Config{Brokers: []string{addr}, MaxAttempts: 1, WriteTimeout: time.Second})
	if !s.Connected(context.Background()) {
		t.Fatal("not connected after New")
	}
	c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Write(ctx, records(testTopic, []string{"a"}, 2)); err == nil {
		t.Fatal("Write succeeded with the broker gone")
	}
	if s.Connected(context.Background()) {
		t.Fatal("connected after a failed write")
	}
}
