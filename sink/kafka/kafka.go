// Package kafka publishes records to Kafka with segmentio/kafka-go.
//
// # Safe defaults
//
// The sink waits for every in-sync replica (required_acks all). Write
// returns nil only when the broker acknowledged every record; otherwise it
// returns an ingest.WriteErrors whose entry i says why record i failed, so
// that only failed records are resent.
//
// # Sending at once
//
// The caller batches (the pipeline's batch.max_events and batch.max_wait),
// so Write sends what it is given at once: produce requests per partition,
// the partitions concurrently, with no timer of its own. (kafka-go's Writer,
// which this sink no longer uses, would hold a batch smaller than BatchSize
// for BatchTimeout again.) Partition counts and leaders come from metadata
// cached by kafka-go's Transport for up to 6s; an error that says a leader
// moved or a broker is gone makes the next request fetch it afresh.
//
// # Keys and partitions
//
// Record.Key is the message key (the pipeline sets it per sink.kafka.key).
// Partitions are chosen with murmur2 as the Java client does, so equal keys
// land in one partition, in order, and agree with Java and librdkafka
// producers. A nil key goes to a random partition.
//
// # Topics
//
// Topics are not created by producing (auto-creation is off). A record for a
// missing topic fails with an error naming the topic. With
// Config.CreateTopics, missing topics are created with Config.Partitions and
// Config.ReplicationFactor, on first use or up front with EnsureTopics.
//
// # Repeats
//
// kafka-go has no idempotent producer (segmentio/kafka-go issue #233). A
// batch that is retried after its acknowledgement was lost (a timeout, a
// broker failover) can be stored twice. Consumers that must not see a record
// twice drop repeats by the restless-event-id header (with restless-stream,
// or the key in the default key mode): a repeat carries the same headers and
// value as the original and lands in the same partition, after it.
//
// # Compression
//
// Batches are compressed with snappy by default, at standard snappy's
// speed (see the package's init), or gzip, lz4, zstd or not at all.
//
// # Headers
//
// Record headers become Kafka headers with the same names, values and
// order. Record.MsgID is not sent: Kafka has no broker-side duplicate
// detection to feed.
package kafka

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/compress"
	"github.com/segmentio/kafka-go/compress/snappy"
	"github.com/segmentio/kafka-go/sasl"
	"github.com/segmentio/kafka-go/sasl/plain"
	"github.com/segmentio/kafka-go/sasl/scram"

	"github.com/restless-stream/ingest"
)

// Snappy at its usual speed. kafka-go compresses snappy with klauspost/s2's
// "better" encoder unless told otherwise, which costs about twice the CPU of
// standard snappy (what librdkafka and the Java client use) for slightly
// smaller batches; in an end-to-end profile it was a tenth of the daemon's
// CPU. The output is plain snappy either way, readable by every consumer.
// The setting is kafka-go's and so the whole process's; it is made before
// any codec is used.
func init() { compress.SnappyCodec.Compression = snappy.FasterCompression }

// Defaults of Config.
const (
	DefaultBroker            = "127.0.0.1:9092"
	DefaultRequiredAcks      = "all"
	DefaultCompression       = "snappy"
	DefaultPartitions        = 3
	DefaultReplicationFactor = 1
	DefaultBatchSize         = 1000
	DefaultBatchBytes        = 1 << 20
	DefaultBatchTimeout      = 5 * time.Millisecond
	DefaultWriteTimeout      = 10 * time.Second
	DefaultMaxAttempts       = 3
	DefaultDialTimeout       = 5 * time.Second
	DefaultClientID          = "restless-ingest"
)

// Config configures a Sink. The zero value of a field selects its default.
type Config struct {
	// Brokers are the bootstrap brokers, host:port. Default
	// ["127.0.0.1:9092"].
	Brokers []string
	// RequiredAcks is "all" (every in-sync replica), "one" (the leader) or
	// "none" (fire-and-forget: Write cannot know whether records arrived).
	// Default "all".
	RequiredAcks string
	// Compression is "none", "gzip", "snappy", "lz4" or "zstd". Default
	// "snappy".
	Compression string
	// CreateTopics creates missing topics. Default false: a record for a
	// missing topic fails with an error naming it.
	CreateTopics bool
	// Partitions of a created topic. Default 3.
	Partitions int
	// ReplicationFactor of a created topic. Default 1.
	ReplicationFactor int
	// BatchSize is the most records in one produce request (to one
	// partition); a Write with more records for a partition sends several
	// requests, one after the other. Default 1000.
	BatchSize int
	// BatchBytes is the largest produce request to one partition, and so
	// the largest record. Default 1 MiB (1048576). A larger record fails
	// with an ingest.PermanentError.
	BatchBytes int64
	// BatchTimeout is unused: Write sends at once and never waits for more
	// records; the caller's batching (the pipeline's batch.max_wait) is the
	// only wait. It is still accepted (and must not be negative) so that
	// existing configurations keep working. Default 5ms.
	BatchTimeout time.Duration
	// WriteTimeout bounds one produce request. Default 10s.
	WriteTimeout time.Duration
	// MaxAttempts is how often Write tries a produce request whose error
	// is retriable (a moved leader, a timeout, a refused connection) before
	// its records fail; the caller retries them after that. Default 3.
	MaxAttempts int
	// DialTimeout bounds connecting to a broker. Default 5s.
	DialTimeout time.Duration
	// ClientID names the client to the brokers. Default "restless-ingest".
	ClientID string
	// SASL authenticates the client. Default none.
	SASL SASLConfig
	// TLS configures TLS to the brokers; it is used when any of its fields
	// is set. Default none (plain TCP).
	TLS TLSConfig
}

// SASLConfig selects SASL authentication.
type SASLConfig struct {
	// Mechanism is "plain", "scram-sha-256" or "scram-sha-512". Default ""
	// (no SASL).
	Mechanism string
	// Username and Password are the credentials. Default none.
	Username string
	Password ingest.Secret
}

// TLSConfig names the files of a TLS configuration.
type TLSConfig struct {
	// Enabled turns on TLS with the system roots when no file is set.
	// Default false (true when a file is set).
	Enabled bool
	// CAFile is a PEM bundle of the CAs that sign the broker certificates.
	// Default: the system roots.
	CAFile string
	// CertFile and KeyFile are the client certificate and its key, for
	// mutual TLS. Both or neither. Default none.
	CertFile string
	KeyFile  string
}

// Sink publishes records to Kafka. It is safe for concurrent use.
type Sink struct {
	cfg       Config
	transport *kafka.Transport
	client    *kafka.Client
	acks      kafka.RequiredAcks
	codec     kafka.Compression
	metaGen   atomic.Uint64 // metadata generation: see refreshMetadata

	topics sync.Map // topic name → struct{}: known to exist

	closeMu  sync.Mutex
	closed   bool
	inflight sync.WaitGroup // Writes in progress

	mu       sync.Mutex
	healthy  bool
	lastSeen time.Time
	probing  bool
}

// New checks the configuration, reaches the brokers (within ctx) and returns
// a sink. It does not check or create topics: see EnsureTopics.
func New(ctx context.Context, cfg Config) (*Sink, error) {
	cfg, acks, codec, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	mech, err := cfg.SASL.mechanism()
	if err != nil {
		return nil, err
	}
	tlsCfg, err := cfg.TLS.config()
	if err != nil {
		return nil, err
	}
	transport := &kafka.Transport{
		DialTimeout: cfg.DialTimeout,
		ClientID:    cfg.ClientID,
		TLS:         tlsCfg,
		SASL:        mech,
	}
	addr := kafka.TCP(cfg.Brokers...)
	s := &Sink{
		cfg:       cfg,
		transport: transport,
		client:    &kafka.Client{Addr: addr, Transport: transport, Timeout: cfg.WriteTimeout},
		acks:      acks,
		codec:     codec,
	}
	if _, err := s.client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{}}); err != nil {
		transport.CloseIdleConnections()
		if cfg.SASL.Mechanism != "" && (errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)) {
			// Some brokers answer a refused SASL handshake by closing the
			// connection, which kafka-go reports as a bare EOF.
			return nil, fmt.Errorf("kafka: reach brokers %s: the broker closed the connection during SASL %s authentication of user %q (wrong username or password?): %w",
				strings.Join(cfg.Brokers, ","), cfg.SASL.Mechanism, cfg.SASL.Username, err)
		}
		return nil, fmt.Errorf("kafka: reach brokers %s: %w", strings.Join(cfg.Brokers, ","), err)
	}
	s.seen(true)
	return s, nil
}

func (c Config) withDefaults() (Config, kafka.RequiredAcks, kafka.Compression, error) {
	if len(c.Brokers) == 0 {
		c.Brokers = []string{DefaultBroker}
	}
	c.Brokers = append([]string(nil), c.Brokers...)
	for i, b := range c.Brokers {
		if _, port, err := net.SplitHostPort(b); err != nil || port == "" {
			return c, 0, 0, fmt.Errorf("kafka: brokers[%d] %q is not host:port", i, b)
		}
	}
	var acks kafka.RequiredAcks
	switch strings.ToLower(c.RequiredAcks) {
	case "", "all", "-1":
		acks = kafka.RequireAll
	case "one", "1":
		acks = kafka.RequireOne
	case "none", "0":
		acks = kafka.RequireNone
	default:
		return c, 0, 0, fmt.Errorf("kafka: required_acks %q is not all, one or none", c.RequiredAcks)
	}
	var codec kafka.Compression
	switch strings.ToLower(c.Compression) {
	case "", "snappy":
		codec = kafka.Snappy
	case "none":
		codec = 0
	case "gzip":
		codec = kafka.Gzip
	case "lz4":
		codec = kafka.Lz4
	case "zstd":
		codec = kafka.Zstd
	default:
		return c, 0, 0, fmt.Errorf("kafka: compression %q is not none, gzip, snappy, lz4 or zstd", c.Compression)
	}
	for _, f := range []struct {
		name string
		v    *int
		def  int
	}{
		{"partitions", &c.Partitions, DefaultPartitions},
		{"replication_factor", &c.ReplicationFactor, DefaultReplicationFactor},
		{"batch_size", &c.BatchSize, DefaultBatchSize},
		{"max_attempts", &c.MaxAttempts, DefaultMaxAttempts},
	} {
		switch {
		case *f.v < 0:
			return c, 0, 0, fmt.Errorf("kafka: %s %d is negative", f.name, *f.v)
		case *f.v == 0:
			*f.v = f.def
		}
	}
	for _, f := range []struct {
		name string
		v    *time.Duration
		def  time.Duration
	}{
		{"batch_timeout", &c.BatchTimeout, DefaultBatchTimeout},
		{"write_timeout", &c.WriteTimeout, DefaultWriteTimeout},
		{"dial_timeout", &c.DialTimeout, DefaultDialTimeout},
	} {
		switch {
		case *f.v < 0:
			return c, 0, 0, fmt.Errorf("kafka: %s %v is negative", f.name, *f.v)
		case *f.v == 0:
			*f.v = f.def
		}
	}
	switch {
	case c.BatchBytes < 0:
		return c, 0, 0, fmt.Errorf("kafka: batch_bytes %d is negative", c.BatchBytes)
	case c.BatchBytes == 0:
		c.BatchBytes = DefaultBatchBytes
	}
	if c.ClientID == "" {
		c.ClientID = DefaultClientID
	}
	return c, acks, codec, nil
}

func (c SASLConfig) mechanism() (sasl.Mechanism, error) {
	m := strings.ToLower(c.Mechanism)
	if m == "" {
		return nil, nil
	}
	if c.Username == "" {
		return nil, fmt.Errorf("kafka: sasl.username is empty for mechanism %s", m)
	}
	switch m {
	case "plain":
		return plain.Mechanism{Username: c.Username, Password: c.Password.Reveal()}, nil
	case "scram-sha-256", "scram-sha-512":
		algo := scram.SHA256
		if m == "scram-sha-512" {
			algo = scram.SHA512
		}
		mech, err := scram.Mechanism(algo, c.Username, c.Password.Reveal())
		if err != nil {
			return nil, fmt.Errorf("kafka: sasl %s: credentials rejected by SASLprep", m) // never echo the password
		}
		return mech, nil
	}
	return nil, fmt.Errorf("kafka: sasl.mechanism %q is not plain, scram-sha-256 or scram-sha-512", c.Mechanism)
}

func (c TLSConfig) config() (*tls.Config, error) {
	if !c.Enabled && c.CAFile == "" && c.CertFile == "" && c.KeyFile == "" {
		return nil, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("kafka: tls.ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("kafka: tls.ca_file %s holds no PEM certificate", c.CAFile)
		}
		cfg.RootCAs = pool
	}
	if (c.CertFile == "") != (c.KeyFile == "") {
		return nil, errors.New("kafka: tls.cert_file and tls.key_file must be set together")
	}
	if c.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("kafka: tls.cert_file/key_file: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

// EnsureTopics checks that each topic exists and, with Config.CreateTopics,
// creates the missing ones. Without it, a missing topic is an error that
// names every missing topic. The daemon calls it at start with the
// destinations; Write does the same for topics it has not seen.
func (s *Sink) EnsureTopics(ctx context.Context, topics []string) error {
	errs := s.ensure(ctx, topics)
	if len(errs) == 0 {
		return nil
	}
	var out []error
	for _, t := range topics {
		if err, ok := errs[t]; ok {
			out = append(out, err)
			delete(errs, t)
		}
	}
	return errors.Join(out...)
}

// ensure returns an error per topic that does not exist (and could not be
// created); topics found are remembered.
func (s *Sink) ensure(ctx context.Context, topics []string) map[string]error {
	var unknown []string
	for _, t := range topics {
		if t == "" {
			continue
		}
		if _, ok := s.topics.Load(t); !ok && !slices.Contains(unknown, t) {
			unknown = append(unknown, t)
		}
	}
	errs := make(map[string]error)
	if len(unknown) == 0 {
		return errs
	}
	meta, err := s.client.Metadata(ctx, &kafka.MetadataRequest{Topics: unknown})
	if err != nil {
		s.seen(false)
		for _, t := range unknown {
			errs[t] = fmt.Errorf("kafka: metadata of topic %q: %w", t, err)
		}
		return errs
	}
	s.seen(true)
	var missing []string
	for _, t := range unknown {
		found := false
		for _, mt := range meta.Topics {
			if mt.Name == t {
				found = mt.Error == nil && len(mt.Partitions) > 0
				if mt.Error != nil && !errors.Is(mt.Error, kafka.UnknownTopicOrPartition) {
					errs[t] = fmt.Errorf("kafka: topic %q: %w", t, mt.Error)
				}
				break
			}
		}
		switch {
		case found:
			s.topics.Store(t, struct{}{})
		case errs[t] == nil:
			missing = append(missing, t)
		}
	}
	if len(missing) == 0 {
		return errs
	}
	if !s.cfg.CreateTopics {
		for _, t := range missing {
			errs[t] = fmt.Errorf("kafka: topic %q does not exist (create it, or set create_topics): %w", t, kafka.UnknownTopicOrPartition)
		}
		return errs
	}
	req := &kafka.CreateTopicsRequest{}
	for _, t := range missing {
		req.Topics = append(req.Topics, kafka.TopicConfig{Topic: t, NumPartitions: s.cfg.Partitions, ReplicationFactor: s.cfg.ReplicationFactor})
	}
	resp, err := s.client.CreateTopics(ctx, req)
	for _, t := range missing {
		var terr error
		if err != nil {
			terr = err
		} else if e := resp.Errors[t]; e != nil && !errors.Is(e, kafka.TopicAlreadyExists) {
			terr = e
		}
		if terr != nil {
			errs[t] = fmt.Errorf("kafka: create topic %q (%d partitions, replication factor %d): %w", t, s.cfg.Partitions, s.cfg.ReplicationFactor, terr)
			continue
		}
		s.topics.Store(t, struct{}{})
	}
	return errs
}

// probeAfter is how old the last broker answer may be before Connected asks
// again.
const probeAfter = 5 * time.Second

// Connected reports whether the brokers answered recently: the last produce
// or metadata request succeeded. When the sink has been idle for a while it
// asks the brokers for metadata (bounded by 2s) to find out.
func (s *Sink) Connected() bool {
	s.mu.Lock()
	if time.Since(s.lastSeen) < probeAfter || s.probing {
		ok := s.healthy
		s.mu.Unlock()
		return ok
	}
	s.probing = true
	s.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	// Bypass the transport's metadata cache: dial a broker directly.
	ok := false
	for _, b := range s.cfg.Brokers {
		if _, err := (&kafka.Client{Addr: kafka.TCP(b), Transport: s.transport}).ApiVersions(ctx, &kafka.ApiVersionsRequest{}); err == nil {
			ok = true
			break
		}
	}
	s.mu.Lock()
	s.probing = false
	s.mu.Unlock()
	s.seen(ok)
	return ok
}

func (s *Sink) seen(ok bool) {
	s.mu.Lock()
	s.healthy = ok
	s.lastSeen = time.Now()
	s.mu.Unlock()
}

// enter registers a Write, unless the sink is closed.
func (s *Sink) enter() bool {
	s.closeMu.Lock()
	defer s.closeMu.Unlock()
	if s.closed {
		return false
	}
	s.inflight.Add(1)
	return true
}

// Close waits for the Writes in progress and closes the connections. A
// Write after Close fails.
func (s *Sink) Close() error {
	s.closeMu.Lock()
	s.closed = true
	s.closeMu.Unlock()
	s.inflight.Wait()
	s.transport.CloseIdleConnections()
	return nil
}
