package kafka

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"
)

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
