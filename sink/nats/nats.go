// Package nats publishes records to NATS: to a JetStream stream (the
// default of the daemon) with an acknowledgement per record, or with core
// NATS publish.
//
// # JetStream
//
// New makes sure the stream exists: it creates it when missing (file
// storage, the subjects "restless.>" (Config.BaseSubject) plus Config.Subjects, the configured
// duplicate window) and, when a stream of that name exists with other
// subjects, duplicate window or storage, returns an error that lists each
// difference; it never changes an existing stream.
//
// Write publishes the batch asynchronously, with at most Config.MaxPending
// acknowledgements outstanding for the whole connection, and returns once
// the server acknowledged every record or reported it failed. A record's
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
// With Config.JetStream false, Write publishes each record and then flushes
// the connection (a round trip to the server). Core NATS gives no
// persistence guarantee: a nil error means the server received the
// messages, not that any subscriber or store kept them. Messages are lost
// when no subscriber is listening, and a flush that fails after a partial
// send may lead to repeats when the batch is resent.
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
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/restless-stream/ingest"
)

// Defaults of Config.
const (
	DefaultURL             = "nats://127.0.0.1:4222"
	DefaultStream          = "RESTLESS"
	DefaultSubject         = "restless.>"
	DefaultDuplicateWindow = 10 * time.Minute
	DefaultMaxPending      = 4096
	DefaultAckTimeout      = 30 * time.Second
	DefaultReconnectWait   = 2 * time.Second
	DefaultConnectTimeout  = 5 * time.Second
	DefaultName            = "restless-ingest"
)

// Config configures a Sink. The zero value of a field selects its default.
type Config struct {
	// URLs are the servers to connect to; the client picks one and fails
	// over to the others. Default [DefaultURL].
	URLs []string
	// JetStream selects JetStream publish with acknowledgements. The zero
	// value is core NATS; DefaultConfig (and the daemon) set it to true.
	JetStream bool
	// Stream is the JetStream stream that stores the records. Default
	// "RESTLESS". Unused in core mode.
	Stream string
	// BaseSubject is the wildcard subject the stream always has. Default
	// "restless.>", which covers every default destination.
	BaseSubject string
	// Subjects are added to the stream's subjects besides BaseSubject:
	// the daemon passes every destination. Subjects already matched by
	// another one (such as "restless.orders" by "restless.>") are not added
	// again, since NATS rejects overlapping subjects in one stream.
	Subjects []string
	// DuplicateWindow is how long the server remembers Nats-Msg-Id values.
	// Default 10m.
	DuplicateWindow time.Duration
	// Token authenticates with a token. Default none.
	Token ingest.Secret
	// CredentialsFile is a NATS credentials file (JWT and NKey seed).
	// Default none.
	CredentialsFile string
	// TLS configures TLS; it is used when any of its files is set or a URL
	// has the tls:// scheme. Default none.
	TLS TLSConfig
	// MaxPending bounds the acknowledgements outstanding on the connection,
	// across all concurrent Writes. Default 4096.
	MaxPending int
	// AckTimeout bounds the wait for one record's acknowledgement, and for
	// a free slot under MaxPending, when the context of Write has no
	// earlier deadline. Default 30s.
	AckTimeout time.Duration
	// ReconnectWait is the pause between reconnect attempts. Default 2s.
	// Reconnect attempts never stop.
	ReconnectWait time.Duration
	// ReconnectBufSize is how many bytes of publishes the client holds while
	// disconnected. Default 8 MiB (the client's default); -1 disables the
	// buffer, so publishes fail at once while disconnected.
	ReconnectBufSize int
	// ConnectTimeout bounds the first connection. Default 5s.
	ConnectTimeout time.Duration
	// Name is the connection name shown by the server. Default
	// "restless-ingest".
	Name string
	// OnState, when set, is called on every connection change:
	// StateReconnecting (with the cause) when the connection drops,
	// StateConnected when it is back, StateFailed when the client gives up
	// (never, unless the server rejects the credentials). It runs on the
	// client's callback goroutine and must not block. Default none.
	OnState func(ingest.StateChange)
}

// TLSConfig names the files of a TLS configuration.
type TLSConfig struct {
	// CAFile is a PEM bundle of the CAs that sign the server certificate.
	// Default: the system roots.
	CAFile string
	// CertFile and KeyFile are the client certificate and its key, for
	// mutual TLS. Both or neither. Default none.
	CertFile string
	KeyFile  string
}

func (t TLSConfig) enabled() bool { return t.CAFile != "" || t.CertFile != "" || t.KeyFile != "" }

// DefaultConfig returns the daemon's defaults: JetStream on DefaultURL.
func DefaultConfig() Config {
	return Config{JetStream: true}
}

// Sink publishes records to NATS. It is safe for concurrent use.
type Sink struct {
	cfg        Config
	nc         *nats.Conn
	js         jetstream.JetStream // nil in core mode
	duplicates atomic.Uint64
	closed     atomic.Bool
	// troubles counts disconnects and Writes with a failed record; calm is
	// the count a Write that succeeded whole had seen when it started.
	// While they differ, a Write publishes its first record alone and waits
	// for its acknowledgement before sending the rest, so that a server that
	// is back but whose stream is not ready yet (it refuses the first
	// publishes and accepts the next) cannot store a Write out of order.
	// Counters rather than a flag: a success must not clear a failure that
	// another lane met while it was writing.
	troubles, calm atomic.Uint64
	// msgs holds *msgBox: messages the client is done with, for reuse.
	msgs sync.Pool
}

// New connects, and in JetStream mode makes sure the stream exists. The
// first connection must succeed (within Config.ConnectTimeout); after that
// the client reconnects by itself.
func New(ctx context.Context, cfg Config) (*Sink, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	s := &Sink{cfg: cfg}
	opts := []nats.Option{
		nats.Name(cfg.Name),
		nats.Timeout(cfg.ConnectTimeout),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(cfg.ReconnectWait),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			s.troubles.Add(1)
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
	if !cfg.JetStream {
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
	if err := ensureStream(ctx, js, cfg); err != nil {
		s.closed.Store(true)
		nc.Close()
		return nil, err
	}
	return s, nil
}

func (c Config) withDefaults() (Config, error) {
	if len(c.URLs) == 0 {
		c.URLs = []string{DefaultURL}
	}
	c.URLs = append([]string(nil), c.URLs...)
	for i, u := range c.URLs {
		if strings.TrimSpace(u) == "" {
			return c, fmt.Errorf("nats: urls[%d] is empty", i)
		}
	}
	if c.Stream == "" {
		c.Stream = DefaultStream
	}
	if c.JetStream {
		if err := validStreamName(c.Stream); err != nil {
			return c, err
		}
	}
	if c.BaseSubject == "" {
		c.BaseSubject = DefaultSubject
	}
	if err := validSubject(c.BaseSubject, true); err != nil {
		return c, fmt.Errorf("nats: base_subject: %w", err)
	}
	c.Subjects = append([]string(nil), c.Subjects...)
	for i, s := range c.Subjects {
		if err := validSubject(s, true); err != nil {
			return c, fmt.Errorf("nats: subjects[%d]: %w", i, err)
		}
	}
	switch {
	case c.DuplicateWindow < 0:
		return c, fmt.Errorf("nats: duplicate_window %v is negative", c.DuplicateWindow)
	case c.DuplicateWindow == 0:
		c.DuplicateWindow = DefaultDuplicateWindow
	}
	switch {
	case c.MaxPending < 0:
		return c, fmt.Errorf("nats: max_pending %d is negative", c.MaxPending)
	case c.MaxPending == 0:
		c.MaxPending = DefaultMaxPending
	}
	if c.AckTimeout < 0 || c.ReconnectWait < 0 || c.ConnectTimeout < 0 {
		return c, errors.New("nats: ack_timeout, reconnect_wait and connect_timeout must not be negative")
	}
	if c.AckTimeout == 0 {
		c.AckTimeout = DefaultAckTimeout
	}
	if c.ReconnectWait == 0 {
		c.ReconnectWait = DefaultReconnectWait
	}
	if c.ConnectTimeout == 0 {
		c.ConnectTimeout = DefaultConnectTimeout
	}
	if c.Name == "" {
		c.Name = DefaultName
	}
	if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
		return c, errors.New("nats: tls.cert_file and tls.key_file must be set together")
	}
	return c, nil
}

func (s *Sink) state(ch ingest.StateChange) {
	if s.cfg.OnState != nil && !s.closed.Load() {
		s.cfg.OnState(ch)
	}
}

// Connected reports whether the client is connected to a server now.
func (s *Sink) Connected() bool { return s.nc.IsConnected() }

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

// Close closes the connection. Writes still in flight fail; call it after
// the last Write returned.
func (s *Sink) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	s.nc.Close()
	return nil
}

// redactURLs lists the server URLs without user information.
func redactURLs(urls []string) string {
	out := make([]string, len(urls))
	for i, raw := range urls {
		u, err := url.Parse(raw)
		if err != nil || u.User == nil {
			if strings.Contains(raw, "@") {
				out[i] = "[url with credentials]"
				continue
			}
			out[i] = raw
			continue
		}
		u.User = url.User("REDACTED")
		out[i] = u.String()
	}
	return strings.Join(out, ",")
}
