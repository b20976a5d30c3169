package kafka

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
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
