package kafka

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"math"
	"net"
	"os"
	"strings"
	"time"

	kafkago "github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/sasl"
	"github.com/segmentio/kafka-go/sasl/plain"
	"github.com/segmentio/kafka-go/sasl/scram"

	"github.com/restless-stream/ingest"
)

// Defaults of Config.
const (
	DefaultBroker            = "127.0.0.1:9092"
	DefaultRequiredAcks      = RequireAll
	DefaultCompression       = CompressionSnappy
	DefaultPartitions        = 3
	DefaultReplicationFactor = 1
	DefaultBatchSize         = 1000
	DefaultBatchBytes        = 1 << 20
	DefaultWriteTimeout      = 10 * time.Second
	DefaultMaxAttempts       = 3
	DefaultDialTimeout       = 5 * time.Second
	DefaultClientID          = "restless-ingest"

	// DefaultBatchTimeout is the default of Config.BatchTimeout.
	//
	// Deprecated: Config.BatchTimeout is unused.
	DefaultBatchTimeout = 5 * time.Millisecond
)

// Config configures a Sink. The zero value of a field selects its default.
type Config struct {
	// Brokers are the bootstrap brokers, host:port. Default
	// ["127.0.0.1:9092"].
	Brokers []string
	// RequiredAcks says which replicas must store a record before the
	// broker acknowledges it. Default RequireAll.
	RequiredAcks RequiredAcks
	// Compression compresses each produce request. Default
	// CompressionSnappy.
	Compression Compression
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
	// BatchBytes bounds one produce request to one partition: its record
	// batch, as Kafka encodes it before compression (the batch header and
	// each record; see the package documentation), and so the largest
	// record. Default 1 MiB (1048576), within a broker's default
	// message.max.bytes. A larger record fails with an ingest.PermanentError.
	BatchBytes int64
	// BatchTimeout is unused: Write sends at once and never waits for more
	// records; the caller's batching (the pipeline's batch.max_wait) is the
	// only wait. It must not be negative.
	//
	// Deprecated: unused, kept so that existing configurations keep
	// working. Leave it zero.
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
	// Mechanism is "plain", "scram-sha-256" or "scram-sha-512" (in any
	// case). Default "" (no SASL).
	Mechanism string
	// Username and Password are the credentials, both required with a
	// Mechanism. Default none.
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

// RequiredAcks says which replicas must store a record before the broker
// acknowledges it. The zero value is RequireAll.
type RequiredAcks int8

const (
	// RequireAll waits for every in-sync replica (acks=all, or -1).
	RequireAll RequiredAcks = iota
	// RequireOne waits for the partition's leader only (acks=1).
	RequireOne
	// RequireNone waits for nothing (acks=0): Write cannot know whether
	// the records arrived.
	RequireNone
)

var acksNames = [...]string{RequireAll: "all", RequireOne: "one", RequireNone: "none"}

// Valid reports whether a is one of the constants.
func (a RequiredAcks) Valid() bool { return a >= 0 && int(a) < len(acksNames) }

// String returns "all", "one" or "none".
func (a RequiredAcks) String() string {
	if a.Valid() {
		return acksNames[a]
	}
	return fmt.Sprintf("RequiredAcks(%d)", int8(a))
}

// ParseRequiredAcks reads "all", "one" or "none" (in any case), or Kafka's
// numbers -1, 1 and 0; "" is the default, RequireAll.
func ParseRequiredAcks(s string) (RequiredAcks, error) {
	switch strings.ToLower(s) {
	case "", "all", "-1":
		return RequireAll, nil
	case "one", "1":
		return RequireOne, nil
	case "none", "0":
		return RequireNone, nil
	}
	return 0, fmt.Errorf("%q is not one of all, one, none", s)
}

// MarshalText implements encoding.TextMarshaler.
func (a RequiredAcks) MarshalText() ([]byte, error) {
	if !a.Valid() {
		return nil, fmt.Errorf("%v is not one of all, one, none", a)
	}
	return []byte(a.String()), nil
}

// UnmarshalText implements encoding.TextUnmarshaler with ParseRequiredAcks.
func (a *RequiredAcks) UnmarshalText(b []byte) error {
	v, err := ParseRequiredAcks(string(b))
	if err != nil {
		return err
	}
	*a = v
	return nil
}

func (a RequiredAcks) kafkaGo() kafkago.RequiredAcks {
	switch a {
	case RequireOne:
		return kafkago.RequireOne
	case RequireNone:
		return kafkago.RequireNone
	}
	return kafkago.RequireAll
}

// Compression is the codec of produce requests. The zero value is
// CompressionSnappy. Every codec's output is the standard one, readable by
// every Kafka client.
type Compression int8

const (
	// CompressionSnappy compresses with snappy, the default.
	CompressionSnappy Compression = iota
	// CompressionNone does not compress.
	CompressionNone
	// CompressionGzip compresses with gzip.
	CompressionGzip
	// CompressionLZ4 compresses with lz4.
	CompressionLZ4
	// CompressionZstd compresses with zstd.
	CompressionZstd
)

var compressionNames = [...]string{
	CompressionSnappy: "snappy",
	CompressionNone:   "none",
	CompressionGzip:   "gzip",
	CompressionLZ4:    "lz4",
	CompressionZstd:   "zstd",
}

// Valid reports whether c is one of the constants.
func (c Compression) Valid() bool { return c >= 0 && int(c) < len(compressionNames) }

// String returns "snappy", "none", "gzip", "lz4" or "zstd".
func (c Compression) String() string {
	if c.Valid() {
		return compressionNames[c]
	}
	return fmt.Sprintf("Compression(%d)", int8(c))
}

// ParseCompression reads "none", "gzip", "snappy", "lz4" or "zstd" (in any
// case); "" is the default, CompressionSnappy.
func ParseCompression(s string) (Compression, error) {
	if s == "" {
		return CompressionSnappy, nil
	}
	for c, name := range compressionNames {
		if strings.EqualFold(s, name) {
			return Compression(c), nil
		}
	}
	return 0, fmt.Errorf("%q is not one of none, gzip, snappy, lz4, zstd", s)
}

// MarshalText implements encoding.TextMarshaler.
func (c Compression) MarshalText() ([]byte, error) {
	if !c.Valid() {
		return nil, fmt.Errorf("%v is not one of none, gzip, snappy, lz4, zstd", c)
	}
	return []byte(c.String()), nil
}

// UnmarshalText implements encoding.TextUnmarshaler with ParseCompression.
func (c *Compression) UnmarshalText(b []byte) error {
	v, err := ParseCompression(string(b))
	if err != nil {
		return err
	}
	*c = v
	return nil
}

func (c Compression) kafkaGo() kafkago.Compression {
	switch c {
	case CompressionNone:
		return 0
	case CompressionGzip:
		return kafkago.Gzip
	case CompressionLZ4:
		return kafkago.Lz4
	case CompressionZstd:
		return kafkago.Zstd
	}
	return kafkago.Snappy
}

// Validate reports every field of c that New would refuse, each as an
// *ingest.FieldError naming the field by its Go path ("Brokers[1]",
// "SASL.Username"), joined with errors.Join. It does no I/O: files named
// by TLS are read by New.
func (c Config) Validate() error {
	var errs []error
	add := func(field, format string, args ...any) {
		errs = append(errs, ingest.FieldErrorf(field, format, args...))
	}
	for i, b := range c.Brokers {
		if _, port, err := net.SplitHostPort(b); err != nil || port == "" {
			add(fmt.Sprintf("Brokers[%d]", i), "%q is not host:port", b)
		}
	}
	if !c.RequiredAcks.Valid() {
		add("RequiredAcks", "%v is not one of RequireAll, RequireOne, RequireNone", c.RequiredAcks)
	}
	if !c.Compression.Valid() {
		add("Compression", "%v is not one of the Compression constants", c.Compression)
	}
	for _, f := range []struct {
		name string
		v    int
		max  int
	}{
		{"Partitions", c.Partitions, math.MaxInt32},
		{"ReplicationFactor", c.ReplicationFactor, math.MaxInt16},
		{"BatchSize", c.BatchSize, math.MaxInt32},
		{"MaxAttempts", c.MaxAttempts, math.MaxInt32},
	} {
		switch {
		case f.v < 0:
			add(f.name, "%d is negative", f.v)
		case f.v > f.max:
			add(f.name, "%d is above %d", f.v, f.max)
		}
	}
	switch {
	case c.BatchBytes < 0:
		add("BatchBytes", "%d is negative", c.BatchBytes)
	case c.BatchBytes > math.MaxInt32:
		add("BatchBytes", "%d is above %d", c.BatchBytes, math.MaxInt32)
	}
	for _, f := range []struct {
		name string
		v    time.Duration
	}{
		{"BatchTimeout", c.BatchTimeout},
		{"WriteTimeout", c.WriteTimeout},
		{"DialTimeout", c.DialTimeout},
	} {
		if f.v < 0 {
			add(f.name, "%v is negative", f.v)
		}
	}
	errs = append(errs, ingest.Prefix("SASL", c.SASL.Validate()), ingest.Prefix("TLS", c.TLS.Validate()))
	return errors.Join(errs...)
}

// Validate reports what is wrong with c as *ingest.FieldErrors joined with
// errors.Join; see Config.Validate.
func (c SASLConfig) Validate() error {
	if c.Mechanism == "" {
		return nil
	}
	var errs []error
	switch strings.ToLower(c.Mechanism) {
	case "plain", "scram-sha-256", "scram-sha-512":
	default:
		errs = append(errs, ingest.FieldErrorf("Mechanism", "%q is not one of plain, scram-sha-256, scram-sha-512", c.Mechanism))
	}
	if c.Username == "" {
		errs = append(errs, ingest.FieldErrorf("Username", "required with a SASL mechanism"))
	}
	if c.Password == "" {
		errs = append(errs, ingest.FieldErrorf("Password", "required with a SASL mechanism"))
	}
	return errors.Join(errs...)
}

// Validate reports what is wrong with c as *ingest.FieldErrors joined with
// errors.Join; see Config.Validate.
func (c TLSConfig) Validate() error {
	switch {
	case c.CertFile != "" && c.KeyFile == "":
		return ingest.FieldErrorf("KeyFile", "required with a client certificate")
	case c.CertFile == "" && c.KeyFile != "":
		return ingest.FieldErrorf("CertFile", "required with a client key")
	}
	return nil
}

// withDefaults returns c with every zero field set to its default; c must
// be valid.
func (c Config) withDefaults() Config {
	if len(c.Brokers) == 0 {
		c.Brokers = []string{DefaultBroker}
	}
	c.Brokers = append([]string(nil), c.Brokers...)
	for _, f := range []struct {
		v   *int
		def int
	}{
		{&c.Partitions, DefaultPartitions},
		{&c.ReplicationFactor, DefaultReplicationFactor},
		{&c.BatchSize, DefaultBatchSize},
		{&c.MaxAttempts, DefaultMaxAttempts},
	} {
		if *f.v == 0 {
			*f.v = f.def
		}
	}
	if c.BatchBytes == 0 {
		c.BatchBytes = DefaultBatchBytes
	}
	if c.WriteTimeout == 0 {
		c.WriteTimeout = DefaultWriteTimeout
	}
	if c.DialTimeout == 0 {
		c.DialTimeout = DefaultDialTimeout
	}
	if c.ClientID == "" {
		c.ClientID = DefaultClientID
	}
	return c
}

// mechanism builds the SASL mechanism of a valid c; nil without SASL.
func (c SASLConfig) mechanism() (sasl.Mechanism, error) {
	switch m := strings.ToLower(c.Mechanism); m {
	case "":
		return nil, nil
	case "plain":
		return plain.Mechanism{Username: c.Username, Password: c.Password.Reveal()}, nil
	default:
		algo := scram.SHA256
		if m == "scram-sha-512" {
			algo = scram.SHA512
		}
		mech, err := scram.Mechanism(algo, c.Username, c.Password.Reveal())
		if err != nil {
			// Never echo the password.
			return nil, ingest.FieldErrorf("SASL.Password", "rejected by SASLprep for %s", m)
		}
		return mech, nil
	}
}

// config reads the files of a valid c; nil when TLS is off.
func (c TLSConfig) config() (*tls.Config, error) {
	if !c.Enabled && c.CAFile == "" && c.CertFile == "" && c.KeyFile == "" {
		return nil, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, &ingest.FieldError{Field: "TLS.CAFile", Err: err}
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, ingest.FieldErrorf("TLS.CAFile", "%s holds no PEM certificate", c.CAFile)
		}
		cfg.RootCAs = pool
	}
	if c.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
		if err != nil {
			return nil, &ingest.FieldError{Field: "TLS.CertFile", Err: err}
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}
