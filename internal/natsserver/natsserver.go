// Package natsserver runs a NATS server with JetStream inside the process:
// the daemon's sink.nats.embedded and its demo, and the tests that stop and
// restart a server. StartCluster runs several of them as a JetStream cluster
// on one host, for the tests that move stream and meta leaders. The sink (sink/nats) only publishes; it does not need
// a server of its own.
package natsserver

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

	"github.com/restless-stream/ingest"
)

// DefaultHost and DefaultReadyTimeout are the defaults of Config.
const (
	DefaultHost         = "127.0.0.1"
	DefaultReadyTimeout = 10 * time.Second
)

// Config configures an in-process NATS server with JetStream.
type Config struct {
	// Dir is where JetStream stores its data; it is created when missing.
	// Required.
	Dir string
	// Host is the address to listen on. Default "127.0.0.1".
	Host string
	// Port is the client port. 0 picks a free port (see Server.ClientURL).
	Port int
	// Logger receives the server's log lines (notices as Info, warnings,
	// errors). Default: none, the server logs nothing.
	Logger *slog.Logger
	// ReadyTimeout bounds the wait for the server to accept connections.
	// Default 10s.
	ReadyTimeout time.Duration
}

// Validate reports every field of c that Start would refuse, each as an
// *ingest.FieldError naming the field, joined with errors.Join.
func (c Config) Validate() error {
	var errs []error
	if c.Dir == "" {
		errs = append(errs, ingest.FieldErrorf("Dir", "required"))
	}
	if c.Port < 0 || c.Port > 65535 {
		errs = append(errs, ingest.FieldErrorf("Port", "%d is not a port (0 = any free port)", c.Port))
	}
	if c.ReadyTimeout < 0 {
		errs = append(errs, ingest.FieldErrorf("ReadyTimeout", "%v is negative", c.ReadyTimeout))
	}
	return errors.Join(errs...)
}

// Server is a running in-process NATS server with JetStream.
type Server struct {
	srv  *server.Server
	once sync.Once
}

// Start starts a NATS server with JetStream storing in cfg.Dir and returns
// once it accepts connections. It fails with a clear error when cfg is not
// valid, the port is taken or the server does not become ready.
func Start(cfg Config) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("embedded NATS server: %w", err)
	}
	if cfg.Host == "" {
		cfg.Host = DefaultHost
	}
	if cfg.ReadyTimeout == 0 {
		cfg.ReadyTimeout = DefaultReadyTimeout
	}
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("embedded NATS server: %w", &ingest.FieldError{Field: "Dir", Err: err})
	}
	port := cfg.Port
	if port == 0 {
		port = server.RANDOM_PORT
	} else {
		// The server only logs a failed listen; try it first so that a port
		// in use is a clear error rather than a readiness timeout.
		ln, err := net.Listen("tcp", net.JoinHostPort(cfg.Host, strconv.Itoa(port)))
		if err != nil {
			return nil, fmt.Errorf("embedded NATS server: %w", ingest.FieldErrorf("Port", "cannot listen on %s:%d (in use? choose another port, or 0 for a free one): %w", cfg.Host, port, err))
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
	srv, log, err := run(fmt.Sprintf("embedded NATS server on %s:%d", cfg.Host, cfg.Port), opts, cfg.Logger, cfg.ReadyTimeout)
	if err != nil {
		return nil, err
	}
	if !srv.JetStreamEnabled() {
		srv.Shutdown()
		srv.WaitForShutdown()
		if err := log.failure(); err != nil {
			return nil, fmt.Errorf("embedded NATS server: JetStream did not start: %w", err)
		}
		return nil, errors.New("embedded NATS server: JetStream did not start")
	}
	return &Server{srv: srv}, nil
}

// run starts a server with opts, its log going to l, and waits up to ready
// for it to accept connections; name names it in errors. A server that is
// not ready is shut down, and the error is what it logged, when it did.
func run(name string, opts *server.Options, l *slog.Logger, ready time.Duration) (*server.Server, *serverLog, error) {
	srv, err := server.NewServer(opts)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", name, err)
	}
	log := &serverLog{l: l}
	srv.SetLogger(log, false, false)
	srv.Start()
	if !srv.ReadyForConnections(ready) {
		srv.Shutdown()
		srv.WaitForShutdown()
		if err := log.failure(); err != nil {
			return nil, nil, fmt.Errorf("%s: %w", name, err)
		}
		return nil, nil, fmt.Errorf("%s not ready within %v (port in use?)", name, ready)
	}
	return srv, log, nil
}

// ClientURL is the URL clients connect to, such as nats://127.0.0.1:4222.
func (s *Server) ClientURL() string { return s.srv.ClientURL() }

// Port is the client port the server listens on.
func (s *Server) Port() int { return s.srv.Addr().(*net.TCPAddr).Port }

// Shutdown stops the server and waits until it has stopped. It may be
// called more than once.
func (s *Server) Shutdown() {
	s.once.Do(func() {
		s.srv.Shutdown()
		s.srv.WaitForShutdown()
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
