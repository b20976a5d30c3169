// Package nats publishes records to NATS: to a JetStream stream with an
// acknowledgement per record (the zero Config), or with core NATS publish.
//
// # JetStream
//
// New makes sure the stream exists: it creates it when missing (file
// storage, the subjects "restless.>" (Config.BaseSubject) plus Config.Subjects, the configured
// duplicate window and Config.Replicas) and, when a stream of that name exists with other
// subjects, duplicate window or storage, returns an error that lists each
// difference; it never changes an existing stream.
//
// Write publishes the records of each subject in order, one at a time, each
// acknowledged before the next on its subject (records of different
// subjects are in flight together, at most Config.MaxPending
// acknowledgements outstanding for the whole connection), and returns once
// the server acknowledged every record or reported it failed. Each record
// names the message it must follow on its subject, so that records keep
// their order on a stream other publishers write to as well (see order.go). A record's
// MsgID travels as the Nats-Msg-Id header, so the server drops a record it
// already stored within the duplicate window: resending a record whose
// acknowledgement was lost (a disconnect, a timeout) stores it once.
// Duplicates counts the acknowledgements the server marked duplicate.
//
// # Broker outages
//
// The client reconnects forever (Config.ReconnectWait between attempts) and
// Connected and Config.OnState report the connection state. While the
// server is away, publishes go to the client's reconnect buffer and Write
// waits for their acknowledgements, which arrive once the server is back;
// records whose acknowledgement cannot arrive (the connection dropped while
// they were in flight, the buffer is full, Config.AckTimeout passed, the
// stream did not answer) fail individually in an ingest.WriteErrors, at once,
// so that the caller resends them after its own backoff. Write does not loop
// internally: the pipeline already retries failed records, and Nats-Msg-Id
// makes the resend safe.
//
// # Core NATS
//
// With Config.Core, Write publishes each record and then flushes
// the connection (a round trip to the server). Core NATS gives no
// persistence guarantee: a nil error means the server received the
// messages, not that any subscriber or store kept them. Messages are lost
// when no subscriber is listening, and a flush that fails after a partial
// send may lead to repeats when the batch is resent.
//
// # Closing
//
// Close follows the contract of ingest.ErrClosed: it stops taking Writes,
// waits for those in progress (cancelling them when its context ends first)
// and closes the connection. Nothing is left to flush by then: every Write
// returns only once its records were acknowledged (JetStream) or flushed
// (core) or reported failed.
//
// # Headers
//
// Record headers become NATS headers with the same names and values
// (repeated names keep every value, in order; NATS headers are a map, so
// different names come in no particular order). Nats-Msg-Id is set from
// Record.MsgID, and left out when it is "". Record.Dest is the subject.
package nats

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/restless-stream/ingest"
)

// Sink publishes records to NATS. It is safe for concurrent use.
type Sink struct {
	cfg        Config
	nc         *nats.Conn
	js         jetstream.JetStream // nil in core mode
	stream     jetstream.Stream    // the stream, as found or created by New
	duplicates atomic.Uint64
	refusals   atomic.Uint64
	// busyResends counts records resent because their subject was still in
	// process on a replicated stream (see writeSubject).
	busyResends atomic.Uint64
	writes      ingest.WriteGate
	release     sync.Once
	closed      atomic.Bool // released: connection changes are no longer reported
	// order keeps each subject's records in the order of the Writes; see
	// order.go.
	order order
	// health says whether the stream takes records; see health.go.
	health health
	// msgs holds *msgBox: messages the client is done with, for reuse.
	msgs sync.Pool
}

// New validates cfg (see Config.Validate), connects, and in JetStream mode
// makes sure the stream exists. The first connection must succeed (within
// Config.ConnectTimeout); after that the client reconnects by itself.
func New(ctx context.Context, cfg Config) (*Sink, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("nats: %w", err)
	}
	cfg = cfg.withDefaults()
	s := &Sink{cfg: cfg}
	s.order.init()
	opts := []nats.Option{
		nats.Name(cfg.Name),
		nats.Timeout(cfg.ConnectTimeout),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(cfg.ReconnectWait),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			s.order.forgetAll()
			s.state(ingest.StateChange{State: ingest.StateReconnecting, Err: err})
		}),
		nats.ReconnectHandler(func(*nats.Conn) {
			s.state(ingest.StateChange{State: ingest.StateConnected})
		}),
		nats.ClosedHandler(func(nc *nats.Conn) {
			s.state(ingest.StateChange{State: ingest.StateFailed, Err: nc.LastError()})
		}),
		// Async errors (slow consumer, permission denied) surface through
		// the failed acknowledgements; the library must not print them.
		nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) {}),
	}
	if cfg.ReconnectBufSize != 0 {
		opts = append(opts, nats.ReconnectBufSize(cfg.ReconnectBufSize))
	}
	if cfg.Token != "" {
		opts = append(opts, nats.Token(cfg.Token.Reveal()))
	}
	if cfg.CredentialsFile != "" {
		opts = append(opts, nats.UserCredentials(cfg.CredentialsFile))
	}
	if cfg.TLS.CAFile != "" {
		opts = append(opts, nats.RootCAs(cfg.TLS.CAFile))
	}
	if cfg.TLS.CertFile != "" {
		opts = append(opts, nats.ClientCert(cfg.TLS.CertFile, cfg.TLS.KeyFile))
	}
	if cfg.TLS.enabled() {
		opts = append(opts, nats.Secure())
	}
	nc, err := nats.Connect(strings.Join(cfg.URLs, ","), opts...)
	if err != nil {
		return nil, fmt.Errorf("nats: connect to %s: %w", redactURLs(cfg.URLs), err)
	}
	s.nc = nc
	if cfg.Core {
		return s, nil
	}
	// No asynchronous acknowledgement handler: writeJetStream reuses a
	// message once acknowledged, and such a handler would be given it after.
	js, err := jetstream.New(nc,
		jetstream.WithPublishAsyncMaxPending(cfg.MaxPending),
		jetstream.WithPublishAsyncTimeout(cfg.AckTimeout),
	)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("nats: jetstream: %w", err)
	}
	s.js = js
	st, err := ensureStream(ctx, js, cfg)
	if err != nil {
		s.closed.Store(true)
		nc.Close()
		return nil, err
	}
	s.stream = st
	return s, nil
}

func (s *Sink) state(ch ingest.StateChange) {
	if s.cfg.OnState != nil && !s.closed.Load() {
		s.cfg.OnState(ch)
	}
}

// Connected reports whether the client is connected to a server now and,
// in JetStream mode, the stream takes records: it is false too while
// records have waited more than 5s for an acknowledgement with none
// arriving, and after a record failed for want of an answer (a timeout, no
// responders), until the next one is acknowledged. A server of a cluster
// that lost its quorum keeps its clients connected while it stores nothing.
func (s *Sink) Connected() bool {
	if !s.nc.IsConnected() {
		return false
	}
	return s.js == nil || s.health.ok(time.Now())
}

// JetStream returns the JetStream context of the connection, or nil in core
// mode. The NATS KV checkpoint store shares the connection through it.
func (s *Sink) JetStream() jetstream.JetStream { return s.js }

// Conn returns the underlying connection.
func (s *Sink) Conn() *nats.Conn { return s.nc }

// Stream returns the name of the stream the sink publishes to ("" in core mode).
func (s *Sink) Stream() string {
	if s.js == nil {
		return ""
	}
	return s.cfg.Stream
}

// Duplicates returns how many records the server acknowledged as
// duplicates (a Nats-Msg-Id it had already stored) since New.
func (s *Sink) Duplicates() uint64 { return s.duplicates.Load() }

// FenceRefusals returns how many records the server refused since New
// because the last message on their subject was not the one they named
// (another publisher wrote on the subject, or a copy of an earlier record
// landed late). The records failed, to be resent.
func (s *Sink) FenceRefusals() uint64 { return s.refusals.Load() }

// Close closes the sink as ingest.ErrClosed describes: it stops taking
// Writes, waits for those in progress (or cancels them when ctx ends
// first) and closes the connection.
func (s *Sink) Close(ctx context.Context) error {
	err := s.writes.Close(ctx)
	s.release.Do(func() {
		s.closed.Store(true)
		s.nc.Close()
	})
	if err != nil {
		return fmt.Errorf("nats: close: %w", err)
	}
	return nil
}
