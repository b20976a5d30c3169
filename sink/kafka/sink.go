package kafka

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	kafkago "github.com/segmentio/kafka-go"

	"github.com/restless-stream/ingest"
)

// Sink publishes records to Kafka. It is safe for concurrent use.
type Sink struct {
	cfg       Config
	transport *kafkago.Transport
	client    *kafkago.Client
	acks      kafkago.RequiredAcks
	codec     kafkago.Compression
	metaGen   atomic.Uint64 // metadata generation: see refreshMetadata

	topics sync.Map // topic name → struct{}: known to exist

	writes  ingest.WriteGate
	release sync.Once

	mu       sync.Mutex
	healthy  bool
	lastSeen time.Time
	probing  bool
}

// New validates cfg (see Config.Validate), reaches the brokers (within ctx)
// and returns a sink. It does not check or create topics: see EnsureTopics.
func New(ctx context.Context, cfg Config) (*Sink, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("kafka: %w", err)
	}
	cfg = cfg.withDefaults()
	mech, err := cfg.SASL.mechanism()
	if err != nil {
		return nil, fmt.Errorf("kafka: %w", err)
	}
	tlsCfg, err := cfg.TLS.config()
	if err != nil {
		return nil, fmt.Errorf("kafka: %w", err)
	}
	transport := &kafkago.Transport{
		DialTimeout: cfg.DialTimeout,
		ClientID:    cfg.ClientID,
		TLS:         tlsCfg,
		SASL:        mech,
	}
	s := &Sink{
		cfg:       cfg,
		transport: transport,
		client:    &kafkago.Client{Addr: kafkago.TCP(cfg.Brokers...), Transport: transport, Timeout: cfg.WriteTimeout},
		acks:      cfg.RequiredAcks.kafkaGo(),
		codec:     cfg.Compression.kafkaGo(),
	}
	if _, err := s.client.Metadata(ctx, &kafkago.MetadataRequest{Topics: []string{}}); err != nil {
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

// probeAfter is how old the last broker answer may be before Connected asks
// again, and probeTimeout bounds the asking.
const (
	probeAfter   = 5 * time.Second
	probeTimeout = 2 * time.Second
)

// Connected reports whether the brokers answered recently: the last produce
// or metadata request succeeded. When the sink has been idle for a while it
// asks the brokers (within ctx, and at most 2s) to find out; while one call
// asks, the others answer with what was last known.
func (s *Sink) Connected(ctx context.Context) bool {
	s.mu.Lock()
	if time.Since(s.lastSeen) < probeAfter || s.probing {
		ok := s.healthy
		s.mu.Unlock()
		return ok
	}
	s.probing = true
	s.mu.Unlock()
	pctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	// Bypass the transport's metadata cache: ask a broker directly.
	ok := false
	for _, b := range s.cfg.Brokers {
		if _, err := (&kafkago.Client{Addr: kafkago.TCP(b), Transport: s.transport}).ApiVersions(pctx, &kafkago.ApiVersionsRequest{}); err == nil {
			ok = true
			break
		}
	}
	s.mu.Lock()
	s.probing = false
	s.mu.Unlock()
	if ok || ctx.Err() == nil { // the caller giving up says nothing of the brokers
		s.seen(ok)
	}
	return ok
}

func (s *Sink) seen(ok bool) {
	s.mu.Lock()
	s.healthy = ok
	s.lastSeen = time.Now()
	s.mu.Unlock()
}

// Client is the sink's own client of the brokers (their addresses, TLS and
// SASL), for what shares the sink's connection settings: the daemon's Kafka
// checkpoint store. It stays usable until Close.
func (s *Sink) Client() *kafkago.Client { return s.client }

// TLSConfig is the TLS configuration the sink dials the brokers with; nil
// without TLS. The caller must not modify it.
func (s *Sink) TLSConfig() *tls.Config { return s.transport.TLS }

// Close closes the sink as ingest.ErrClosed describes: it stops taking
// Writes, waits for those in progress (or cancels them when ctx ends
// first) and closes the connections to the brokers.
func (s *Sink) Close(ctx context.Context) error {
	err := s.writes.Close(ctx)
	s.release.Do(s.transport.CloseIdleConnections)
	if err != nil {
		return fmt.Errorf("kafka: close: %w", err)
	}
	return nil
}
