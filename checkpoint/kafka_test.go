package checkpoint

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"
)

func newKfake(t testing.TB, opts ...kfake.Opt) *kafka.Client {
	t.Helper()
	c, err := kfake.NewCluster(append([]kfake.Opt{kfake.NumBrokers(3)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	tr := &kafka.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	return &kafka.Client{Addr: kafka.TCP(c.ListenAddrs()...), Transport: tr, Timeout: 10 * time.Second}
}

func openKafka(t testing.TB, client *kafka.Client, topic string) *Kafka {
	t.Helper()
	return openKafkaTail(t, client, topic, 50*time.Millisecond)
}

// openKafkaTail opens a store that reads in the background every tail
// (negative: never, as a replica paused or cut off would not).
func openKafkaTail(t testing.TB, client *kafka.Client, topic string, tail time.Duration) *Kafka {
	t.Helper()
	k, err := NewKafka(t.Context(), KafkaConfig{Client: client, Topic: topic, TailInterval: tail})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = k.Close() })
	return k
}

func TestKafka(t *testing.T) {
	client := newKfake(t)
	storeConformance(t, openKafka(t, client, "ckpt"))
	claimerConformance(t, openKafka(t, client, "claims"))
	// A second store on the topic (another replica) reads what the first
	// wrote.
	if got, ok, err := openKafka(t, client, "ckpt").Load(t.Context(), "b-2"); err != nil || !ok || got != "two" {
		t.Errorf("second store Load = %q, %v, %v", got, ok, err)
	}
}

func TestKafkaTopic(t *testing.T) {
	client := newKfake(t)
	ctx := t.Context()
	k, err := NewKafka(ctx, KafkaConfig{Client: client})
	if err != nil {
		t.Fatal(err)
	}
	if k.topic != DefaultKafkaTopic || k.parts != 1 {
		t.Errorf("topic %q with %d partitions", k.topic, k.parts)
	}
	many, err := NewKafka(ctx, KafkaConfig{Client: client, Topic: "many", Partitions: 5})
	if err != nil {
		t.Fatal(err)
	}
	if many.parts != 5 {
		t.Errorf("%d partitions, want 5", many.parts)
	}
	claimerConformance(t, many)
	// A topic that exists without compaction is refused, naming the policy.
	resp, err := client.CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{{
		Topic: "plain", NumPartitions: 1, ReplicationFactor: 1,
		ConfigEntries: []kafka.ConfigEntry{{ConfigName: "cleanup.policy", ConfigValue: "delete"}},
	}}})
	if err != nil || resp.Errors["plain"] != nil {
		t.Fatalf("create: %v %v", err, resp)
	}
	if _, err := NewKafka(ctx, KafkaConfig{Client: client, Topic: "plain"}); err == nil || !strings.Contains(err.Error(), `cleanup.policy="delete"`) {
		t.Errorf("a delete-policy topic: %v", err)
	}
	if _, err := NewKafka(ctx, KafkaConfig{}); err == nil {
		t.Error("no client accepted")
	}
	if _, err := NewKafka(ctx, KafkaConfig{Client: client, Partitions: -1}); err == nil {
		t.Error("-1 partitions accepted")
	}
}

// TestKafkaStaleSaveAcrossReplicas: a replica that lost the stream does
// not know it and saves after the new owner's claim. Its record lands, under
// its own older key, and no reader takes it.
func TestKafkaStaleSaveAcrossReplicas(t *testing.T) {
	client := newKfake(t)
	ctx := t.Context()
	a, b := openKafkaTail(t, client, "ckpt", -1), openKafka(t, client, "ckpt")
	ca, err := a.Claim(ctx, "orders", "a/1")
	if err != nil {
		t.Fatal(err)
	}
	if err := ca.Save(ctx, "orders", "10"); err != nil {
		t.Fatal(err)
	}
	cb, err := b.Claim(ctx, "orders", "b/2")
	if err != nil {
		t.Fatal(err)
	}
	if got, _, _ := cb.Load(ctx, "orders"); got != "10" {
		t.Fatalf("b resumes from %q", got)
	}
	// a has read nothing since: its save is written, and ignored.
	if err := ca.Save(ctx, "orders", "11"); err != nil {
		t.Fatalf("stale save: %v", err)
	}
	for _, s := range []*Kafka{b, openKafka(t, client, "ckpt")} {
		if got, _, err := s.Load(ctx, "orders"); err != nil || got != "10" {
			t.Errorf("Load = %q, %v; want 10 (the stale save ignored)", got, err)
		}
	}
	// Once a has read the newer claim, it refuses before writing.
	if _, _, err := a.Load(ctx, "orders"); err != nil {
		t.Fatal(err)
	}
	if err := ca.Save(ctx, "orders", "12"); !errors.Is(err, ErrFenced) {
		t.Errorf("Save after reading the newer claim = %v", err)
	}
	if err := cb.Save(ctx, "orders", "13"); err != nil {
		t.Fatal(err)
	}
	if got, _, _ := openKafka(t, client, "ckpt").Load(ctx, "orders"); got != "13" {
		t.Errorf("Load = %q; want 13", got)
	}
}

// TestKafkaClaimAdoptsRacingSave: the old owner's last save lands after the
// new owner read the topic but before its claim. The save was made while
// the old owner still owned the stream, so it stands: the claim adopts it.
func TestKafkaClaimAdoptsRacingSave(t *testing.T) {
	client := newKfake(t)
	ctx := t.Context()
	a, b := openKafka(t, client, "ckpt"), openKafka(t, client, "ckpt")
	ca, err := a.Claim(ctx, "orders", "a/1")
	if err != nil {
		t.Fatal(err)
	}
	if err := ca.Save(ctx, "orders", "5"); err != nil {
		t.Fatal(err)
	}
	b.claimHook = func() {
		if err := ca.Save(ctx, "orders", "6"); err != nil {
			t.Error(err)
		}
	}
	cb, err := b.Claim(ctx, "orders", "b/2")
	if err != nil {
		t.Fatal(err)
	}
	if got, _, _ := cb.Load(ctx, "orders"); got != "6" {
		t.Errorf("claim resumes from %q; want the racing save 6", got)
	}
	if got, _, _ := openKafka(t, client, "ckpt").Load(ctx, "orders"); got != "6" {
		t.Errorf("a new reader sees %q; want 6", got)
	}
}

// TestKafkaConcurrentClaims: two replicas claiming the same epoch at once
// (a coordination failure) cannot both win.
func TestKafkaConcurrentClaims(t *testing.T) {
	client := newKfake(t)
	ctx := t.Context()
	a, b := openKafka(t, client, "ckpt"), openKafka(t, client, "ckpt")
	var cb *Claim
	var errB error
	a.claimHook = func() {
		a.claimHook = nil
		cb, errB = b.Claim(ctx, "orders", "b/1")
	}
	ca, errA := a.Claim(ctx, "orders", "a/1")
	if errB != nil || cb == nil {
		t.Fatalf("b's claim: %v", errB)
	}
	if !errors.Is(errA, ErrFenced) || ca != nil {
		t.Fatalf("a's claim of the same epoch = %v, %v; want ErrFenced", ca, errA)
	}
	if err := cb.Save(ctx, "orders", "1"); err != nil {
		t.Fatal(err)
	}
}

// TestKafkaCompaction runs the broker's compaction over stale records and
// tombstones, and reads the topic afresh.
func TestKafkaCompaction(t *testing.T) {
	client := newKfake(t, kfake.BrokerConfigs(map[string]string{"log.cleaner.backoff.ms": "20"}))
	ctx := t.Context()
	a, b := openKafkaTail(t, client, "ckpt", -1), openKafka(t, client, "ckpt")
	ca, err := a.Claim(ctx, "orders", "a/1")
	if err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		if err := ca.Save(ctx, "orders", strconv.Itoa(i)); err != nil {
			t.Fatal(err)
		}
	}
	cb, err := b.Claim(ctx, "orders", "b/2")
	if err != nil {
		t.Fatal(err)
	}
	// The stale owner writes last, many times, under its old key.
	for i := 100; i < 120; i++ {
		if err := ca.Save(ctx, "orders", strconv.Itoa(i)); err != nil {
			t.Fatal(err)
		}
	}
	// Another stream's save ends the partition, so that compaction (which
	// keeps the last batch) reaches every record of "orders".
	other, err := b.Claim(ctx, "other", "b/2")
	if err != nil {
		t.Fatal(err)
	}
	if err := other.Save(ctx, "other", "x"); err != nil {
		t.Fatal(err)
	}
	// 45 records written; compaction leaves one per key (orders/1,
	// orders/2, other/1) and perhaps the tombstone and the last batch.
	deadline := time.Now().Add(10 * time.Second)
	for n := countRecords(t, client, "ckpt"); n > 6; n = countRecords(t, client, "ckpt") {
		if time.Now().After(deadline) {
			t.Fatalf("no compaction: %d records", n)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if got, _, err := openKafka(t, client, "ckpt").Load(ctx, "orders"); err != nil || got != "19" {
		t.Errorf("after compaction Load = %q, %v; want 19, the claim's", got, err)
	}
	if err := cb.Save(ctx, "orders", "20"); err != nil {
		t.Fatal(err)
	}
	if got, _, _ := openKafka(t, client, "ckpt").Load(ctx, "orders"); got != "20" {
		t.Errorf("Load = %q; want 20", got)
	}
}

func countRecords(t *testing.T, client *kafka.Client, topic string) int {
	t.Helper()
	n := 0
	for off := int64(0); ; {
		resp, err := client.Fetch(t.Context(), &kafka.FetchRequest{Topic: topic, Partition: 0, Offset: off, MinBytes: 1, MaxBytes: 1 << 20, MaxWait: 50 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		got := 0
		if errors.Is(resp.Error, kafka.OffsetOutOfRange) && resp.LogStartOffset > off {
			off = resp.LogStartOffset // compaction emptied the first batches
			continue
		}
		if resp.Error != nil {
			t.Fatal(resp.Error)
		}
		for {
			r, err := resp.Records.ReadRecord()
			if err != nil {
				if !errors.Is(err, io.EOF) {
					t.Fatal(err)
				}
				break
			}
			if r.Offset >= off {
				n++
				got++
				off = r.Offset + 1
			}
		}
		if got == 0 || off >= resp.HighWatermark {
			return n
		}
	}
}

// TestKafkaResolutionSurvivesCompaction: for random histories of claims,
// saves (stale ones included, landing late) and tombstones, what a reader
// resolves from the whole log equals what it resolves from the log as
// compaction leaves it (the last record of every key, tombstones dropped
// or kept), and equals the last save made under the newest claim.
func TestKafkaResolutionSurvivesCompaction(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for iter := range 3000 {
		var log []rawRecord
		k := newKafkaState()
		mk := func(epoch uint64, holder string, cursor *string) {
			rec := k.record("s", kafkaValue{Epoch: epoch, Holder: holder, Cursor: cursor})
			key, _ := readBytes(rec.Key, 512)
			value, _ := readBytes(rec.Value, maxKafkaValue)
			log = append(log, rawRecord{key: key, value: value})
		}
		var (
			top    uint64
			want   *string
			epochs []uint64
		)
		for step := range 1 + r.IntN(30) {
			switch x := r.IntN(10); {
			case x < 2 || top == 0: // a claim carries the newest cursor
				top++
				epochs = append(epochs, top)
				mk(top, fmt.Sprintf("h%d", top), want)
				// and tombstones the older keys
				if r.IntN(2) == 0 {
					for _, e := range epochs[:len(epochs)-1] {
						log = append(log, rawRecord{key: []byte(kafkaKey("s", e))})
					}
				}
			case x < 7: // the owner saves
				c := strconv.Itoa(step)
				mk(top, fmt.Sprintf("h%d", top), &c)
				want = &c
			default: // a fenced owner saves late
				if top > 1 {
					e := epochs[r.IntN(len(epochs)-1)]
					c := "stale" + strconv.Itoa(step)
					mk(e, fmt.Sprintf("h%d", e), &c)
				}
			}
		}
		full := resolve(t, log)
		wantCursor := ""
		if want != nil {
			wantCursor = *want
		}
		if full.cursor != wantCursor || full.found != (want != nil) || full.epoch != top {
			t.Fatalf("iteration %d: resolved %q (found %v, epoch %d), want %q at epoch %d", iter, full.cursor, full.found, full.epoch, wantCursor, top)
		}
		for _, dropTombstones := range []bool{false, true} {
			c := resolve(t, compact(log, dropTombstones))
			if c.cursor != full.cursor || c.found != full.found || c.epoch != full.epoch {
				t.Fatalf("iteration %d: after compaction %q (found %v, epoch %d), before %q (found %v, epoch %d)", iter, c.cursor, c.found, c.epoch, full.cursor, full.found, full.epoch)
			}
		}
	}
}

// rawRecord is a record of a simulated log; value nil is a tombstone.
type rawRecord struct {
	key, value []byte
}

func resolve(t *testing.T, log []rawRecord) kafkaStream {
	t.Helper()
	k := newKafkaState()
	for i, r := range log {
		rec := kafka.Record{Offset: int64(i), Key: kafka.NewBytes(r.key)}
		if r.value != nil {
			rec.Value = kafka.NewBytes(r.value)
		}
		if err := k.apply(&rec); err != nil {
			t.Fatal(err)
		}
	}
	if st := k.streams["s"]; st != nil {
		return *st
	}
	return kafkaStream{}
}

// compact keeps the last record of every key, in log order.
func compact(log []rawRecord, dropTombstones bool) []rawRecord {
	last := map[string]int{}
	for i, r := range log {
		last[string(r.key)] = i
	}
	var out []rawRecord
	for i, r := range log {
		if last[string(r.key)] != i || (dropTombstones && r.value == nil) {
			continue
		}
		out = append(out, r)
	}
	return out
}

func BenchmarkKafkaClaimSave(b *testing.B) {
	client := newKfake(b)
	k := openKafka(b, client, "ckpt")
	c, err := k.Claim(context.Background(), "bench", "a/1")
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := range b.N {
		if err := c.Save(context.Background(), "bench", strconv.Itoa(i)); err != nil {
			b.Fatal(err)
		}
	}
}
