package kafka

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/segmentio/kafka-go/compress"
	"github.com/segmentio/kafka-go/compress/snappy"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/restless-stream/ingest"
)

// The benchmarks of this file compare the two Kafka clients the sink could
// be built on (docs/decisions/0001-kafka-client.md): the same batches of 512
// records of 1 KiB, one key (one stream, so one partition, as a lane writes
// them), acks=all, snappy, each batch awaited before the next, to a kfake
// broker in a process of its own (this test binary, run again), so that
// cpu-ns/record is the client's CPU time (user and system) per record and
// nothing of the broker's.

const clientBatch = 512

// clientRecords are the records of one lane's batch.
func clientRecords() []ingest.Record {
	return benchRecords()[:clientBatch]
}

// brokerProcessEnv, set, makes the test binary the broker of the client
// benchmarks instead of running tests: see TestMain.
const brokerProcessEnv = "RESTLESS_KFAKE_PROCESS"

// TestMain runs the tests, or, when the client benchmarks start this binary
// as their broker, serves a one-broker kfake cluster with testTopic (three
// partitions) that acknowledges produce requests and drops their records:
// it prints the broker's address and serves until its standard input closes.
func TestMain(m *testing.M) {
	if os.Getenv(brokerProcessEnv) == "" {
		os.Exit(m.Run())
	}
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, testTopic), kfake.BlackholeProduce())
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println(c.ListenAddrs()[0])
	_, _ = io.Copy(io.Discard, os.Stdin)
	c.Close()
	os.Exit(0)
}

// brokerProcess starts this test binary as a broker (see TestMain) and
// returns its address.
func brokerProcess(b *testing.B) string {
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), brokerProcessEnv+"=1")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		stdin.Close()
		_ = cmd.Wait()
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		b.Fatalf("broker process: %v", err)
	}
	return strings.TrimSpace(line)
}

// cpuTime is the CPU time the process has used so far.
func cpuTime(tb testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// clientBench runs write once per iteration and reports records/s and the
// CPU per record.
func clientBench(b *testing.B, write func(ctx context.Context) error) {
	ctx := context.Background()
	b.ReportAllocs()
	b.SetBytes(clientBatch * 1024)
	cpu0 := cpuTime(b)
	b.ResetTimer()
	for b.Loop() {
		if err := write(ctx); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	n := float64(b.N * clientBatch)
	b.ReportMetric(n/b.Elapsed().Seconds(), "records/s")
	b.ReportMetric(float64(cpuTime(b)-cpu0)/n, "cpu-ns/record")
}

// BenchmarkClientKafkaGo is the sink, on kafka-go's public API, with the
// settings above: with kafka-go's snappy as it comes (klauspost/s2's
// "better" encoder), and with kafka-go's process-wide snappy codec set to
// standard snappy's speed (s2's EncodeSnappy, what franz-go, librdkafka
// and the Java client use), set here for the benchmark only.
func BenchmarkClientKafkaGo(b *testing.B) {
	for _, v := range []struct {
		name  string
		level snappy.Compression
	}{
		{"snappy-default", compress.SnappyCodec.Compression},
		{"snappy-standard", snappy.FasterCompression},
	} {
		b.Run(v.name, func(b *testing.B) {
			was := compress.SnappyCodec.Compression
			compress.SnappyCodec.Compression = v.level
			b.Cleanup(func() { compress.SnappyCodec.Compression = was })
			addr := brokerProcess(b)
			s := newSink(b, Config{Brokers: []string{addr}, Compression: CompressionSnappy, RequiredAcks: RequireAll})
			recs := clientRecords()
			clientBench(b, func(ctx context.Context) error { return s.Write(ctx, recs) })
		})
	}
}

// BenchmarkClientFranzGo is what the sink would do on franz-go: its
// idempotent producer (franz-go's default with acks=all), murmur2 keys as
// the Java client, each Write's records converted to kgo.Records. Three ways
// to hand a batch over: ProduceSync without linger (the first record leaves
// alone, the rest follow in a second request), ProduceSync with 1ms of
// linger, and manual flushing (Produce every record, then Flush).
func BenchmarkClientFranzGo(b *testing.B) {
	for _, v := range []struct {
		name   string
		opts   []kgo.Opt
		manual bool
	}{
		{"linger0", []kgo.Opt{kgo.ProducerLinger(0)}, false},
		{"linger1ms", []kgo.Opt{kgo.ProducerLinger(time.Millisecond)}, false},
		{"flush", []kgo.Opt{kgo.ManualFlushing()}, true},
	} {
		b.Run(v.name, func(b *testing.B) {
			addr := brokerProcess(b)
			opts := append([]kgo.Opt{
				kgo.SeedBrokers(addr),
				kgo.RequiredAcks(kgo.AllISRAcks()),
				kgo.ProducerBatchCompression(kgo.SnappyCompression()),
				kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil)),
				kgo.ProducerBatchMaxBytes(DefaultBatchBytes),
			}, v.opts...)
			cl, err := kgo.NewClient(opts...)
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(cl.Close)
			recs := clientRecords()
			conv := &kgoRecords{}
			clientBench(b, func(ctx context.Context) error {
				krs := conv.fill(recs)
				if !v.manual {
					return cl.ProduceSync(ctx, krs...).FirstErr()
				}
				errs := make([]error, len(krs))
				for i, kr := range krs {
					cl.Produce(ctx, kr, func(_ *kgo.Record, err error) { errs[i] = err })
				}
				if err := cl.Flush(ctx); err != nil {
					return err
				}
				for _, err := range errs {
					if err != nil {
						return err
					}
				}
				return nil
			})
		})
	}
}

// kgoRecords converts a Write's records to kgo.Records with a few
// allocations per Write rather than several per record: one array of
// records, one of headers, one buffer of header values, reused by the next
// Write (franz-go is done with them once the Write's records are
// acknowledged).
type kgoRecords struct {
	recs []kgo.Record
	ptrs []*kgo.Record
	hdrs []kgo.RecordHeader
	vals []byte
}

func (c *kgoRecords) fill(recs []ingest.Record) []*kgo.Record {
	nh, nv := 0, 0
	for i := range recs {
		nh += len(recs[i].Headers)
		for _, h := range recs[i].Headers {
			nv += len(h.Value)
		}
	}
	if cap(c.recs) < len(recs) {
		c.recs = make([]kgo.Record, len(recs))
		c.ptrs = make([]*kgo.Record, len(recs))
	}
	if cap(c.hdrs) < nh {
		c.hdrs = make([]kgo.RecordHeader, nh)
	}
	if cap(c.vals) < nv {
		c.vals = make([]byte, 0, nv)
	}
	hdrs, vals := c.hdrs[:0], c.vals[:0]
	for i := range recs {
		r := &recs[i]
		h0 := len(hdrs)
		for _, h := range r.Headers {
			v0 := len(vals)
			vals = append(vals, h.Value...)
			hdrs = append(hdrs, kgo.RecordHeader{Key: h.Key, Value: vals[v0:len(vals):len(vals)]})
		}
		c.recs[i] = kgo.Record{Topic: r.Dest, Key: r.Key, Value: r.Value, Headers: hdrs[h0:len(hdrs):len(hdrs)]}
		c.ptrs[i] = &c.recs[i]
	}
	return c.ptrs[:len(recs)]
}
