package checkpoint

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"
)

// DefaultKafkaTopic is the topic of checkpoint.type kafka unless
// checkpoint.kafka_topic names another.
const DefaultKafkaTopic = "restless_ingest_checkpoints"

// KafkaConfig configures a [Kafka] checkpoint store.
type KafkaConfig struct {
	// Client reaches the cluster: Addr holds the seed brokers, Transport any
	// TLS or SASL settings (nil: kafka.DefaultTransport). Required.
	Client *kafka.Client
	// Topic holds the checkpoints. Default DefaultKafkaTopic. It is created
	// when missing, with cleanup.policy=compact; an existing topic must
	// have exactly that policy (with "delete" too, retention would drop the
	// checkpoints of quiet streams).
	Topic string
	// Partitions of a topic this store creates. Default 1. The records of
	// one stream always go to one partition, chosen by a hash of its name.
	Partitions int
	// ReplicationFactor of a topic this store creates. Default -1: the
	// broker's default.replication.factor.
	ReplicationFactor int
	// TailInterval is how often the store reads what was written since it
	// last read, in the background, so that a claim (when a stream is
	// assigned) only has that much left to read. Default 1s; negative: only
	// claims and Load read.
	TailInterval time.Duration
}

// Kafka is a Store on a compacted Kafka topic, for Kafka shops with several
// replicas: the checkpoints live in the broker the events go to.
//
// Records are keyed by stream and epoch ("orders/7"), not by stream alone.
// A claim ([Kafka.Claim]) appends a record under the next epoch, and the
// holder of that claim writes every save under its own key; a reader takes,
// for each stream, the latest record of its highest epoch. A replica that
// lost the stream can only write under its own, older key, which no reader
// takes, however late its record comes, and compaction keeps the newest
// record of every key, so it cannot make a stale record replace a newer
// one either: the newer one is under another key. After a claim, the
// claimer writes tombstones for the stream's older keys, so that compaction
// drops them. Before writing, a save is also refused when this store has
// already read a newer claim of the stream.
//
// The store reads the topic up to its end (the partition of the stream)
// before every claim and every Load, and keeps what it read in memory: one
// entry per stream. It also reads in the background every TailInterval, so
// that a claim has little left to read however much the other replicas
// saved: Kafka Connect's offset store does the same. Save without a claim
// claims the stream once per store (a single process needs no more).
type Kafka struct {
	client *kafka.Client
	topic  string
	parts  int

	mu      sync.Mutex // held while reading the topic
	next    []int64    // next offset to read, per partition
	streams map[string]*kafkaStream

	// epochs is the highest epoch read of each stream, for saves to check
	// without waiting for a read in progress.
	epochsMu sync.Mutex
	epochs   map[string]uint64

	implicitMu sync.Mutex        // held while making an implicit claim
	implicit   map[string]*Claim // the claims of Save without a claim

	closed atomic.Bool
	stop   chan struct{}
	wg     sync.WaitGroup

	// claimHook, in tests, runs between a claim's first read and its
	// record.
	claimHook func()
}

var _ Claimer = (*Kafka)(nil)

// kafkaStream is what the topic says about one stream.
type kafkaStream struct {
	epoch   uint64 // the highest epoch read
	holder  string
	cursor  string
	found   bool
	corrupt error // the highest epoch's latest record cannot be read
	// live are the epochs whose key holds a record (no tombstone after it).
	live map[uint64]bool
	// first is the holder of each epoch's first record.
	first map[uint64]string
	// before is the state just before the highest epoch's first record.
	beforeCursor string
	beforeDoc    []byte
	beforeFound  bool
	doc          []byte // saved with cursor; nil when none
}

type kafkaValue struct {
	V      int       `json:"v"`
	Epoch  uint64    `json:"epoch"`
	Holder string    `json:"holder"`
	Cursor *string   `json:"cursor,omitempty"`
	Claim  bool      `json:"claim,omitempty"`
	At     time.Time `json:"at"`
	// Document is the document saved with Cursor (SaveDocument); absent
	// when none was, and in every value written before documents existed.
	Document json.RawMessage `json:"document,omitempty"`
}

const (
	maxKafkaValue = maxCursorLen + maxHolderLen + 1024 + MaxDocumentBytes
	maxKafkaKey   = maxNameLen + 21 // "/" and a uint64
)

func kafkaKey(stream string, epoch uint64) string {
	return stream + "/" + strconv.FormatUint(epoch, 10)
}

func parseKafkaKey(key string) (string, uint64, bool) {
	stream, e, ok := strings.Cut(key, "/")
	if !ok || ValidateStream(stream) != nil {
		return "", 0, false
	}
	epoch, err := strconv.ParseUint(e, 10, 64)
	if err != nil || epoch == 0 {
		return "", 0, false
	}
	return stream, epoch, true
}

// NewKafka opens the checkpoint topic, creating it when missing.
func NewKafka(ctx context.Context, cfg KafkaConfig) (*Kafka, error) {
	if cfg.Client == nil || cfg.Client.Addr == nil {
		return nil, errors.New("checkpoint: kafka: no client address")
	}
	if cfg.Topic == "" {
		cfg.Topic = DefaultKafkaTopic
	}
	if cfg.Partitions == 0 {
		cfg.Partitions = 1
	}
	if cfg.ReplicationFactor == 0 {
		cfg.ReplicationFactor = -1
	}
	if cfg.Partitions < 1 || cfg.Partitions > 1000 {
		return nil, fmt.Errorf("checkpoint: kafka: %d partitions is outside [1, 1000]", cfg.Partitions)
	}
	if cfg.TailInterval == 0 {
		cfg.TailInterval = time.Second
	}
	k := newKafkaState()
	k.client, k.topic = cfg.Client, cfg.Topic
	parts, err := k.ensureTopic(ctx, cfg)
	if err != nil {
		return nil, err
	}
	k.parts = parts
	k.next = make([]int64, parts)
	if cfg.TailInterval > 0 {
		k.wg.Go(func() { k.tail(cfg.TailInterval) })
	}
	return k, nil
}

func newKafkaState() *Kafka {
	return &Kafka{streams: map[string]*kafkaStream{}, epochs: map[string]uint64{}, implicit: map[string]*Claim{}, stop: make(chan struct{})}
}

// tail reads every partition to its end every interval until Close. A
// failed read is retried at the next interval; claims and Load report their
// own.
func (k *Kafka) tail(interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-k.stop:
			return
		case <-t.C:
		}
		for p := range k.parts {
			ctx, cancel := context.WithTimeout(context.Background(), 4*interval)
			go func() {
				select {
				case <-k.stop:
					cancel()
				case <-ctx.Done():
				}
			}()
			k.mu.Lock()
			_ = k.catchUp(ctx, p)
			k.mu.Unlock()
			cancel()
		}
	}
}

func (k *Kafka) ensureTopic(ctx context.Context, cfg KafkaConfig) (int, error) {
	created, err := k.client.CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{{
		Topic:             k.topic,
		NumPartitions:     cfg.Partitions,
		ReplicationFactor: cfg.ReplicationFactor,
		ConfigEntries:     []kafka.ConfigEntry{{ConfigName: "cleanup.policy", ConfigValue: "compact"}},
	}}})
	if err != nil {
		return 0, fmt.Errorf("checkpoint: kafka: create topic %q: %w", k.topic, err)
	}
	if err := created.Errors[k.topic]; err != nil && !errors.Is(err, kafka.TopicAlreadyExists) {
		return 0, fmt.Errorf("checkpoint: kafka: create topic %q: %w", k.topic, err)
	}
	desc, err := k.client.DescribeConfigs(ctx, &kafka.DescribeConfigsRequest{Resources: []kafka.DescribeConfigRequestResource{{
		ResourceType: kafka.ResourceTypeTopic, ResourceName: k.topic, ConfigNames: []string{"cleanup.policy"},
	}}})
	if err != nil {
		return 0, fmt.Errorf("checkpoint: kafka: topic %q: describe configs: %w", k.topic, err)
	}
	policy := ""
	for _, r := range desc.Resources {
		if r.Error != nil {
			return 0, fmt.Errorf("checkpoint: kafka: topic %q: describe configs: %w", k.topic, r.Error)
		}
		for _, e := range r.ConfigEntries {
			if e.ConfigName == "cleanup.policy" {
				policy = e.ConfigValue
			}
		}
	}
	if policy != "compact" {
		return 0, fmt.Errorf("checkpoint: kafka: topic %q has cleanup.policy=%q, checkpoints need \"compact\" (change the topic, or name another in checkpoint.kafka_topic)", k.topic, policy)
	}
	meta, err := k.client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{k.topic}})
	if err != nil {
		return 0, fmt.Errorf("checkpoint: kafka: topic %q: metadata: %w", k.topic, err)
	}
	for _, t := range meta.Topics {
		if t.Name != k.topic {
			continue
		}
		if t.Error != nil {
			return 0, fmt.Errorf("checkpoint: kafka: topic %q: metadata: %w", k.topic, t.Error)
		}
		if len(t.Partitions) == 0 {
			break
		}
		for i, p := range t.Partitions {
			if p.ID != i && !hasPartition(t.Partitions, i) {
				return 0, fmt.Errorf("checkpoint: kafka: topic %q: partition %d missing from metadata", k.topic, i)
			}
		}
		return len(t.Partitions), nil
	}
	return 0, fmt.Errorf("checkpoint: kafka: topic %q: no partitions in metadata", k.topic)
}

func hasPartition(ps []kafka.Partition, id int) bool {
	for _, p := range ps {
		if p.ID == id {
			return true
		}
	}
	return false
}

func (k *Kafka) partition(stream string) int {
	h := fnv.New32a()
	h.Write([]byte(stream))
	return int(h.Sum32() % uint32(k.parts))
}

// catchUp reads partition p up to the end it has now. The caller holds mu.
func (k *Kafka) catchUp(ctx context.Context, p int) error {
	offs, err := k.client.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{
		k.topic: {kafka.FirstOffsetOf(p), kafka.LastOffsetOf(p)},
	}})
	if err != nil {
		return fmt.Errorf("checkpoint: kafka: topic %q partition %d: list offsets: %w", k.topic, p, err)
	}
	var first, end int64 = -1, -1
	for _, po := range offs.Topics[k.topic] {
		if po.Partition != p {
			continue
		}
		if po.Error != nil {
			return fmt.Errorf("checkpoint: kafka: topic %q partition %d: list offsets: %w", k.topic, p, po.Error)
		}
		first, end = po.FirstOffset, po.LastOffset
	}
	if end < 0 {
		return fmt.Errorf("checkpoint: kafka: topic %q partition %d: no end offset", k.topic, p)
	}
	if k.next[p] < first {
		// Retention removed what was never read (a topic that was
		// compacted with delete too, or deleted records).
		k.next[p] = first
	}
	for empty := 0; k.next[p] < end; {
		resp, err := k.client.Fetch(ctx, &kafka.FetchRequest{
			Topic: k.topic, Partition: p, Offset: k.next[p],
			MinBytes: 1, MaxBytes: 4 << 20, MaxWait: 100 * time.Millisecond,
		})
		if err != nil {
			return fmt.Errorf("checkpoint: kafka: topic %q partition %d: fetch at %d: %w", k.topic, p, k.next[p], err)
		}
		if resp.Error != nil {
			if errors.Is(resp.Error, kafka.OffsetOutOfRange) && resp.LogStartOffset > k.next[p] {
				k.next[p] = resp.LogStartOffset
				continue
			}
			return fmt.Errorf("checkpoint: kafka: topic %q partition %d: fetch at %d: %w", k.topic, p, k.next[p], resp.Error)
		}
		read := 0
		for {
			r, err := resp.Records.ReadRecord()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return fmt.Errorf("checkpoint: kafka: topic %q partition %d: read at %d: %w", k.topic, p, k.next[p], err)
			}
			if r.Offset < k.next[p] {
				continue // a batch may start before the offset asked for
			}
			if err := k.apply(r); err != nil {
				return fmt.Errorf("checkpoint: kafka: topic %q partition %d offset %d: %w", k.topic, p, r.Offset, err)
			}
			k.next[p] = r.Offset + 1
			read++
		}
		if read == 0 {
			// Offsets up to the high watermark that hold no record we
			// can read (control records, or a compaction gap at the end).
			if empty++; empty > 3 {
				k.next[p] = max(k.next[p], min(end, resp.HighWatermark))
				if k.next[p] < end {
					return fmt.Errorf("checkpoint: kafka: topic %q partition %d: no records between offsets %d and %d", k.topic, p, k.next[p], end)
				}
			}
		}
	}
	return nil
}

// apply takes one record into the per-stream state. Records that are not
// ours are skipped; only a failure to read the record itself is an error.
func (k *Kafka) apply(r *kafka.Record) error {
	if r.Key == nil || r.Key.Len() > maxKafkaKey {
		return nil // not ours: our keys are a stream name, "/" and an epoch
	}
	key, err := readBytes(r.Key, maxKafkaKey)
	if err != nil {
		return err
	}
	stream, epoch, ok := parseKafkaKey(string(key))
	if !ok {
		return nil
	}
	st := k.streams[stream]
	if st == nil {
		st = &kafkaStream{live: map[uint64]bool{}, first: map[uint64]string{}}
		k.streams[stream] = st
	}
	if r.Value == nil {
		delete(st.live, epoch) // a tombstone: only compaction cares
		return nil
	}
	var v kafkaValue
	raw, err := readBytes(r.Value, maxKafkaValue)
	if err == nil {
		err = json.Unmarshal(raw, &v)
	}
	if err == nil && (v.Epoch != epoch || len(v.Holder) > maxHolderLen || (v.Cursor != nil && validateCursor(stream, *v.Cursor) != nil)) {
		err = errors.New("value does not match its key or is out of range")
	}
	st.live[epoch] = true
	if epoch < st.epoch {
		return nil // a save or claim of an owner that was since fenced
	}
	if err != nil {
		if epoch > st.epoch {
			st.beforeCursor, st.beforeDoc, st.beforeFound = st.cursor, st.doc, st.found
			st.epoch = epoch
		}
		st.corrupt = err
		return nil
	}
	if _, seen := st.first[epoch]; !seen {
		st.first[epoch] = v.Holder
	}
	if epoch > st.epoch {
		st.beforeCursor, st.beforeDoc, st.beforeFound = st.cursor, st.doc, st.found
		st.epoch = epoch
		k.epochsMu.Lock()
		k.epochs[stream] = epoch
		k.epochsMu.Unlock()
		// Keep the first holders of the newest epochs only.
		for e := range st.first {
			if e+16 < epoch {
				delete(st.first, e)
			}
		}
	}
	st.holder, st.corrupt = v.Holder, nil
	if v.Cursor != nil {
		st.cursor, st.found = *v.Cursor, true
	} else {
		st.cursor, st.found = "", false
	}
	st.doc = nil
	if len(v.Document) > 0 {
		st.doc = v.Document
	}
	return nil
}

func readBytes(b kafka.Bytes, limit int) ([]byte, error) {
	if n := b.Len(); n > limit {
		return nil, fmt.Errorf("record field of %d bytes", n)
	}
	return io.ReadAll(io.LimitReader(b, int64(limit)+1))
}

// produce appends records to partition p and returns the offset of the
// first.
func (k *Kafka) produce(ctx context.Context, p int, recs ...kafka.Record) (int64, error) {
	resp, err := k.client.Produce(ctx, &kafka.ProduceRequest{
		Topic: k.topic, Partition: p, RequiredAcks: kafka.RequireAll,
		Records: kafka.NewRecordReader(recs...),
	})
	if err != nil {
		return 0, err
	}
	if resp.Error != nil {
		return 0, resp.Error
	}
	for _, e := range resp.RecordErrors {
		return 0, e
	}
	return resp.BaseOffset, nil
}

func (k *Kafka) record(stream string, v kafkaValue) kafka.Record {
	v.V = 1
	v.At = time.Now().UTC()
	b := marshalKeepingHTML(v)
	return kafka.Record{Key: kafka.NewBytes([]byte(kafkaKey(stream, v.Epoch))), Value: kafka.NewBytes(b)}
}

// Load reads the stream's partition to its end and returns its cursor.
func (k *Kafka) Load(ctx context.Context, stream string) (string, bool, error) {
	if err := ValidateStream(stream); err != nil {
		return "", false, err
	}
	if k.closed.Load() {
		return "", false, ErrClosed
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if err := k.catchUp(ctx, k.partition(stream)); err != nil {
		return "", false, err
	}
	st := k.streams[stream]
	switch {
	case st == nil:
		return "", false, nil
	case st.corrupt != nil:
		return "", false, fmt.Errorf("checkpoint: kafka: stream %q epoch %d: %w: %v", stream, st.epoch, ErrCorrupt, st.corrupt)
	}
	return st.cursor, st.found, nil
}

// LoadDocument is Load with the document saved with the cursor.
func (k *Kafka) LoadDocument(ctx context.Context, stream string) (string, []byte, bool, error) {
	if err := ValidateStream(stream); err != nil {
		return "", nil, false, err
	}
	if k.closed.Load() {
		return "", nil, false, ErrClosed
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if err := k.catchUp(ctx, k.partition(stream)); err != nil {
		return "", nil, false, err
	}
	st := k.streams[stream]
	switch {
	case st == nil:
		return "", nil, false, nil
	case st.corrupt != nil:
		return "", nil, false, fmt.Errorf("checkpoint: kafka: stream %q epoch %d: %w: %v", stream, st.epoch, ErrCorrupt, st.corrupt)
	}
	return st.cursor, st.doc, st.found, nil
}

// Save saves through this store's own claim of the stream, made at the first
// Save; it fails with ErrFenced once another store claimed the stream.
func (k *Kafka) Save(ctx context.Context, stream, cursor string) error {
	if err := ValidateStream(stream); err != nil {
		return err
	}
	if err := validateCursor(stream, cursor); err != nil {
		return err
	}
	k.implicitMu.Lock()
	c := k.implicit[stream]
	if c == nil {
		var err error
		if c, err = k.Claim(ctx, stream, ""); err != nil {
			k.implicitMu.Unlock()
			return err
		}
		k.implicit[stream] = c
	}
	k.implicitMu.Unlock()
	return c.Save(ctx, stream, cursor)
}

// SaveDocument is Save with a document (nil: none) in the same record.
func (k *Kafka) SaveDocument(ctx context.Context, stream, cursor string, doc []byte) error {
	if err := ValidateStream(stream); err != nil {
		return err
	}
	if err := validateCursor(stream, cursor); err != nil {
		return err
	}
	k.implicitMu.Lock()
	c := k.implicit[stream]
	if c == nil {
		var err error
		if c, err = k.Claim(ctx, stream, ""); err != nil {
			k.implicitMu.Unlock()
			return err
		}
		k.implicit[stream] = c
	}
	k.implicitMu.Unlock()
	return c.SaveDocument(ctx, stream, cursor, doc)
}

// Claim reads the stream's partition to its end, appends a claim under the
// next epoch, reads up to it again and returns the claim. If a save of the
// previous owner landed between the first read and the claim, the claim
// adopts that cursor and records it under the new epoch. It then writes
// tombstones for the stream's older epochs.
func (k *Kafka) Claim(ctx context.Context, stream, holder string) (*Claim, error) {
	if err := ValidateStream(stream); err != nil {
		return nil, err
	}
	if err := validateHolder(holder); err != nil {
		return nil, err
	}
	if k.closed.Load() {
		return nil, ErrClosed
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	p := k.partition(stream)
	if err := k.catchUp(ctx, p); err != nil {
		return nil, err
	}
	var cur kafkaStream
	if st := k.streams[stream]; st != nil {
		if st.corrupt != nil {
			return nil, fmt.Errorf("checkpoint: kafka: stream %q epoch %d: %w: %v", stream, st.epoch, ErrCorrupt, st.corrupt)
		}
		cur = *st
	}
	if k.claimHook != nil {
		k.claimHook()
	}
	epoch := cur.epoch + 1
	v := kafkaValue{Epoch: epoch, Holder: holder, Claim: true}
	if cur.found {
		c := cur.cursor
		v.Cursor = &c
		v.Document = cur.doc
	}
	if _, err := k.produce(ctx, p, k.record(stream, v)); err != nil {
		return nil, fmt.Errorf("checkpoint: kafka: stream %q: claim: %w", stream, err)
	}
	if err := k.catchUp(ctx, p); err != nil {
		return nil, err
	}
	st := k.streams[stream]
	if st == nil || st.epoch != epoch || st.first[epoch] != holder {
		return nil, fmt.Errorf("checkpoint: kafka: stream %q: another claim of epoch %d came first: %w", stream, epoch, ErrFenced)
	}
	cursor, doc, found := cur.cursor, cur.doc, cur.found
	if st.beforeFound && (!cur.found || st.beforeCursor != cur.cursor) {
		// The previous owner saved once more before our claim landed:
		// that save stands, and becomes ours.
		cursor, doc, found = st.beforeCursor, st.beforeDoc, true
		if _, err := k.produce(ctx, p, k.record(stream, kafkaValue{Epoch: epoch, Holder: holder, Cursor: &cursor, Document: doc})); err != nil {
			return nil, fmt.Errorf("checkpoint: kafka: stream %q: claim: %w", stream, err)
		}
	}
	var tombstones []kafka.Record
	for e := range st.live {
		if e < epoch {
			tombstones = append(tombstones, kafka.Record{Key: kafka.NewBytes([]byte(kafkaKey(stream, e)))})
		}
	}
	if len(tombstones) > 0 {
		// Only compaction needs them; a failure leaves old keys that no
		// reader takes.
		_, _ = k.produce(ctx, p, tombstones...)
	}
	s := &kafkaClaim{k: k, stream: stream, holder: holder, epoch: epoch, partition: p}
	return &Claim{stream: stream, holder: holder, epoch: epoch, cursor: cursor, doc: doc, found: found, save: s.save}, nil
}

type kafkaClaim struct {
	k         *Kafka
	stream    string
	holder    string
	epoch     uint64
	partition int
}

func (s *kafkaClaim) save(ctx context.Context, cursor string, doc []byte) error {
	if s.k.closed.Load() {
		return ErrClosed
	}
	s.k.epochsMu.Lock()
	newer := s.k.epochs[s.stream] > s.epoch
	s.k.epochsMu.Unlock()
	if newer {
		return fmt.Errorf("checkpoint: kafka: stream %q epoch %d: %w", s.stream, s.epoch, ErrFenced)
	}
	if _, err := s.k.produce(ctx, s.partition, s.k.record(s.stream, kafkaValue{Epoch: s.epoch, Holder: s.holder, Cursor: &cursor, Document: doc})); err != nil {
		return fmt.Errorf("checkpoint: kafka: stream %q: save: %w", s.stream, err)
	}
	return nil
}

// Close stops the background reads and marks the store closed; the client
// stays open (its owner closes it).
func (k *Kafka) Close() error {
	if k.closed.CompareAndSwap(false, true) {
		close(k.stop)
		k.wg.Wait()
	}
	return nil
}
