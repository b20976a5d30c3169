package reliability

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/restless-stream/ingest/internal/testenv"
	"github.com/restless-stream/ingest/pipeline"
	filesink "github.com/restless-stream/ingest/sink/file"
)

// landed is one record read back from a broker.
type landed struct {
	dest    string
	headers map[string]string
	value   []byte
}

func (l landed) stream() string { return l.headers[pipeline.HeaderStream] }
func (l landed) id() string     { return l.headers[pipeline.HeaderEventID] }

// sharedNATS is the JetStream server every machine runs.
const sharedNATS = testenv.NATSURL

// jsStreamName returns a JetStream stream name and subject base unique to
// this test, and deletes the stream when the test ends.
func jsStreamName(t *testing.T, url string) (stream, subjectBase string) {
	t.Helper()
	stream = fmt.Sprintf("REL_%s_%d", strings.ToUpper(strings.NewReplacer("/", "_", "-", "_").Replace(t.Name())), time.Now().UnixNano()%1_000_000_000)
	subjectBase = strings.ToLower(stream)
	t.Cleanup(func() {
		nc, err := nats.Connect(url, nats.Timeout(5*time.Second))
		if err != nil {
			return
		}
		defer nc.Close()
		js, err := jetstream.New(nc)
		if err != nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = js.DeleteStream(ctx, stream)
	})
	return stream, subjectBase
}

// readJetStream reads every message of a JetStream stream, in order.
func readJetStream(t *testing.T, url, stream string, opts ...nats.Option) []landed {
	t.Helper()
	nc, err := nats.Connect(url, append([]nats.Option{nats.Timeout(5 * time.Second)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	// Right after a cluster's nodes restart, JetStream may answer 503 or
	// not at all for a while: retry until the deadline.
	var (
		total int
		cons  jetstream.Consumer
	)
	for {
		s, err := js.Stream(ctx, stream)
		var info *jetstream.StreamInfo
		if err == nil {
			info, err = s.Info(ctx)
		}
		if err == nil {
			total = int(info.State.Msgs)
			cons, err = js.OrderedConsumer(ctx, stream, jetstream.OrderedConsumerConfig{})
		}
		if err == nil {
			break
		}
		if !notReadyYet(err) || ctx.Err() != nil {
			t.Fatalf("stream %s: %v", stream, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	out := make([]landed, 0, total)
	for len(out) < total {
		batch, err := cons.Fetch(1000, jetstream.FetchMaxWait(2*time.Second))
		if notReadyYet(err) && ctx.Err() == nil {
			// In a cluster, the new consumer's interest may not have
			// reached this client's server yet.
			time.Sleep(100 * time.Millisecond)
			continue
		}
		if err != nil {
			t.Fatalf("fetch from %s: %v", stream, err)
		}
		n := 0
		for m := range batch.Messages() {
			n++
			h := map[string]string{}
			for k := range m.Headers() {
				h[k] = m.Headers().Get(k)
			}
			out = append(out, landed{dest: m.Subject(), headers: h, value: m.Data()})
		}
		if err := batch.Error(); notReadyYet(err) && ctx.Err() == nil {
			time.Sleep(100 * time.Millisecond)
			continue
		} else if err != nil {
			t.Fatalf("fetch from %s: %v", stream, err)
		}
		if n == 0 && ctx.Err() != nil {
			t.Fatalf("read %d of %d messages of %s", len(out), total, stream)
		}
	}
	return out
}

// readKafka reads every record of topics from a Kafka broker.
func readKafka(t *testing.T, brokers []string, topics []string, opts ...kgo.Opt) []landed {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topics...),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart())}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, topics...)
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	ends.Each(func(o kadm.ListedOffset) {
		if o.Err != nil {
			t.Errorf("end offset of %s/%d: %v", o.Topic, o.Partition, o.Err)
		}
		total += o.Offset
	})
	var out []landed
	for int64(len(out)) < total {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %d of %d records", len(out), total)
		}
		fs.EachError(func(topic string, p int32, err error) { t.Errorf("fetch %s/%d: %v", topic, p, err) })
		fs.EachRecord(func(r *kgo.Record) {
			h := map[string]string{}
			for _, x := range r.Headers {
				h[x.Key] = string(x.Value)
			}
			out = append(out, landed{dest: r.Topic, headers: h, value: r.Value})
		})
	}
	return out
}

// readFileSink reads the lines of a file sink.
func readFileSink(t *testing.T, path string) []landed {
	t.Helper()
	lines, torn, err := filesink.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if torn != 0 {
		t.Errorf("%s: %d torn lines", path, torn)
	}
	out := make([]landed, len(lines))
	for i, l := range lines {
		out[i] = landed{dest: l.Destination, headers: l.Headers, value: l.Value}
	}
	return out
}

// tally is what the delivery of one stream came to.
type tally struct {
	sent, inBroker, lost, dup int64
	outOfOrder                int
	unexpected                int
	firstLost                 string
	firstUnexpected           string
}

func (a *tally) add(b tally) {
	a.sent += b.sent
	a.inBroker += b.inBroker
	a.lost += b.lost
	a.dup += b.dup
	a.outOfOrder += b.outOfOrder
	a.unexpected += b.unexpected
}

// count compares the records of one stream (in broker order) with the ids
// the upstream offered (in order): lost = offered − distinct landed,
// duplicated = landed − distinct landed, and the first landing of each id
// must follow the offered order.
func count(expected []string, got []landed) tally {
	pos := make(map[string]int, len(expected))
	for i, id := range expected {
		pos[id] = i
	}
	tl := tally{sent: int64(len(expected)), inBroker: int64(len(got))}
	seen := make(map[string]bool, len(got))
	last := -1
	for _, r := range got {
		id := r.id()
		p, ok := pos[id]
		if !ok {
			if tl.unexpected == 0 {
				tl.firstUnexpected = fmt.Sprintf("id %q: %.300s", id, r.value)
			}
			tl.unexpected++
			continue
		}
		if seen[id] {
			tl.dup++
			continue
		}
		seen[id] = true
		if p < last {
			tl.outOfOrder++
		}
		last = p
	}
	for _, id := range expected {
		if !seen[id] {
			if tl.lost == 0 {
				tl.firstLost = id
			}
			tl.lost++
		}
	}
	return tl
}

// byStream groups records by their restless-stream header.
func byStream(recs []landed) map[string][]landed {
	out := map[string][]landed{}
	for _, r := range recs {
		out[r.stream()] = append(out[r.stream()], r)
	}
	return out
}

// checkExactlyOnce fails t unless tl is every event once, in order.
func checkExactlyOnce(t *testing.T, name string, tl tally) {
	t.Helper()
	if tl.lost != 0 || tl.dup != 0 || tl.outOfOrder != 0 || tl.unexpected != 0 {
		t.Errorf("%s: offered %d, in broker %d: %d lost (first %s), %d duplicated, %d out of order, %d unexpected (first %s); want every event exactly once, in order",
			name, tl.sent, tl.inBroker, tl.lost, tl.firstLost, tl.dup, tl.outOfOrder, tl.unexpected, tl.firstUnexpected)
	}
}

// jsCount returns how many messages a JetStream stream on the shared server
// holds (0 when it does not exist yet).
func jsCount(t *testing.T, stream string) int64 {
	t.Helper()
	nc, err := nats.Connect(sharedNATS, nats.Timeout(5*time.Second))
	if err != nil {
		return 0
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return 0
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, stream)
	if err != nil {
		return 0
	}
	info, err := s.Info(ctx)
	if err != nil {
		return 0
	}
	return int64(info.State.Msgs)
}

// kafkaCount returns the sum of the end offsets of topics (0 on error).
func kafkaCount(t *testing.T, broker string, topics []string) int64 {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(broker))
	if err != nil {
		return 0
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, topics...)
	if err != nil {
		return 0
	}
	var n int64
	ends.Each(func(o kadm.ListedOffset) {
		if o.Err == nil {
			n += o.Offset
		}
	})
	return n
}

// notReadyYet reports whether err is JetStream not answering yet: no
// responder, or a 503 while a restarted cluster elects its leaders.
func notReadyYet(err error) bool {
	var api *jetstream.APIError
	return errors.Is(err, nats.ErrNoResponders) || (errors.As(err, &api) && api.Code == 503)
}
