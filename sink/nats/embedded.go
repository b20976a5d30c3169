package nats

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// EmbeddedConfig configures an in-process NATS server with JetStream.
type EmbeddedConfig struct {
	// Dir is where JetStream stores its data; it is created when missing.
	// Required.
	Dir string
	// Host is the address to listen on. Default "127.0.0.1".
	Host string
	// Port is the client port. 0 picks a free port (see ClientURL).
	Port int
	// Logger receives the server's log lines (notices as Info, warnings,
	// errors). Default: none, the server logs nothing.
	Logger *slog.Logger
	// ReadyTimeout bounds the wait for the server to accept connections.
	// Default 10s.
	ReadyTimeout time.Duration
}

// Embedded is a running in-process NATS server with JetStream.
type Embedded struct {
	srv  *server.Server
	once sync.Once
}

// StartEmbedded starts a NATS server with JetStream storing in cfg.Dir and
// returns once it accepts connections. It fails with a clear error when the
// port is taken or the server does not become ready.
func StartEmbedded(cfg EmbeddedConfig) (*Embedded, error) {
	if cfg.Dir == "" {
		return nil, errors.New("nats: embedded server: dir is empty")
	}
	if cfg.Port < 0 || cfg.Port > 65535 {
		return nil, fmt.Errorf("nats: embedded server: port %d is out of range", cfg.Port)
	}
	if cfg.Host == "" {
		cfg.Host = "127.0.0.1"
	}
	if cfg.ReadyTimeout <= 0 {
		cfg.ReadyTimeout = 10 * time.Second
	}
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("nats: embedded server: %w", err)
	}
	port := cfg.Port
	if port == 0 {
		port = server.RANDOM_PORT
	} else {
		// The server only logs a failed listen; try it first so that a port
		// in use is a clear error rather than a readiness timeout.
		ln, err := net.Listen("tcp", net.JoinHostPort(cfg.Host, strconv.Itoa(port)))
		if err != nil {
			return nil, fmt.Errorf("nats: embedded server: cannot listen on %s:%d (in use? choose another embedded_port, or 0 for a free one): %w", cfg.Host, port, err)
		}
		ln.Close()
	}
	opts := &server.Options{
		ServerName: "restless-ingest-embedded",
		Host:       cfg.Host,
		Port:       port,
		JetStream:  true,
		StoreDir:   cfg.Dir,
		NoSigs:     true,
		NoLog:      cfg.Logger == nil,
		// No HTTP monitoring, cluster or leafnode ports: only clients.
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("nats: embedded server: %w", err)
	}
	log := &serverLog{l: cfg.Logger}
	srv.SetLogger(log, false, false)
	srv.Start()
	if !srv.ReadyForConnections(cfg.ReadyTimeout) {
		srv.Shutdown()
		srv.WaitForShutdown()
		if err := log.failure(); err != nil {
			return nil, fmt.Errorf("nats: embedded server on %s:%d: %w", cfg.Host, cfg.Port, err)
		}
		return nil, fmt.Errorf("nats: embedded server on %s:%d not ready within %v", cfg.Host, cfg.Port, cfg.ReadyTimeout)
	}
	if !srv.JetStreamEnabled() {
		srv.Shutdown()
		srv.WaitForShutdown()
		if err := log.failure(); err != nil {
			return nil, fmt.Errorf("nats: embedded server: JetStream did not start: %w", err)
		}
		return nil, errors.New("nats: embedded server: JetStream did not start")
	}
	return &Embedded{srv: srv}, nil
}

// ClientURL is the URL clients connect to, such as nats://127.0.0.1:4222.
func (e *Embedded) ClientURL() string { return e.srv.ClientURL() }

// Port is the client port the server listens on.
func (e *Embedded) Port() int { return e.srv.Addr().(*net.TCPAddr).Port }

// Shutdown stops the server and waits until it has stopped. It may be
// called more than once.
func (e *Embedded) Shutdown() {
	e.once.Do(func() {
		e.srv.Shutdown()
		e.srv.WaitForShutdown()
	})
}

// serverLog adapts the server's logger to slog and keeps the last error, so
// that a failed start can say why.
type serverLog struct {
	l    *slog.Logger
	mu   sync.Mutex
	last string
}

func (s *serverLog) failure() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.last == "" {
		return nil
	}
	return errors.New(s.last)
}

func (s *serverLog) record(format string, v []any) string {
	msg := fmt.Sprintf(format, v...)
	s.mu.Lock()
	s.last = msg
	s.mu.Unlock()
	return msg
}

func (s *serverLog) Noticef(format string, v ...any) {
	if s.l != nil {
		s.l.Info(fmt.Sprintf(format, v...), "component", "nats-server")
	}
}

func (s *serverLog) Warnf(format string, v ...any) {
	if s.l != nil {
		s.l.Warn(fmt.Sprintf(format, v...), "component", "nats-server")
	}
}

func (s *serverLog) Errorf(format string, v ...any) {
	msg := s.record(format, v)
	if s.l != nil {
		s.l.Error(msg, "component", "nats-server")
	}
}

func (s *serverLog) Fatalf(format string, v ...any) {
	msg := s.record(format, v)
	if s.l != nil {
		s.l.Error(msg, "component", "nats-server")
	}
}

func (s *serverLog) Debugf(string, ...any) {}
func (s *serverLog) Tracef(string, ...any) {}
